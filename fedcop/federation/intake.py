"""Keeping authenticated inbound activities: de-duplication and group-committed inbox rows.

Each accepted request must be durable before its 202, but one transaction per request caps a
server at its database's commit rate. So requests hand their row to one writer that commits
everything that arrived while the previous commit ran, in one transaction (group commit), and
answers them all together: the same durability, a fraction of the commits.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from collections.abc import Awaitable
from datetime import datetime
from operator import attrgetter
from typing import Any, NamedTuple, Protocol

import asyncpg
import orjson
from sqlalchemy import Executable, Row
from sqlalchemy.ext.asyncio import AsyncEngine

from fedcop.db import engine_writes, insert_for, on_asyncpg, sqlite_file
from fedcop.federation.doorbell import Doorbell
from fedcop.federation.intake_sqlite import SqliteWriter
from fedcop.models import InboxItem, WorkState, utcnow

MAX_BATCH = 500
# The writer's PostgreSQL application_name, to spot its connection in pg_stat_activity.
WRITER_NAME = "fedcop-inbox-writer"


class InboxRow(NamedTuple):  # one per accepted request: cheaper to build than a dataclass
    ap_id: str
    type: str
    actor_ap_id: str
    activity: dict[str, Any]
    # The activity as JSON text when the caller has it already (the inbox: the body as
    # received, which parses back to `activity`), so the writer need not serialise it again.
    encoded: str | None = None

    def activity_json(self) -> str:
        return self.encoded if self.encoded is not None else orjson.dumps(self.activity).decode()


class RecentIds:
    """Activity ids this process has already stored, so repeats are answered without work.

    The unique index on inbox_items.ap_id stays the real guard (other processes, restarts).
    """

    def __init__(self, size: int = 50_000) -> None:
        self._ids: OrderedDict[str, None] = OrderedDict()
        self._size = size

    def __contains__(self, activity_id: object) -> bool:
        return activity_id in self._ids

    def add(self, activity_id: str) -> None:
        self._ids[activity_id] = None
        if len(self._ids) > self._size:
            self._ids.popitem(last=False)


class InboxWriter:
    def __init__(self, engine: AsyncEngine, *, doorbell: Doorbell | None = None) -> None:
        self._doorbell = doorbell  # rung after each batch's commit: the processor wakes
        self._waiting: list[tuple[InboxRow, asyncio.Future[None]]] = []
        self._pending: dict[str, asyncio.Future[None]] = {}
        self._flusher: asyncio.Task[None] | None = None
        self._store = _store_for(engine)

    async def aclose(self) -> None:
        if self._flusher is not None:
            await asyncio.gather(self._flusher, return_exceptions=True)
        await self._store.aclose()

    async def execute_write(self, statement: Executable) -> list[Row[Any]]:
        """Run one writing statement (committed by itself) in this process's write lane.

        On a SQLite file that is the writer's own thread and connection, in turn with the
        batches. Through another connection, each such write (a remote actor stored on first
        sight) took SQLite's one write lock at random moments, and the next batch's commit then
        slept in SQLite's busy handler (1, 2, 5, 10 ms …) with every request waiting on it: with
        5% of requests from unseen actors, the others' p99 doubled (`bench unknown_keys`).
        Elsewhere (PostgreSQL locks rows, not the database) it runs on a pooled connection.
        """
        return await self._store.execute(statement)

    def pending(self, activity_id: str) -> asyncio.Future[None] | None:
        """The commit a copy of this activity is already waiting for, if any."""
        return self._pending.get(activity_id)

    async def write(self, row: InboxRow) -> None:
        """Return once `row` is committed (or was already there: ids are unique)."""
        waiting = self._pending.get(row.ap_id)
        if waiting is not None:  # a copy raced this one here: share its commit
            # Shielded: cancelling this request must not cancel the commit the first awaits.
            await asyncio.shield(waiting)
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._pending[row.ap_id] = future
        self._waiting.append((row, future))
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.create_task(self._flush_all())
        # Not shielded (a shield per request cost a second future and two more callbacks):
        # if this request is cancelled, its own future is, and the batch skips answering it.
        await future

    async def _flush_all(self) -> None:
        while self._waiting:
            batch, self._waiting = self._waiting[:MAX_BATCH], self._waiting[MAX_BATCH:]
            try:
                await self._commit([row for row, _ in batch])
            except Exception as exc:  # every waiting request learns of the failure
                for row, future in batch:
                    self._pending.pop(row.ap_id, None)
                    if not future.done():
                        future.set_exception(exc)
            else:
                for row, future in batch:
                    self._pending.pop(row.ap_id, None)
                    if not future.done():
                        future.set_result(None)
                if self._doorbell is not None:
                    self._doorbell.ring()

    async def _commit(self, rows: list[InboxRow]) -> None:
        # In activity-id order, so that batches of several processes holding the same ids
        # take them in the same order. PostgreSQL makes an INSERT wait for another
        # transaction's uncommitted row with its key; in arrival order, two batches with the
        # same ids in opposite orders waited on each other for deadlock_timeout (1 s), and
        # then every request of one of them got a 503. Arrival order within a batch means
        # nothing to the sender: none of these requests had been answered yet.
        rows.sort(key=attrgetter("ap_id"))
        await self._store.commit(rows, utcnow())


class _BatchStore(Protocol):
    async def commit(self, rows: list[InboxRow], now: datetime) -> None: ...
    def execute(self, statement: Executable, /) -> Awaitable[list[Row[Any]]]: ...
    async def aclose(self) -> None: ...


def _store_for(engine: AsyncEngine) -> _BatchStore:
    """The cheapest way to run one batch's INSERT and COMMIT on this database.

    Through SQLAlchemy a batch costs a pool checkout, the dialect's parameter binding for every
    row (~25 µs a row), a commit and a reset on return; the statement never changes, so on
    file-backed SQLite and on PostgreSQL the writer talks to the driver itself, on a
    connection of its own. In-memory SQLite (tests) has to share the engine's connection.
    """
    if sqlite_file(engine):
        return SqliteWriter(engine)
    if on_asyncpg(engine):
        return _PostgresWriter(engine)
    return _EngineWriter(engine)


class _EngineWriter:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine
        # One statement object, so SQLAlchemy compiles it once per engine.
        self._statement = insert_for(engine.dialect.name, InboxItem).on_conflict_do_nothing(
            index_elements=["ap_id"]
        )
        self.execute = engine_writes(engine)

    async def commit(self, rows: list[InboxRow], now: datetime) -> None:
        async with self._engine.begin() as connection:
            await connection.execute(self._statement, _values(rows, now))

    async def aclose(self) -> None:
        return None


_POSTGRES_INSERT = (
    "INSERT INTO inbox_items (ap_id, type, actor_ap_id, activity, state, attempts,"
    " next_attempt_at, received_at) VALUES ($1, $2, $3, $4, $5, 0, $6, $6)"
    " ON CONFLICT (ap_id) DO NOTHING"
)


# What a connection the server dropped raises on its next use. A terminated backend can also
# leave asyncpg's protocol mid-state ("cannot switch to state 13; another operation is in
# progress", InternalClientError) rather than closed.
_BROKEN_CONNECTION = (
    asyncpg.PostgresConnectionError,
    asyncpg.InterfaceError,
    asyncpg.InternalClientError,
    OSError,
)


class _PostgresWriter:
    """The batch INSERT on an asyncpg connection of the writer's own: one prepared statement,
    one pipelined `executemany` (atomic: all rows or none) and its commit, one round trip.

    A connection lost with the database (a restart, a failover) is replaced, and the batch
    tried once more on the new one: it is idempotent (ON CONFLICT DO NOTHING, all or nothing).
    """

    def __init__(self, engine: AsyncEngine) -> None:
        url = engine.url.set(drivername="postgresql")
        self._dsn = url.render_as_string(hide_password=False)
        self._connection: asyncpg.Connection | None = None
        self.execute = engine_writes(engine)  # other writes: PostgreSQL locks rows, not files

    async def commit(self, rows: list[InboxRow], now: datetime) -> None:
        pending = WorkState.PENDING.value
        records = [
            (row.ap_id, row.type, row.actor_ap_id, row.activity_json(), pending, now)
            for row in rows
        ]
        for attempt in (1, 2):
            connection = await self._connect()
            try:
                await connection.executemany(_POSTGRES_INSERT, records)
                return
            except _BROKEN_CONNECTION:
                await self.aclose()
                if attempt == 2:
                    raise

    async def _connect(self) -> asyncpg.Connection:
        if self._connection is None or self._connection.is_closed():
            self._connection = await asyncpg.connect(
                self._dsn, timeout=10, server_settings={"application_name": WRITER_NAME}
            )
        return self._connection

    async def aclose(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None and not connection.is_closed():
            connection.terminate()


def _values(rows: list[InboxRow], now: datetime) -> list[dict[str, Any]]:
    return [
        {
            "ap_id": row.ap_id, "type": row.type, "actor_ap_id": row.actor_ap_id,
            "activity": row.activity, "state": WorkState.PENDING, "attempts": 0,
            "next_attempt_at": now, "received_at": now,
        }
        for row in rows
    ]  # fmt: skip
