"""Fixtures for media tests: an instance whose media directory is the test's own."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import select

from fedcop.models import Actor
from fedcop.settings import Settings
from fedcop.web.state import AppState
from tests.support.actors import make_person
from tests.support.settings import make_settings


@pytest.fixture
def media_dir(tmp_path: Path) -> Path:
    return tmp_path / "media"


@pytest.fixture
def settings(database_url: str, media_dir: Path) -> Settings:
    return make_settings(database_url, media_dir=media_dir)


@pytest.fixture
async def owner_id(state: AppState) -> int:
    person = await make_person(state, "nurse")
    async with state.db() as session:
        return (await session.scalars(select(Actor.id).where(Actor.ap_id == person.ap_id))).one()
