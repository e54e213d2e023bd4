"""Shared fixtures: a fresh, migrated database per test, on SQLite and on PostgreSQL.

PostgreSQL runs when reachable (FEDCOP_TEST_POSTGRES_URL, default the local `test` database).
When it is not, its tests are skipped with the reason — unless FEDCOP_REQUIRE_POSTGRES=1, as
in CI, where an unreachable server fails the run instead of hiding half the suite.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest
from starlette.applications import Starlette

from fedcop.app import create_app
from fedcop.db import create_engine
from fedcop.settings import Settings
from fedcop.web.state import AppState
from tests.support.databases import DatabaseFactory, postgres_admin_url
from tests.support.settings import TEST_DOMAIN, TEST_SECRET, make_settings

__all__ = ["TEST_DOMAIN", "TEST_SECRET", "make_settings"]

BACKENDS = ["sqlite", "postgresql"]


@pytest.fixture(scope="session")
def database_factory(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DatabaseFactory]:
    factory = DatabaseFactory(tmp_path_factory.mktemp("databases"), postgres_admin_url())
    yield factory
    factory.close()


def _require_backend(factory: DatabaseFactory, backend: str) -> None:
    if backend == "postgresql" and not factory.postgres_available:
        reason = f"PostgreSQL unreachable at {factory.postgres_url}: {factory.postgres_error}"
        if os.environ.get("FEDCOP_REQUIRE_POSTGRES") == "1":
            pytest.fail(reason)
        pytest.skip(reason)


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest, database_factory: DatabaseFactory) -> str:
    _require_backend(database_factory, request.param)
    return str(request.param)


@pytest.fixture
def database_url(backend: str, database_factory: DatabaseFactory) -> Iterator[str]:
    """A fresh database at the latest schema."""
    url = database_factory.create(backend, migrated=True)
    yield url
    database_factory.drop(url)


@pytest.fixture
def empty_database_url(backend: str, database_factory: DatabaseFactory) -> Iterator[str]:
    """A fresh database with no tables at all."""
    url = database_factory.create(backend, migrated=False)
    yield url
    database_factory.drop(url)


@pytest.fixture
def settings(database_url: str) -> Settings:
    return make_settings(database_url)


@pytest.fixture
async def app(settings: Settings) -> AsyncIterator[Starlette]:
    engine = create_engine(settings.database_url)
    application = create_app(settings, engine=engine)
    async with application.router.lifespan_context(application):
        yield application
    await engine.dispose()


@pytest.fixture
def state(app: Starlette) -> AppState:
    result: AppState = app.state.fedcop
    return result


@pytest.fixture
async def client(app: Starlette) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url=f"https://{TEST_DOMAIN}") as c:
        yield c
