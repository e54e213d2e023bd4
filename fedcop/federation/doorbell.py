"""Waking the queue workers when work is committed, rather than at their next poll.

Without this, a Follow accepted at the inbox waited up to the inbox processor's poll (0.5 s)
and then the Accept it produced up to the delivery worker's (1 s). Now:

- in one process (`fedcop serve` with its workers, the embedded default), whatever commits
  inbox rows or deliveries rings that queue's `Doorbell` once the commit is done: the inbox
  writer after each batch, a session that called `ring_after_commit` (the outbox) at its
  commit, never at a rollback;
- across processes on PostgreSQL, triggers send a notification when rows are inserted
  (migration 0008; delivered at commit, and only then), and each worker process LISTENs on a
  connection of its own (`DoorbellListener`) and rings its bells. Web processes, other worker
  processes and `fedcop` CLI commands all wake every worker that way;
- across processes on a SQLite file (`fedcop serve --no-workers` beside `fedcop worker`), a
  worker process reads the file's change counter every 100 ms (`SqliteChangeListener`).

The polls stay, as the safety net: a lost notification (the listening connection dropped) or
a row that comes due later (a retry) is picked up at the next poll as before.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Literal

import asyncpg
from sqlalchemy import event, func, select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession
from sqlalchemy.orm import Session

from fedcop.db import on_asyncpg, sqlite_file

log = logging.getLogger(__name__)

Queue = Literal["inbox", "deliveries"]
# The PostgreSQL channels migration 0008's triggers notify (it spells them out itself, as a
# migration must not change when this module does; tests/flows/test_new_work_wakes_the_workers.py
# ties the two).
CHANNELS: dict[Queue, str] = {"inbox": "fedcop_inbox", "deliveries": "fedcop_deliveries"}
# Between attempts to get the listening connection back; polls carry the work meanwhile.
RECONNECT_SECONDS = 5.0
# Whatever a database that is down, restarting or refusing us raises: the workers poll on.
_CANNOT_LISTEN = (
    OSError,
    TimeoutError,
    asyncpg.PostgresError,
    asyncpg.InterfaceError,
    asyncpg.InternalClientError,
)
_RINGS = "fedcop.doorbell.rings"  # Session.info key: queues to ring once this session commits
_BELLS = "fedcop.doorbells"  # Session.info key, set by the session maker: this process's bells


class Doorbell:
    """One queue's bell: rung when its rows are committed; its waiters wake."""

    def __init__(self) -> None:
        self._subscribers: list[Callable[[], None]] = []

    def ring(self) -> None:
        for wake in self._subscribers:
            wake()

    def subscribe(self, wake: Callable[[], None]) -> Callable[[], None]:
        """Call `wake` at every ring until the returned function is called."""
        self._subscribers.append(wake)
        return lambda: self._subscribers.remove(wake)


@dataclass(frozen=True, slots=True)
class Doorbells:
    inbox: Doorbell = field(default_factory=Doorbell)
    deliveries: Doorbell = field(default_factory=Doorbell)

    def ring(self, queue: Queue) -> None:
        getattr(self, queue).ring()

    def session_info(self) -> dict[str, object]:
        """What a session maker passes every session, so `ring_after_commit` finds the bells."""
        return {_BELLS: self}


@contextlib.contextmanager
def waking(event: asyncio.Event, bell: Doorbell | None, stop: asyncio.Event) -> Iterator[None]:
    """While inside, set `event` at every ring of `bell` and when `stop` is set.

    A queue's loop waits on `event` between claims (with its poll interval as the timeout),
    and clears it *before* claiming, so a ring during the claim is not lost: the wait after
    it returns at once and the loop claims again.
    """
    unsubscribe = bell.subscribe(event.set) if bell is not None else None
    stop_watch = asyncio.ensure_future(stop.wait())
    stop_watch.add_done_callback(lambda _: event.set())
    try:
        yield
    finally:
        stop_watch.cancel()
        if unsubscribe is not None:
            unsubscribe()


async def wait_set(event: asyncio.Event, seconds: float) -> None:
    """Until `event` is set or `seconds` have passed."""
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(event.wait(), seconds)


def ring_after_commit(session: AsyncSession, queue: Queue) -> None:
    """Ring `queue`'s bell in this process once `session` commits (not if it rolls back)."""
    session.info.setdefault(_RINGS, set()).add(queue)


async def announce(session: AsyncSession, queue: Queue) -> None:
    """For work made due by an UPDATE (an operator's retry), which no trigger announces: ring
    this process's bell at commit and, on PostgreSQL, notify every listening worker process
    (the notification, too, is delivered only if the transaction commits)."""
    ring_after_commit(session, queue)
    if session.get_bind().dialect.name == "postgresql":
        await session.execute(select(func.pg_notify(CHANNELS[queue], "")))


@event.listens_for(Session, "after_commit")
def _ring_committed(session: Session) -> None:
    queues: set[Queue] | None = session.info.pop(_RINGS, None)
    bells = session.info.get(_BELLS)
    if queues and isinstance(bells, Doorbells):
        for queue in queues:
            bells.ring(queue)


@event.listens_for(Session, "after_rollback")
def _forget_rolled_back(session: Session) -> None:
    session.info.pop(_RINGS, None)


class DoorbellListener:
    """A worker process's ear on PostgreSQL: LISTEN on the queues' channels, ring on NOTIFY.

    One asyncpg connection of its own (a LISTEN lasts as long as its session, so it cannot be
    a pooled one). If it drops, the bells are rung once it is back, as work may have been
    committed while nobody listened; until then the workers' polls carry on.
    """

    def __init__(
        self,
        engine: AsyncEngine,
        bells: Doorbells,
        *,
        reconnect_seconds: float = RECONNECT_SECONDS,
    ) -> None:
        url = engine.url.set(drivername="postgresql")
        self._dsn = url.render_as_string(hide_password=False)
        self._bells = bells
        self._reconnect_seconds = reconnect_seconds
        self.connected = asyncio.Event()  # set while listening (tests wait for it)
        self.sessions = 0  # times it started listening: reconnections show here

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            lost = asyncio.Event()
            try:
                connection = await asyncpg.connect(
                    self._dsn, timeout=10, server_settings={"application_name": "fedcop-listener"}
                )
            except _CANNOT_LISTEN as exc:
                log.warning("cannot listen for new work (%s); polling meanwhile", exc)
            else:
                try:
                    await self._listen(connection, lost, stop)
                finally:
                    self.connected.clear()
                    connection.terminate()
            if not stop.is_set():
                await wait_set(stop, self._reconnect_seconds)

    async def _listen(
        self, connection: asyncpg.Connection, lost: asyncio.Event, stop: asyncio.Event
    ) -> None:
        connection.add_termination_listener(lambda _connection: lost.set())
        try:
            for queue, channel in CHANNELS.items():
                await connection.add_listener(channel, self._ringer(queue))
        except _CANNOT_LISTEN as exc:
            log.warning("cannot listen for new work (%s); polling meanwhile", exc)
            return
        self.connected.set()
        self.sessions += 1
        for queue in CHANNELS:  # anything committed while this process was not listening
            self._bells.ring(queue)
        await _first(stop, lost)

    def _ringer(self, queue: Queue) -> Callable[[object, int, str, str], None]:
        def ring(_connection: object, _pid: int, _channel: str, _payload: str) -> None:
            self._bells.ring(queue)

        return ring


class SqliteChangeListener:
    """A worker process's ear on a SQLite file, which cannot notify: `PRAGMA data_version` on a
    connection of its own, read every `interval` seconds (0.1), changes when any other connection
    (another process's, or another of this one's) has committed a change. Then both bells
    ring; a claim that finds nothing costs a read. An empty transaction, or a claim that found
    nothing, changes nothing, so an idle instance stays quiet.

    The read takes ~7 µs and no lock (it looks at the WAL index), so it runs on the event loop
    itself; what costs is waking the loop for it: every 100 ms, ~0.3% of a core on the slow
    VM of session 5 (idle worker 1.0 → 1.3%; every 50 ms with `wait_for` it was 1.0 → 2.0%).
    New work is then seen within 100 ms instead of the 1 s poll.
    """

    def __init__(self, path: str, bells: Doorbells, *, interval: float = 0.1) -> None:
        self._path = path
        self._bells = bells
        self._interval = interval
        self.connected = asyncio.Event()  # set while watching (tests wait for it)

    async def run(self, stop: asyncio.Event) -> None:
        connection = sqlite3.connect(self._path, timeout=0, check_same_thread=False)
        try:
            version = self._version(connection)
            self.connected.set()
            while not stop.is_set():
                await asyncio.sleep(self._interval)  # a plain timer: stop is seen within it
                current = self._version(connection)
                if current is not None and current != version:
                    version = current
                    for queue in CHANNELS:
                        self._bells.ring(queue)
        finally:
            self.connected.clear()
            connection.close()

    @staticmethod
    def _version(connection: sqlite3.Connection) -> int | None:
        try:
            row = connection.execute("PRAGMA data_version").fetchone()
        except sqlite3.Error:  # busy or briefly unreadable: the next read will tell
            return None
        return int(row[0])


def listener_for(
    engine: AsyncEngine, bells: Doorbells, *, reconnect_seconds: float = RECONNECT_SECONDS
) -> DoorbellListener | SqliteChangeListener | None:
    """How this process hears of work committed by others: PostgreSQL's notifications, or a
    SQLite file's change counter; none for an in-memory database (one connection, tests)."""
    if on_asyncpg(engine):
        return DoorbellListener(engine, bells, reconnect_seconds=reconnect_seconds)
    path = sqlite_file(engine)
    return SqliteChangeListener(path, bells) if path else None


async def _first(a: asyncio.Event, b: asyncio.Event) -> None:
    """Until either event is set."""
    waits = [asyncio.ensure_future(a.wait()), asyncio.ensure_future(b.wait())]
    try:
        await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for wait in waits:
            wait.cancel()
