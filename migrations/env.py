"""Alembic environment: runs on the connection fedcop hands it, or opens one from the URL."""

from __future__ import annotations

import asyncio
import os

from alembic import context
from sqlalchemy import Connection

from fedcop.db import create_engine
from fedcop.models import Base
from fedcop.settings import DEFAULT_DATABASE_URL, normalise_database_url

target_metadata = Base.metadata


def _configure_and_run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",  # SQLite cannot ALTER most things
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


async def _run_from_url() -> None:
    url = normalise_database_url(os.environ.get("FEDCOP_DATABASE_URL", DEFAULT_DATABASE_URL))
    engine = create_engine(url)
    async with engine.begin() as connection:
        await connection.run_sync(_configure_and_run)
    await engine.dispose()


def run() -> None:
    connection = context.config.attributes.get("connection")
    if connection is not None:
        _configure_and_run(connection)
    else:  # the plain `alembic` command line, e.g. for `alembic revision --autogenerate`
        asyncio.run(_run_from_url())


run()
