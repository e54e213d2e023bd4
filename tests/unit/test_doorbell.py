"""Doorbells: rung after a commit (never a rollback), heard by a waiting queue loop."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from sqlalchemy import text

from fedcop.db import SessionMaker, create_engine, session_maker
from fedcop.federation.dispatch import HandlerContext
from fedcop.federation.doorbell import (
    Doorbell,
    DoorbellListener,
    Doorbells,
    ring_after_commit,
    wait_set,
    waking,
)
from fedcop.federation.processor import InboxProcessor


@pytest.fixture
async def bells_and_db() -> AsyncIterator[tuple[Doorbells, SessionMaker]]:
    engine = create_engine("sqlite+aiosqlite:///:memory:")
    bells = Doorbells()
    try:
        yield bells, session_maker(engine, info=bells.session_info())
    finally:
        await engine.dispose()


def count_rings(bell: Doorbell) -> list[int]:
    rings = [0]

    def ring() -> None:
        rings[0] += 1

    bell.subscribe(ring)
    return rings


async def test_a_session_rings_its_queues_once_it_has_committed(
    bells_and_db: tuple[Doorbells, SessionMaker],
) -> None:
    bells, db = bells_and_db
    deliveries, inbox = count_rings(bells.deliveries), count_rings(bells.inbox)
    async with db.begin() as session:
        await session.execute(text("SELECT 1"))
        ring_after_commit(session, "deliveries")
        ring_after_commit(session, "deliveries")
        assert deliveries == [0]  # not before the commit: a worker would find nothing yet
    assert deliveries == [1]  # once per queue per commit
    assert inbox == [0]

    async with db.begin() as session:  # a later commit of the same kind of session: no ring
        await session.execute(text("SELECT 1"))
    assert deliveries == [1]


async def test_a_rolled_back_session_rings_nothing_even_if_it_commits_later(
    bells_and_db: tuple[Doorbells, SessionMaker],
) -> None:
    bells, db = bells_and_db
    deliveries = count_rings(bells.deliveries)
    async with db() as session:
        await session.execute(text("SELECT 1"))
        ring_after_commit(session, "deliveries")
        await session.rollback()
        await session.execute(text("SELECT 1"))
        await session.commit()
    assert deliveries == [0]


async def test_a_session_without_bells_commits_quietly() -> None:
    engine = create_engine("sqlite+aiosqlite:///:memory:")
    try:
        async with session_maker(engine).begin() as session:
            await session.execute(text("SELECT 1"))
            ring_after_commit(session, "inbox")  # e.g. a CLI command: nobody to wake here
    finally:
        await engine.dispose()


async def test_waking_sets_the_event_on_a_ring_and_on_stop_until_left() -> None:
    bell, stop, event = Doorbell(), asyncio.Event(), asyncio.Event()
    with waking(event, bell, stop):
        bell.ring()
        assert event.is_set()
        event.clear()
        stop.set()
        await wait_set(event, 1.0)
        assert event.is_set()
    event.clear()
    bell.ring()  # unsubscribed on leaving
    assert not event.is_set()


async def test_wait_set_returns_after_its_timeout_when_nothing_rings() -> None:
    loop = asyncio.get_running_loop()
    started = loop.time()
    await wait_set(asyncio.Event(), 0.05)
    assert loop.time() - started >= 0.04


async def test_a_listener_without_a_database_keeps_trying_until_stopped() -> None:
    engine = create_engine("postgresql+asyncpg://postgres@127.0.0.1:1/none")  # nothing listens
    listener = DoorbellListener(engine, Doorbells(), reconnect_seconds=0.05)
    stop = asyncio.Event()
    task = asyncio.create_task(listener.run(stop))
    try:
        await asyncio.sleep(0.3)  # several refused attempts, none of them fatal
        assert not task.done()
        assert not listener.connected.is_set()
    finally:
        stop.set()
        async with asyncio.timeout(5):
            await task
        await engine.dispose()
    assert listener.sessions == 0


async def test_rings_do_not_hurry_an_inbox_processor_whose_claims_fail() -> None:
    """While the database is failing, a busy inbox rings many times a second; the processor
    still waits its interval between attempts instead of failing (and logging) at each ring."""

    class FailingProcessor(InboxProcessor):
        attempts = 0

        async def run_once(self) -> int:
            self.attempts += 1
            raise OSError("database unavailable")

    engine = create_engine("sqlite+aiosqlite:///:memory:")
    bell, stop = Doorbell(), asyncio.Event()
    context = HandlerContext(db=session_maker(engine), urls=None, actors=None)  # type: ignore[arg-type]
    processor = FailingProcessor(context, {}, doorbell=bell)
    task = asyncio.create_task(processor.run(stop, idle_seconds=0.2))
    try:
        for _ in range(50):  # 0.5 s of rings, every 10 ms
            bell.ring()
            await asyncio.sleep(0.01)
    finally:
        stop.set()
        await task
        await engine.dispose()
    assert 2 <= processor.attempts <= 4
