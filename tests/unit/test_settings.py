"""Settings: defaults, every variable's validation, all problems reported together."""

from __future__ import annotations

from pathlib import Path

import pytest

from fedcop.errors import SettingsError
from fedcop.settings import Settings, normalise_database_url

SECRET = "s" * 40


def test_minimal_environment() -> None:
    settings = Settings.from_env(
        {"FEDCOP_DOMAIN": "Cop.Example.NHS.uk", "FEDCOP_SECRET_KEY": SECRET}
    )
    assert settings.domain == "cop.example.nhs.uk"
    assert settings.scheme == "https"
    assert settings.base_url == "https://cop.example.nhs.uk"
    assert settings.database_url == "sqlite+aiosqlite:///./fedcop.db"
    assert settings.allow_private_addresses is False
    assert settings.authorized_fetch is False
    assert settings.access_log is False


def test_access_log_can_be_turned_on() -> None:
    settings = Settings.from_env(
        {"FEDCOP_DOMAIN": "cop.test", "FEDCOP_SECRET_KEY": SECRET, "FEDCOP_ACCESS_LOG": "1"}
    )
    assert settings.access_log is True


def test_local_trial_with_port_and_http() -> None:
    settings = Settings.from_env(
        {"FEDCOP_DOMAIN": "localhost:8000", "FEDCOP_SCHEME": "http", "FEDCOP_SECRET_KEY": SECRET}
    )
    assert settings.base_url == "http://localhost:8000"
    assert settings.host == "localhost"


def test_every_problem_is_reported_at_once() -> None:
    with pytest.raises(SettingsError) as caught:
        Settings.from_env(
            {
                "FEDCOP_DOMAIN": "https://x.example/path",
                "FEDCOP_SCHEME": "ftp",
                "FEDCOP_SECRET_KEY": "short",
                "FEDCOP_DATABASE_URL": "mysql://db",
                "FEDCOP_ALLOW_PRIVATE_ADDRESSES": "maybe",
                "FEDCOP_LOG_LEVEL": "loud",
                "FEDCOP_REMOTE_ACTOR_MAX_AGE_HOURS": "0",
            }
        )
    problems = "\n".join(caught.value.problems)
    assert len(caught.value.problems) == 7
    for name in (
        "FEDCOP_DOMAIN", "FEDCOP_SCHEME", "FEDCOP_SECRET_KEY", "FEDCOP_DATABASE_URL",
        "FEDCOP_ALLOW_PRIVATE_ADDRESSES", "FEDCOP_LOG_LEVEL", "FEDCOP_REMOTE_ACTOR_MAX_AGE_HOURS",
    ):  # fmt: skip
        assert name in problems


def test_missing_domain_says_what_to_give() -> None:
    with pytest.raises(SettingsError, match="FEDCOP_DOMAIN is not set"):
        Settings.from_env({"FEDCOP_SECRET_KEY": SECRET})


def test_port_out_of_range() -> None:
    with pytest.raises(SettingsError, match="port"):
        Settings.from_env({"FEDCOP_DOMAIN": "a.example:70000", "FEDCOP_SECRET_KEY": SECRET})


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("sqlite:///data/f.db", "sqlite+aiosqlite:///data/f.db"),
        ("postgresql://u@h:5432/d", "postgresql+asyncpg://u@h:5432/d"),
        ("postgres://u@h/d", "postgresql+asyncpg://u@h/d"),
        ("postgresql+asyncpg://u@h/d", "postgresql+asyncpg://u@h/d"),
    ],
)
def test_database_urls(given: str, expected: str) -> None:
    assert normalise_database_url(given) == expected


def test_generated_secret_survives_restarts(tmp_path: Path) -> None:
    env = {"FEDCOP_DOMAIN": "a.example", "FEDCOP_SECRET_KEY_FILE": str(tmp_path / "secret")}
    first = Settings.from_env(env).secret_key
    assert len(first) >= 32
    assert Settings.from_env(env).secret_key == first
    assert (tmp_path / "secret").stat().st_mode & 0o777 == 0o600


def test_database_pool_size_defaults_to_the_backend_and_can_be_set() -> None:
    base = {"FEDCOP_DOMAIN": "cop.test", "FEDCOP_SECRET_KEY": SECRET}
    assert Settings.from_env(base).database_pool_size is None
    chosen = Settings.from_env({**base, "FEDCOP_DATABASE_POOL_SIZE": "7"})
    assert chosen.database_pool_size == 7
    with pytest.raises(SettingsError, match="FEDCOP_DATABASE_POOL_SIZE"):
        Settings.from_env({**base, "FEDCOP_DATABASE_POOL_SIZE": "-1"})
