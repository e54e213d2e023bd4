"""Fixtures for API tests: an instance with its own media directory, and people with tokens."""

from __future__ import annotations

from pathlib import Path

import pytest

from fedcop.settings import Settings
from fedcop.web.state import AppState
from tests.api.helpers import person_with_token
from tests.support.settings import make_settings


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    return make_settings(database_url, media_dir=tmp_path / "media")


@pytest.fixture
async def alice(state: AppState) -> dict[str, str]:
    return await person_with_token(state, "alice")


@pytest.fixture
async def bob(state: AppState) -> dict[str, str]:
    return await person_with_token(state, "bob")
