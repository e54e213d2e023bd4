"""The delivery worker's SQL on file-backed SQLite: each step in one hop to its own connection.

Through SQLAlchemy's aiosqlite driver every cursor, execute, fetch, commit and the pool's reset
is a round trip between the event loop and the driver's thread, and each waits for the loop to
come round: under a fan-out, with the loop busy with 64 requests, a claim's dozen hops took
12-20 ms (p50), during which no request could start. Here a claim is two hops (read the due
rows; lease the chosen ones and read their bodies) and a batch of outcomes one, on a sqlite3
connection of the worker's own used by one step at a time, which also keeps claims and batches
from waiting on each other in SQLite's busy handler. The same approach as the inbox writer
(`intake.py`, `_SqliteWriter`).

The statements are those of `delivery_sql.py` and `health.py` in SQLite's own terms; the
stored forms are SQLAlchemy's (timestamps as its SQLite DATETIME text in UTC, states as their
values), so both paths read and write the same rows (tests run the flows through this one).
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections import Counter
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

from fedcop.db import sqlite_on_connect
from fedcop.federation.delivery_sql import ActivityBodies, Choose, DueRow
from fedcop.federation.health import UNAVAILABLE_AFTER, UNAVAILABLE_AFTER_FAILURES
from fedcop.models import WorkState

# A list parameter is one JSON array read by json_each: one SQL text (one prepared statement in
# sqlite3's cache) for any length.
_DUE = (
    "SELECT d.id, d.activity_id, d.inbox_url, d.domain, d.attempts,"
    " i.unavailable_since IS NOT NULL AS unavailable"
    " FROM deliveries AS d LEFT OUTER JOIN instances AS i ON i.domain = d.domain"
    " WHERE d.state = 'pending' AND d.next_attempt_at <= :now"
    " AND (d.locked_until IS NULL OR d.locked_until < :now)"
    " AND d.domain NOT IN (SELECT value FROM json_each(:excluded))"
    " ORDER BY d.next_attempt_at, d.id LIMIT :limit"
)
_LEASE = (
    "UPDATE deliveries SET locked_until = :until WHERE id IN (SELECT value FROM json_each(:ids))"
)
_SKIP = (
    "UPDATE deliveries SET state = 'skipped', last_error = 'instance unavailable',"
    " locked_until = NULL WHERE id IN (SELECT value FROM json_each(:ids))"
)
_BODIES = (
    "SELECT id, body, actor_id FROM outbox_activities"
    " WHERE id IN (SELECT value FROM json_each(:ids))"
)
# A batch's outcomes in one statement (one step, not one per row), each row a JSON array.
_OUTCOMES = (
    "UPDATE deliveries SET state = v.value ->> 1, attempts = v.value ->> 2,"
    " next_attempt_at = v.value ->> 3, locked_until = NULL, last_status = v.value ->> 4,"
    " last_error = v.value ->> 5, delivered_at = v.value ->> 6"
    " FROM json_each(:rows) AS v WHERE deliveries.id = v.value ->> 0"
)
_SUCCESSES = (
    "UPDATE instances SET failures = 0, failing_since = NULL, unavailable_since = NULL,"
    " last_success_at = :now WHERE domain IN (SELECT value FROM json_each(:domains))"
)
# health.record_failures: create the row if missing, count, mark unavailable when due.
_FAILURES = (
    "INSERT INTO instances (domain, failures, failing_since) VALUES (:domain, :failures, :now)"
    " ON CONFLICT (domain) DO UPDATE SET"
    " failures = instances.failures + excluded.failures,"
    " failing_since = coalesce(instances.failing_since, excluded.failing_since),"
    " unavailable_since = CASE WHEN instances.unavailable_since IS NULL"
    " AND instances.failures + excluded.failures >= :threshold"
    " AND coalesce(instances.failing_since, excluded.failing_since) <= :cutoff"
    " THEN excluded.failing_since ELSE instances.unavailable_since END"
)
# breaker.defer_due
_DEFER = (
    "UPDATE deliveries SET next_attempt_at = :until WHERE domain = :domain"
    " AND state = 'pending' AND next_attempt_at <= :now"
    " AND (locked_until IS NULL OR locked_until < :now)"
)

DueTuple = tuple[int, int, str, str, int, int]


def usable() -> bool:
    """A SQLite with `->>` (3.38): otherwise the engine's path is used."""
    return sqlite3.sqlite_version_info >= (3, 38)


def stamp(moment: datetime) -> str:
    """A moment as SQLAlchemy's SQLite dialect stores UTCDateTime columns (UTC, no zone)."""
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")


class SqliteDeliveryStore:
    def __init__(self, path: str) -> None:
        self._path = path
        self._connection: sqlite3.Connection | None = None
        # One step at a time, on whichever thread of the loop's default pool: the connection
        # is never used by two threads at once (and a worker leaves no thread of its own).
        self._turn = asyncio.Lock()

    async def _run(self, function: Any, *args: Any) -> Any:
        async with self._turn:
            return await asyncio.get_running_loop().run_in_executor(None, function, *args)

    async def claim(
        self,
        now: datetime,
        scan: int,
        excluded: list[str],
        choose: Choose,
        lease: timedelta,
        bodies: ActivityBodies,
    ) -> list[DueRow]:
        """As `EngineStore.claim`, in two hops: the due rows, then (after `choose`, in the
        loop) the lease, the skips and the missing bodies in one transaction. No row lock is
        held in between: SQLite has one worker (`delivery.py`), whose own claims take turns."""
        due = await self._run(self._due, stamp(now), scan, orjson.dumps(excluded).decode())
        if not due:
            return []
        chosen, skipped = choose([DueRow(*row) for row in due])
        missing = bodies.missing({d.activity_id for d in chosen})
        found = await self._run(
            self._lease,
            [d.id for d in chosen],
            [d.id for d in skipped],
            stamp(now + lease),
            missing,
        )
        for activity_id, (body, actor_id) in found.items():
            bodies.add(activity_id, body, actor_id)
        return chosen

    async def record(
        self,
        outcomes: list[dict[str, Any]],
        answered: set[str],
        failures: Counter[str],
        deferrals: dict[str, datetime],
        now: datetime,
    ) -> int:
        """One batch's outcomes and hosts' health in one transaction; rows deferred."""
        rows = orjson.dumps([_outcome_row(o) for o in outcomes]).decode()
        deferred: int = await self._run(
            self._record,
            rows,
            orjson.dumps(sorted(answered)).decode(),
            sorted(failures.items()),
            sorted((d, stamp(until)) for d, until in deferrals.items()),
            now,
        )
        return deferred

    async def aclose(self) -> None:
        await self._run(self._close)

    # On the store's thread:

    def _connect(self) -> sqlite3.Connection:
        if self._connection is None:
            self._connection = sqlite3.connect(self._path, timeout=30, check_same_thread=False)
            sqlite_on_connect(self._connection, None)
        return self._connection

    def _close(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None

    def _due(self, now: str, limit: int, excluded: str) -> list[DueTuple]:
        connection = self._connect()
        params = {"now": now, "limit": limit, "excluded": excluded}
        return connection.execute(_DUE, params).fetchall()

    def _lease(
        self, ids: list[int], skipped: list[int], until: str, activity_ids: list[int]
    ) -> dict[int, tuple[str, int]]:
        connection = self._connect()
        with connection:  # commits, or rolls back on an error
            if ids:
                connection.execute(_LEASE, {"until": until, "ids": orjson.dumps(ids).decode()})
            if skipped:
                connection.execute(_SKIP, {"ids": orjson.dumps(skipped).decode()})
        if not activity_ids:
            return {}
        rows = connection.execute(_BODIES, {"ids": orjson.dumps(activity_ids).decode()})
        return {row[0]: (row[1], row[2]) for row in rows}

    def _record(
        self,
        rows: str,
        answered: str,
        failures: list[tuple[str, int]],
        deferrals: list[tuple[str, str]],
        now: datetime,
    ) -> int:
        connection = self._connect()
        now_text, cutoff = stamp(now), stamp(now - UNAVAILABLE_AFTER)
        deferred = 0
        with connection:  # commits, or rolls back on an error
            connection.execute(_OUTCOMES, {"rows": rows})
            connection.execute(_SUCCESSES, {"now": now_text, "domains": answered})
            connection.executemany(
                _FAILURES,
                [
                    {"domain": domain, "failures": count, "now": now_text,
                     "threshold": UNAVAILABLE_AFTER_FAILURES, "cutoff": cutoff}
                    for domain, count in failures
                ],
            )  # fmt: skip
            for domain, until in deferrals:
                params = {"until": until, "domain": domain, "now": now_text}
                deferred += connection.execute(_DEFER, params).rowcount
        return deferred


def _outcome_row(values: Mapping[str, Any]) -> list[Any]:
    """`outcome_of`'s columns as stored: state by value, timestamps as SQLite text."""
    delivered = values["delivered_at"]
    return [
        values["id"],
        WorkState(values["state"]).value,
        values["attempts"],
        stamp(values["next_attempt_at"]),
        values["last_status"],
        values["last_error"],
        stamp(delivered) if delivered is not None else None,
    ]
