"""The delivery worker's SQL on PostgreSQL, spoken to asyncpg directly.

Through SQLAlchemy each statement of a claim or an outcome batch cost its compiled-cache
look-up, parameter processing and the asyncpg adapter's own layer: claims and batches were
~16% of the event loop's busy time in a fan-out (py-spy, `bench followers --database
postgresql`), against ~3% for the SQLite store (`delivery_sqlite.py`), and the loop is what
limits the worker's rate. Here the connection still comes from the engine's pool (its
lifecycle, pre-ping and disposal stay the engine's), but the statements go to the asyncpg
connection underneath: a claim is BEGIN, the locked due rows, one statement for the lease,
the skips and the missing bodies, COMMIT; a batch of outcomes is BEGIN, one UPDATE … FROM
unnest, the hosts' health, COMMIT.

The statements are those of `delivery_sql.py`, `health.py` and `breaker.defer_due`; the
tests run the delivery flows through this store on PostgreSQL.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime, timedelta
from typing import Any

import asyncpg
from sqlalchemy.ext.asyncio import AsyncEngine

from fedcop.federation.delivery_sql import OUTCOME_COLUMNS, ActivityBodies, Choose, DueRow
from fedcop.federation.health import UNAVAILABLE_AFTER, UNAVAILABLE_AFTER_FAILURES
from fedcop.models import WorkState

_DUE = (
    "SELECT d.id, d.activity_id, d.inbox_url, d.domain, d.attempts,"
    " i.unavailable_since IS NOT NULL AS unavailable"
    " FROM deliveries AS d LEFT OUTER JOIN instances AS i ON i.domain = d.domain"
    " WHERE d.state = 'pending' AND d.next_attempt_at <= $1"
    " AND (d.locked_until IS NULL OR d.locked_until < $1)"
    " AND d.domain <> ALL($3::varchar[])"
    " ORDER BY d.next_attempt_at, d.id LIMIT $2"
    " FOR UPDATE OF d SKIP LOCKED"  # only the delivery rows: instances are read, not written
)
# The lease, the skips and the bodies in one round trip: a data-modifying WITH runs whether
# or not the main query reads it.
_LEASE_SKIP_BODIES = (
    "WITH leased AS (UPDATE deliveries SET locked_until = $2 WHERE id = ANY($1::integer[])),"
    " skipped AS (UPDATE deliveries SET state = 'skipped', last_error = 'instance unavailable',"
    " locked_until = NULL WHERE id = ANY($3::integer[]))"
    " SELECT id, body, actor_id FROM outbox_activities WHERE id = ANY($4::integer[])"
)
_OUTCOMES = (
    "UPDATE deliveries SET state = v.state, attempts = v.attempts,"
    " next_attempt_at = v.next_attempt_at, locked_until = NULL, last_status = v.last_status,"
    " last_error = v.last_error, delivered_at = v.delivered_at"
    " FROM unnest($1::integer[], $2::varchar[], $3::integer[], $4::timestamptz[],"
    " $5::integer[], $6::text[], $7::timestamptz[])"
    " AS v(id, state, attempts, next_attempt_at, last_status, last_error, delivered_at)"
    " WHERE deliveries.id = v.id"
)
_SUCCESSES = (
    "UPDATE instances SET failures = 0, failing_since = NULL, unavailable_since = NULL,"
    " last_success_at = $2 WHERE domain = ANY($1::varchar[])"
)
# health.record_failures: create the row if missing, count, mark unavailable when due.
_FAILURES = (
    "INSERT INTO instances (domain, failures, failing_since) VALUES ($1, $2, $3)"
    " ON CONFLICT (domain) DO UPDATE SET"
    " failures = instances.failures + excluded.failures,"
    " failing_since = coalesce(instances.failing_since, excluded.failing_since),"
    " unavailable_since = CASE WHEN instances.unavailable_since IS NULL"
    " AND instances.failures + excluded.failures >= $4"
    " AND coalesce(instances.failing_since, excluded.failing_since) <= $5"
    " THEN excluded.failing_since ELSE instances.unavailable_since END"
)
# breaker.defer_due
_DEFER = (
    "UPDATE deliveries SET next_attempt_at = $2 WHERE domain = $1"
    " AND state = 'pending' AND next_attempt_at <= $3"
    " AND (locked_until IS NULL OR locked_until < $3)"
)

# A connection the database dropped (restart, failover) fails with one of these; they are
# raised as ConnectionError, which `db.is_database_outage` (and so `worker.run_workers`)
# knows: the loops stop and start again once the database answers.
# A terminated backend can also leave asyncpg's protocol mid-state (InternalClientError).
_LOST = (asyncpg.PostgresConnectionError, asyncpg.InterfaceError, asyncpg.InternalClientError,
         asyncpg.CannotConnectNowError, asyncpg.AdminShutdownError, OSError)  # fmt: skip


class PostgresDeliveryStore:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    @asynccontextmanager
    async def _transaction(self) -> AsyncIterator[asyncpg.Connection]:
        """A pooled connection's asyncpg connection, in a transaction of its own."""
        try:
            async with self._engine.connect() as pooled:
                raw = (await pooled.get_raw_connection()).driver_connection
                assert raw is not None
                async with raw.transaction():
                    yield raw
        except _LOST as exc:
            raise ConnectionError(f"lost the database connection: {exc}") from exc

    async def claim(
        self,
        now: datetime,
        scan: int,
        excluded: list[str],
        choose: Choose,
        lease: timedelta,
        bodies: ActivityBodies,
    ) -> list[DueRow]:
        """As `EngineStore.claim`: the due rows stay locked until their lease is written."""
        async with self._transaction() as connection:
            due = [DueRow(*row) for row in await connection.fetch(_DUE, now, scan, excluded)]
            if not due:
                return []
            chosen, skipped = choose(due)
            missing = bodies.missing({d.activity_id for d in chosen})
            found = await connection.fetch(
                _LEASE_SKIP_BODIES,
                [d.id for d in chosen],
                now + lease,
                [d.id for d in skipped],
                missing,
            )
        for row in found:
            bodies.add(row[0], row[1], row[2])
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
        columns = [[o[column] for o in outcomes] for column in OUTCOME_COLUMNS]
        states = [WorkState(state).value for state in columns[0]]
        deferred = 0
        async with self._transaction() as connection:
            await connection.execute(_OUTCOMES, [o["id"] for o in outcomes], states, *columns[1:])
            if answered:  # sorted: one lock order for every worker
                await connection.execute(_SUCCESSES, sorted(answered), now)
            if failures:
                cutoff = now - UNAVAILABLE_AFTER
                await connection.executemany(
                    _FAILURES,
                    [
                        (domain, count, now, UNAVAILABLE_AFTER_FAILURES, cutoff)
                        for domain, count in sorted(failures.items())
                    ],
                )
            for domain in sorted(deferrals):
                status = await connection.execute(_DEFER, domain, deferrals[domain], now)
                deferred += int(status.rsplit(" ", 1)[-1])  # "UPDATE n"
        return deferred
