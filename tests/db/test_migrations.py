"""Migrations run from empty to head and back one step, on SQLite and PostgreSQL alike."""

from __future__ import annotations

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, inspect

from fedcop import db as database
from fedcop.models import Base


def _tables(connection: Connection) -> set[str]:
    return set(inspect(connection).get_table_names()) - {"alembic_version"}


def _schema_differences(connection: Connection) -> list[object]:
    context = MigrationContext.configure(connection, opts={"compare_type": True})
    return list(compare_metadata(context, Base.metadata))


# SQLite cannot reflect expression indexes; the case-insensitive unique index is instead
# exercised by tests/web/test_services_actors.py::test_handles_are_unique_case_insensitively.
@pytest.mark.filterwarnings("ignore:.*expression-based index:UserWarning")
@pytest.mark.filterwarnings("ignore:Skipped unsupported reflection")
async def test_upgrade_from_empty_reaches_head_and_matches_models(empty_database_url: str) -> None:
    engine = database.create_engine(empty_database_url)
    try:
        assert await database.current_revision(engine) is None
        await database.upgrade(engine)
        assert await database.is_up_to_date(engine)
        async with engine.connect() as connection:
            assert await connection.run_sync(_tables) == set(Base.metadata.tables)
            # The migrations describe exactly the models: nothing missing, nothing extra.
            assert await connection.run_sync(_schema_differences) == []
    finally:
        await engine.dispose()


async def test_downgrade_one_step_then_upgrade_again(empty_database_url: str) -> None:
    head = database.head_revision()
    script = ScriptDirectory.from_config(database.alembic_config())
    previous = script.get_revision(head).down_revision if head else None
    engine = database.create_engine(empty_database_url)
    try:
        await database.upgrade(engine)
        await database.downgrade(engine, "-1")
        assert await database.current_revision(engine) == previous
        if previous is None:
            async with engine.connect() as connection:
                assert await connection.run_sync(_tables) == set()
        await database.upgrade(engine)
        assert await database.current_revision(engine) == head
    finally:
        await engine.dispose()


async def test_every_revision_downgrades_to_empty(empty_database_url: str) -> None:
    engine = database.create_engine(empty_database_url)
    try:
        await database.upgrade(engine)
        await database.downgrade(engine, "base")
        async with engine.connect() as connection:
            assert await connection.run_sync(_tables) == set()
    finally:
        await engine.dispose()


async def test_handle_uniqueness_survives_every_migration(database_url: str) -> None:
    """SQLite rebuilds tables in batch migrations and drops indexes it cannot reflect."""
    engine = database.create_engine(database_url)
    try:
        async with engine.connect() as connection:
            names = await connection.run_sync(
                lambda sync: {ix["name"] for ix in inspect(sync).get_indexes("actors")}
            )
        if database_url.startswith("sqlite"):
            async with engine.connect() as connection:
                rows = await connection.exec_driver_sql(
                    "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'actors'"
                )
                names |= {row[0] for row in rows}
        assert "uq_actors_local_username" in names
    finally:
        await engine.dispose()
