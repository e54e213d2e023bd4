"""The inbox writer's batches on file-backed SQLite: the DB-API on a thread, checkpoints apart.

The INSERT is in the DB-API's own terms. The columns and their stored forms are exactly what
SQLAlchemy writes for `InboxItem` (tests/db/test_inbox_writer.py compares the two row by row):
JSON as text (read back with json.loads), timestamps in UTC as SQLAlchemy's SQLite DATETIME
text, so `next_attempt_at <= ?` comparisons still hold.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, Executable, Row, StaticPool, create_engine
from sqlalchemy.ext.asyncio import AsyncEngine

from fedcop.db import sqlite_on_connect
from fedcop.models import WorkState

if TYPE_CHECKING:
    from fedcop.federation.intake import InboxRow

log = logging.getLogger(__name__)

# One statement inserts a whole chunk of rows: sqlite3 releases the GIL around every step, and
# executemany steps once per row, so a batch of 32 handed the GIL between the writer thread and
# the event loop 32 times (~12 µs of CPU per request, bench/verify.py); a multi-row VALUES
# steps once. Chunks keep the parameters under SQLite's old default limit of 999.
ROWS_PER_STATEMENT = 128
# Rows committed between two checkpoints (a few MB of WAL at ~1.5 KB a row with its index).
CHECKPOINT_EVERY_ROWS = 1000

_INSERT_HEAD = (
    "INSERT INTO inbox_items (ap_id, type, actor_ap_id, activity, state, attempts,"
    " next_attempt_at, received_at) VALUES "
)
_ROW_PLACEHOLDERS = "(?, ?, ?, ?, ?, 0, ?, ?)"


@lru_cache(maxsize=ROWS_PER_STATEMENT)
def insert_statement(rows: int) -> str:
    """The INSERT for `rows` rows: only placeholders are repeated, no value is ever inlined."""
    values = ", ".join([_ROW_PLACEHOLDERS] * rows)
    return _INSERT_HEAD + values + " ON CONFLICT (ap_id) DO NOTHING"


def sqlite_timestamp(moment: datetime) -> str:
    """A UTC moment as SQLAlchemy's SQLite dialect stores DateTime columns."""
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")


class SqliteWriter:
    """Runs the batch INSERT + COMMIT on one thread with a sqlite3 connection of its own.

    Why not SQLAlchemy here: binding rows through its executemany cost ~25 µs a row (parameter
    construction, the JSON and DATETIME bind processors), more than the INSERT itself; the
    statement is fixed, so the DB-API does it with precompiled statements.
    The connection is opened lazily on the first batch, with the engine's pragmas
    (`sqlite_on_connect`), and lives on the writer's thread (SQLite connections belong to one).

    Checkpoints (copying the WAL back into the database file, with an fsync) are taken off the
    commit path: left to SQLite, the commit that crosses 1,000 WAL pages runs one, 6-8 ms here,
    and the 32 requests waiting on that commit all answer late (bench/inbox.py's p99). The
    writer's connection turns automatic checkpoints off, and a second thread with its own
    connection runs a PASSIVE checkpoint (never blocks a writer or reader) every
    CHECKPOINT_EVERY_ROWS rows. Other connections keep SQLite's automatic checkpoint, so the
    WAL is bounded even if this one were to fail.
    """

    def __init__(self, engine: AsyncEngine) -> None:
        self._path = str(engine.url.database)
        self._connection: sqlite3.Connection | None = None
        self._statements: Connection | None = None  # SQLAlchemy over the same connection
        self._thread = ThreadPoolExecutor(1, thread_name_prefix="fedcop-inbox-writer")
        self._checkpointer = _Checkpointer(self._path)
        self._rows_since_checkpoint = 0

    async def commit(self, rows: list[InboxRow], now: datetime) -> None:
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(self._thread, self._commit, rows, now)
        self._rows_since_checkpoint += len(rows)
        if self._rows_since_checkpoint >= CHECKPOINT_EVERY_ROWS and self._checkpointer.start():
            self._rows_since_checkpoint = 0

    async def execute(self, statement: Executable) -> list[Row[Any]]:
        """Run one writing statement and commit it on the writer's thread and connection,
        between batches: it never waits for SQLite's write lock behind them, nor they behind it.
        """
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._thread, self._execute, statement)

    async def aclose(self) -> None:
        """Close the connections on their own threads."""
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(self._thread, self._close)
        self._thread.shutdown(wait=True)
        await self._checkpointer.aclose()

    def _close(self) -> None:
        if self._statements is not None:
            self._statements.close()
            self._statements = None
        if self._connection is not None:
            self._connection.close()
            self._connection = None

    def _connect(self) -> sqlite3.Connection:
        if self._connection is None:
            self._connection = sqlite3.connect(self._path, timeout=30, check_same_thread=False)
            sqlite_on_connect(self._connection, None)
            self._connection.execute("PRAGMA wal_autocheckpoint=0")
        return self._connection

    def _execute(self, statement: Executable) -> list[Row[Any]]:
        if self._statements is None:
            # A synchronous engine whose one connection is this writer's: the statement is
            # compiled and its values bound by SQLAlchemy's SQLite dialect, as on any other
            # connection, but the write happens here, in turn with the batches.
            engine = create_engine("sqlite://", creator=self._connect, poolclass=StaticPool)
            self._statements = engine.connect()
        connection = self._statements
        try:
            rows = list(connection.execute(statement).all())
            connection.commit()
        except BaseException:
            connection.rollback()
            raise
        return rows

    def _commit(self, rows: list[InboxRow], now: datetime) -> None:
        stamp = sqlite_timestamp(now)
        pending = WorkState.PENDING.value
        connection = self._connect()
        try:
            for start in range(0, len(rows), ROWS_PER_STATEMENT):
                chunk = rows[start : start + ROWS_PER_STATEMENT]
                values = [
                    field
                    for row in chunk
                    for field in (row.ap_id, row.type, row.actor_ap_id, row.activity_json(),
                                  pending, stamp, stamp)
                ]  # fmt: skip
                connection.execute(insert_statement(len(chunk)), values)
            connection.commit()
        except BaseException:
            connection.rollback()
            raise


class _Checkpointer:
    """PASSIVE checkpoints on a thread and connection of their own, one at a time."""

    def __init__(self, path: str) -> None:
        self._path = path
        self._connection: sqlite3.Connection | None = None
        self._thread = ThreadPoolExecutor(1, thread_name_prefix="fedcop-inbox-checkpoint")
        self._running: asyncio.Future[None] | None = None
        self.completed = 0  # checkpoints taken (tests)

    def start(self) -> bool:
        """Start a checkpoint unless one is running; whether one was started."""
        if self._running is not None and not self._running.done():
            return False
        loop = asyncio.get_running_loop()
        self._running = loop.run_in_executor(self._thread, self._checkpoint)
        self._running.add_done_callback(self._finished)
        return True

    async def aclose(self) -> None:
        if self._running is not None:
            await asyncio.gather(self._running, return_exceptions=True)
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(self._thread, self._close)
        self._thread.shutdown(wait=True)

    def _checkpoint(self) -> None:
        if self._connection is None:
            self._connection = sqlite3.connect(self._path, timeout=30, check_same_thread=False)
        self._connection.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()

    def _finished(self, future: asyncio.Future[None]) -> None:
        if future.cancelled():
            return
        error = future.exception()
        if error is None:
            self.completed += 1
        else:  # not fatal: the other connections' automatic checkpoints still bound the WAL
            log.warning("inbox WAL checkpoint failed: %s", error)

    def _close(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None
