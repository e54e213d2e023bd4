"""The delivery worker's SQL: claims and outcome batches as Core statements built once.

The worker runs a claim and a batch of outcomes every few milliseconds under load, so their
statements are built once per dialect and run on a bare connection (no ORM session, no
identity map), and none of them changes its SQL text with the number of rows: on PostgreSQL a
list is one array parameter (`= ANY($1)`), so asyncpg prepares each statement once instead of
once per list length, and a batch of outcomes is one `UPDATE … FROM unnest(…)`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import (
    ARRAY,
    ColumnElement,
    Integer,
    Select,
    any_,
    bindparam,
    not_,
    or_,
    select,
    text,
    update,
)
from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.orm import QueryableAttribute

from fedcop.models import Delivery, Instance, OutboxActivity, WorkState

_deliveries = Delivery.__table__
_instances = Instance.__table__

# What a claim reads of a due row: columns, not ORM objects, and whether its host is marked
# unavailable (joined in, rather than a query of its own per claim).
DueRow = Row[int, int, str, str, int, bool]

# Every outcome sets these columns (`locked_until` is always cleared).
OUTCOME_COLUMNS = ("state", "attempts", "next_attempt_at", "last_status", "last_error",
                   "delivered_at")  # fmt: skip


def member_of(
    column: ColumnElement[Any] | QueryableAttribute[Any], name: str, postgresql: bool
) -> ColumnElement[bool]:
    """`column IN (:name)` for a list parameter `name`; on PostgreSQL `column = ANY(:name)`,
    one SQL text (one prepared statement) for any length."""
    if postgresql:
        return column == any_(bindparam(name, type_=ARRAY(column.type)))
    return column.in_(bindparam(name, expanding=True, type_=column.type))


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
        return list(result.all())

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
