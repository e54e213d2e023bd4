"""Each process keeps enough database connections open for the requests it has in flight."""

from __future__ import annotations

import asyncio

from sqlalchemy import event, text

from fedcop.db import POSTGRES_POOL_SIZE, SQLITE_POOL_SIZE, create_engine


async def test_the_pool_holds_the_backends_default_and_reuses_its_connections(
    database_url: str, backend: str
) -> None:
    """32 requests at once: none of them opens a connection of its own that is closed again
    on return (SQLAlchemy's default of 5 + 10 did, for every request past the fifth)."""
    engine = create_engine(database_url)
    expected = SQLITE_POOL_SIZE if backend == "sqlite" else POSTGRES_POOL_SIZE
    opened = 0

    def count(*_: object) -> None:
        nonlocal opened
        opened += 1

    event.listen(engine.sync_engine, "connect", count)
    try:
        assert engine.pool.size() == expected

        async def query() -> None:
            async with engine.connect() as connection:
                await connection.execute(text("SELECT 1"))
                await asyncio.sleep(0.01)  # all of them hold a connection at once

        for _ in range(3):
            await asyncio.gather(*(query() for _ in range(min(32, expected))))
        assert opened == min(32, expected)  # opened once, then reused
    finally:
        await engine.dispose()


def test_a_pool_size_can_be_chosen() -> None:
    engine = create_engine("postgresql+asyncpg://nobody@127.0.0.1/none", pool_size=3)
    assert engine.pool.size() == 3
