"""A Follow is accepted at once by running workers, not at their next poll.

The workers here poll every 60 s, so an Accept within the deadline can only come from the
doorbells: the inbox writer's commit wakes the inbox processor, the Accept's commit wakes the
delivery worker. The same holds for workers in another process (their own engine, state and
bells), woken by the queue triggers' notifications on PostgreSQL and by the file's change
counter on SQLite.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import pytest
from sqlalchemy import text

from fedcop.app import build_state
from fedcop.db import create_engine
from fedcop.federation.doorbell import (
    DoorbellListener,
    Doorbells,
    SqliteChangeListener,
    listener_for,
)
from fedcop.services import deliveries as delivery_services
from fedcop.services.actors import create_group, create_person
from fedcop.web.state import AppState
from fedcop.worker import build_workers
from tests.support.network import InProcessNetwork
from tests.support.peers import FakePeer, follow_activity, post_signed

GROUP = "https://home.test/groups/frailty"
POLL_SECONDS = 60.0
DEADLINE_SECONDS = 10.0  # generous for a loaded CI machine; the poll alone would take 60


@contextlib.asynccontextmanager
async def running_workers(state: AppState) -> AsyncIterator[None]:
    """`state`'s inbox processor and delivery worker, running with a very slow poll."""
    workers = build_workers(state)
    stop = asyncio.Event()
    tasks = [
        asyncio.create_task(workers.inbox.run(stop, idle_seconds=POLL_SECONDS)),
        asyncio.create_task(workers.delivery.run(stop, idle_seconds=POLL_SECONDS)),
    ]
    try:
        await asyncio.sleep(0.2)  # both loops have claimed nothing and are waiting
        yield
    finally:
        stop.set()
        async with asyncio.timeout(10):
            await asyncio.gather(*tasks)


async def accepted(peer: FakePeer) -> dict[str, object]:
    async with asyncio.timeout(DEADLINE_SECONDS):
        while not peer.inbox:  # noqa: ASYNC110 - the fake peer records into a plain list
            await asyncio.sleep(0.02)
    [accept] = peer.inbox
    return accept


async def follow_the_group(home: AppState, net: InProcessNetwork, peer: FakePeer) -> None:
    response = await post_signed(net, peer, f"{GROUP}/inbox", follow_activity(peer, GROUP))
    assert response.status_code == 202


@pytest.fixture
async def group(home: AppState) -> str:
    await create_person(home.db, home.urls, "convenor")
    await create_group(home.db, home.urls, "frailty", name="Frailty CoP", owner="convenor")
    return GROUP


@pytest.mark.usefixtures("group")
async def test_running_workers_accept_a_follow_without_waiting_for_their_poll(
    home: AppState, net: InProcessNetwork, peer: FakePeer
) -> None:
    async with running_workers(home):
        await follow_the_group(home, net, peer)
        accept = await accepted(peer)
    assert accept["type"] == "Accept"
    assert accept["actor"] == GROUP


@contextlib.asynccontextmanager
async def worker_process(
    home: AppState, net: InProcessNetwork
) -> AsyncIterator[DoorbellListener | SqliteChangeListener]:
    """What `fedcop worker` is beside the web process: its own engine, state and doorbells on
    the same database, listening for work committed by others (`serve_workers` does this)."""
    engine = create_engine(home.settings.database_url)
    try:
        state = await build_state(home.settings, engine, net.as_network())
        listener = listener_for(engine, state.doorbells, reconnect_seconds=0.1)
        assert listener is not None
        stop = asyncio.Event()
        listening = asyncio.create_task(listener.run(stop))
        try:
            async with asyncio.timeout(10):
                await listener.connected.wait()
            async with running_workers(state):
                yield listener
        finally:
            stop.set()
            await listening
            await state.client.aclose()
            await state.inbox_writer.aclose()
    finally:
        await engine.dispose()


@pytest.mark.usefixtures("group")
async def test_a_worker_process_is_woken_by_work_another_commits(
    home: AppState, net: InProcessNetwork, peer: FakePeer
) -> None:
    """PostgreSQL: the queue triggers' NOTIFY; a SQLite file: its change counter."""
    async with worker_process(home, net):
        # The web process (`home`, running no workers) stores the Follow; only the other
        # process's workers can answer it, and only a notification wakes them in time.
        await follow_the_group(home, net, peer)
        accept = await accepted(peer)
    assert accept["type"] == "Accept"


@pytest.mark.usefixtures("group")
@pytest.mark.parametrize("backend", ["postgresql"], indirect=True)
async def test_a_listener_that_lost_its_connection_listens_again(
    home: AppState, net: InProcessNetwork, peer: FakePeer
) -> None:
    async with worker_process(home, net) as listener:
        assert isinstance(listener, DoorbellListener)
        async with home.db.begin() as session:  # as a database restart or a proxy would
            killed = await session.scalar(
                text(
                    "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
                    " WHERE application_name = 'fedcop-listener'"
                    " AND datname = current_database()"
                )
            )
        assert killed == 1
        # Before or after the listener notices: the notification reaches its new connection,
        # or the ring it gives on reconnecting covers what it missed.
        await follow_the_group(home, net, peer)
        accept = await accepted(peer)
        assert listener.sessions == 2
    assert accept["type"] == "Accept"


@pytest.mark.parametrize("backend", ["postgresql"], indirect=True)
async def test_an_operators_retry_wakes_worker_processes(home: AppState) -> None:
    """A retry makes rows due with an UPDATE, which the INSERT triggers do not announce: the
    command notifies by itself (`fedcop deliveries retry` runs in a process of its own)."""
    engine = create_engine(home.settings.database_url)
    bells, stop = Doorbells(), asyncio.Event()
    listener = DoorbellListener(engine, bells)
    listening = asyncio.create_task(listener.run(stop))
    try:
        async with asyncio.timeout(10):
            await listener.connected.wait()
        rung = asyncio.Event()
        bells.deliveries.subscribe(rung.set)  # after the ring that follows connecting
        await delivery_services.retry(home.db, "nowhere.test")
        async with asyncio.timeout(DEADLINE_SECONDS):
            await rung.wait()
    finally:
        stop.set()
        await listening
        await engine.dispose()
