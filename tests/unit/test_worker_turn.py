"""On a SQLite file one process at a time runs the workers; on PostgreSQL every one may."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from fedcop import worker_turn
from fedcop.db import create_engine
from fedcop.worker_turn import workers_turn

# Each engine stands for one process: flock locks belong to the open file, not the process, so
# two opens in one test process contend exactly as two processes would.


@pytest.fixture(autouse=True)
def quick_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(worker_turn, "RETRY_SECONDS", 0.05)


@contextlib.asynccontextmanager
async def turn(url: str, stop: asyncio.Event) -> AsyncIterator[bool]:
    engine = create_engine(url)
    try:
        async with workers_turn(engine, stop) as ours:
            yield ours
    finally:
        await engine.dispose()


async def test_a_second_process_waits_until_the_first_lets_go(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'fedcop.db'}"
    second_in = asyncio.Event()
    stop = asyncio.Event()

    async def second() -> None:
        async with turn(url, stop) as ours:
            assert ours
            second_in.set()

    async with turn(url, stop) as ours:
        assert ours
        waiting = asyncio.create_task(second())
        await asyncio.sleep(0.3)  # six retries: the first still holds its turn
        assert not second_in.is_set()
    async with asyncio.timeout(2):
        await second_in.wait()
    await waiting


async def test_stopping_while_waiting_ends_the_wait_without_a_turn(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'fedcop.db'}"
    stop = asyncio.Event()
    async with turn(url, stop) as ours:
        assert ours
        waiter_stop = asyncio.Event()

        async def second() -> bool:
            async with turn(url, waiter_stop) as theirs:
                return theirs

        waiting = asyncio.create_task(second())
        await asyncio.sleep(0.1)
        waiter_stop.set()
        async with asyncio.timeout(2):
            assert await waiting is False


async def test_databases_elsewhere_never_wait() -> None:
    stop = asyncio.Event()
    for url in ("sqlite+aiosqlite:///:memory:", "postgresql+asyncpg://nobody@127.0.0.1/none"):
        async with turn(url, stop) as first, turn(url, stop) as second:
            assert first  # no lock file, no waiting, no connection opened
            assert second
