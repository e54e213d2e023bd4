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
