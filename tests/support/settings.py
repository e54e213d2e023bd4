"""Settings for test instances."""

from __future__ import annotations

from fedcop.settings import Settings

TEST_DOMAIN = "fedcop.test"
TEST_SECRET = "test-secret-" + "x" * 40


def make_settings(database_url: str, **overrides: object) -> Settings:
    values: dict[str, object] = {
        "domain": TEST_DOMAIN,
        "scheme": "https",
        "database_url": database_url,
        "secret_key": TEST_SECRET,
    }
    values.update(overrides)
    return Settings(**values)  # type: ignore[arg-type]


def cli_env(database_url: str, **overrides: str) -> dict[str, str]:
    """The environment a `fedcop` command of a test instance runs with (`FEDCOP_*`)."""
    return {
        "FEDCOP_DOMAIN": TEST_DOMAIN,
        "FEDCOP_DATABASE_URL": database_url,
        "FEDCOP_SECRET_KEY": TEST_SECRET,
        **overrides,
    }


def loopback_env(database_url: str, host: str, port: int, **overrides: str) -> dict[str, str]:
    """`cli_env` for an instance served over plain HTTP on a loopback address, whose peers
    are on loopback too."""
    return cli_env(
        database_url,
        FEDCOP_DOMAIN=f"{host}:{port}",
        FEDCOP_SCHEME="http",
        FEDCOP_ALLOW_PRIVATE_ADDRESSES="true",
        **overrides,
    )
