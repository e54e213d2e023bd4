"""The delivery worker's SQL: claims and outcome batches as Core statements built once.

The worker runs a claim and a batch of outcomes every few milliseconds under load, so their
statements are built once per dialect and run on a bare connection (no ORM session, no
identity map), and none of them changes its SQL text with the number of rows: on PostgreSQL a
list is one array parameter (`= ANY($1)`), so asyncpg prepares each statement once instead of
once per list length, and a batch of outcomes is one `UPDATE … FROM unnest(…)`.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, NamedTuple

from sqlalchemy import (
    Integer,
    Select,
    bindparam,
    not_,
    or_,
    select,
    text,
    update,
)
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from fedcop.federation.breaker import defer_due
from fedcop.federation.health import record_failures, record_successes
from fedcop.federation.sql_lists import member_of
from fedcop.models import Delivery, Instance, OutboxActivity, WorkState

_deliveries = Delivery.__table__
_instances = Instance.__table__


class DueRow(NamedTuple):
    """What a claim reads of a due row: columns, not ORM objects, and whether its host is
    marked unavailable (joined in, rather than a query of its own per claim)."""

    id: int
    activity_id: int
    inbox_url: str
    domain: str
    attempts: int
    unavailable: bool


# Given the due rows: the ones to lease now, and the ones to mark skipped (unavailable hosts).
Choose = Callable[[list[DueRow]], tuple[list[DueRow], list[DueRow]]]

# Every outcome sets these columns (`locked_until` is always cleared).
OUTCOME_COLUMNS = ("state", "attempts", "next_attempt_at", "last_status", "last_error",
                   "delivered_at")  # fmt: skip


@dataclass(frozen=True, slots=True)
class DeliverySql:
    """The worker's statements for one dialect."""

    postgresql: bool
    due: Any
    lease: Any
    skip: Any
    bodies: Select[int, str, int]
    outcomes: Any

    @classmethod
    def for_dialect(cls, name: str) -> DeliverySql:
        postgresql = name == "postgresql"
        return cls(
            postgresql=postgresql,
            due=_due(postgresql),
            lease=update(Delivery)
            .where(member_of(_deliveries.c.id, "ids", postgresql))
            .values(locked_until=bindparam("until")),
            skip=update(Delivery)
            .where(member_of(_deliveries.c.id, "ids", postgresql))
            .values(state=WorkState.SKIPPED, last_error="instance unavailable", locked_until=None),
            bodies=select(OutboxActivity.id, OutboxActivity.body, OutboxActivity.actor_id).where(
                member_of(OutboxActivity.id, "ids", postgresql)
            ),
            outcomes=_POSTGRES_OUTCOMES if postgresql else _outcomes_by_id(),
        )

    async def lock_due(
        self, connection: AsyncConnection, now: datetime, limit: int, excluded: list[str]
    ) -> list[DueRow]:
        """Up to `limit` due, unleased rows not on `excluded` hosts, oldest first (locked
        FOR UPDATE SKIP LOCKED on PostgreSQL)."""
        result = await connection.execute(
            self.due, {"now": now, "limit": limit, "excluded": excluded}
        )
        return [DueRow(*row) for row in result]

    async def record_outcomes(
        self, connection: AsyncConnection, outcomes: list[dict[str, Any]]
    ) -> None:
        """Each row's new columns (`values` of `outcome_of`), in one statement."""
        if self.postgresql:
            params = {column: [o[column] for o in outcomes] for column in OUTCOME_COLUMNS}
            params["state"] = [str(state) for state in params["state"]]
            params["ids"] = [o["id"] for o in outcomes]
            await connection.execute(self.outcomes, params)
        else:  # one executemany: SQLite's UPDATE … FROM would need the rows as JSON text
            await connection.execute(self.outcomes, [{"row_id": o["id"], **o} for o in outcomes])


def _due(postgresql: bool) -> Any:
    query = (
        select(
            _deliveries.c.id,
            _deliveries.c.activity_id,
            _deliveries.c.inbox_url,
            _deliveries.c.domain,
            _deliveries.c.attempts,
            _instances.c.unavailable_since.is_not(None).label("unavailable"),
        )
        .select_from(_deliveries.outerjoin(_instances, _instances.c.domain == _deliveries.c.domain))
        .where(
            _deliveries.c.state == WorkState.PENDING,
            _deliveries.c.next_attempt_at <= bindparam("now"),
            or_(
                _deliveries.c.locked_until.is_(None), _deliveries.c.locked_until < bindparam("now")
            ),
            not_(member_of(_deliveries.c.domain, "excluded", postgresql)),
        )
        .order_by(_deliveries.c.next_attempt_at, _deliveries.c.id)
        .limit(bindparam("limit", type_=Integer))
    )
    # Only the delivery rows are locked: the instances row is read, never written, here.
    return query.with_for_update(of=_deliveries, skip_locked=True)


def _outcomes_by_id() -> Any:
    return (
        update(Delivery)
        .where(_deliveries.c.id == bindparam("row_id"))
        .values(locked_until=None, **{c: bindparam(c) for c in OUTCOME_COLUMNS})
    )


# A batch's outcomes as one statement: one array per column, zipped by unnest.
_POSTGRES_OUTCOMES = text(
    "UPDATE deliveries SET state = v.state, attempts = v.attempts,"
    " next_attempt_at = v.next_attempt_at, locked_until = NULL, last_status = v.last_status,"
    " last_error = v.last_error, delivered_at = v.delivered_at"
    " FROM unnest(CAST(:ids AS INTEGER[]), CAST(:state AS VARCHAR[]), CAST(:attempts AS INTEGER[]),"
    " CAST(:next_attempt_at AS TIMESTAMPTZ[]), CAST(:last_status AS INTEGER[]),"
    " CAST(:last_error AS TEXT[]), CAST(:delivered_at AS TIMESTAMPTZ[]))"
    " AS v(id, state, attempts, next_attempt_at, last_status, last_error, delivered_at)"
    " WHERE deliveries.id = v.id"
)


class ActivityBodies:
    """The bodies of the activities being delivered, by id: an activity's body never changes
    once published, and a fan-out's every claim would otherwise read the same one again."""

    def __init__(self, size: int = 256) -> None:
        self._bodies: dict[int, tuple[bytes, int]] = {}
        self._size = size

    def missing(self, activity_ids: set[int]) -> list[int]:
        return [i for i in activity_ids if i not in self._bodies]

    def add(self, activity_id: int, body: str, actor_id: int) -> None:
        if len(self._bodies) >= self._size:  # the oldest first: dicts keep their order
            del self._bodies[next(iter(self._bodies))]
        self._bodies[activity_id] = (body.encode(), actor_id)

    def __getitem__(self, activity_id: int) -> tuple[bytes, int]:
        """(body, actor id)"""
        return self._bodies[activity_id]


class EngineStore:
    """Claims and outcome batches through the SQLAlchemy engine (PostgreSQL; SQLite in memory).

    A claim is one transaction: the due rows are locked FOR UPDATE SKIP LOCKED on PostgreSQL
    until their lease is written, so workers never share a row.
    """

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine
        self._sql = DeliverySql.for_dialect(engine.dialect.name)
        self._turns = WriteTurns(engine)

    async def claim(
        self,
        now: datetime,
        scan: int,
        excluded: list[str],
        choose: Choose,
        lease: timedelta,
        bodies: ActivityBodies,
    ) -> list[DueRow]:
        """Up to `scan` due rows go to `choose`; lease the chosen, skip the skipped, and have
        the chosen rows' activity bodies in `bodies`. Returns the chosen rows."""
        async with self._turns, self._engine.begin() as connection:
            rows = await self._sql.lock_due(connection, now, scan, excluded)
            if not rows:
                return []
            chosen, skipped = choose(rows)
            if chosen:
                ids = [d.id for d in chosen]
                await connection.execute(self._sql.lease, {"ids": ids, "until": now + lease})
            if skipped:
                await connection.execute(self._sql.skip, {"ids": [d.id for d in skipped]})
            missing = bodies.missing({d.activity_id for d in chosen})
            if missing:
                for row in await connection.execute(self._sql.bodies, {"ids": missing}):
                    bodies.add(row.id, row.body, row.actor_id)
        return chosen

    async def record(
        self,
        outcomes: list[dict[str, Any]],
        answered: set[str],
        failures: Counter[str],
        deferrals: dict[str, datetime],
        now: datetime,
    ) -> int:
        """One batch of outcomes and its hosts' health in one transaction; returns how many
        rows the deferrals pushed back."""
        async with self._turns, self._engine.begin() as connection:
            await self._sql.record_outcomes(connection, outcomes)
            await record_successes(connection, answered, now)
            await record_failures(connection, failures, now)
            return sum(
                [await defer_due(connection, d, deferrals[d], now) for d in sorted(deferrals)]
            )


class WriteTurns:
    """On SQLite, the worker's claims and outcome batches take turns in the event loop.

    SQLite has one writer: a claim whose lease UPDATE finds a batch committing waits in
    SQLite's busy handler, which sleeps 1, 2, 5, 10, 15 ms … between tries, so a 4 ms commit
    held a claim up ~8 ms and a 10 ms one ~18 ms (claims took up to 45 ms in the followers
    bench), with slots left empty meanwhile. Waiting for an asyncio lock instead, a claim starts
    the moment the commit ends. PostgreSQL locks rows, not the database: no turns there.
    """

    def __init__(self, engine: AsyncEngine) -> None:
        self._lock = asyncio.Lock() if engine.dialect.name == "sqlite" else None

    async def __aenter__(self) -> None:
        if self._lock is not None:
            await self._lock.acquire()

    async def __aexit__(self, *exc_info: object) -> None:
        if self._lock is not None:
            self._lock.release()
