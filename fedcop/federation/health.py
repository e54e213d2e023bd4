"""Other servers' health: failures across days mark a server unavailable; any sign of life
clears the mark. Mastodon does the same with its `unavailable_domains`
(https://github.com/mastodon/mastodon/blob/main/app/lib/delivery_failure_tracker.rb).
"""

from __future__ import annotations

import functools
from collections.abc import Collection, Mapping
from datetime import datetime, timedelta

from sqlalchemy import Insert, Integer, String, Update, and_, bindparam, case, func, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from fedcop.db import insert_for
from fedcop.federation.sql_lists import member_of
from fedcop.models import Instance

# Unavailable once it has failed this many times, the first failure this long ago.
UNAVAILABLE_AFTER_FAILURES = 5
UNAVAILABLE_AFTER = timedelta(days=2)


async def record_failure(
    session: AsyncSession, domain: str, now: datetime, failures: int = 1
) -> None:
    """Count `failures` failed requests to `domain`."""
    await record_failures(session, {domain: failures}, now)


async def record_failures(
    executor: AsyncSession | AsyncConnection, failures: Mapping[str, int], now: datetime
) -> None:
    """Count each host's failed requests, in one executemany (the delivery worker records a
    batch's failures at once: one row lock per host per batch, not per delivery). A host's row
    is created if missing; once it has failed UNAVAILABLE_AFTER_FAILURES times over at least
    UNAVAILABLE_AFTER, it is marked unavailable."""
    if failures:
        await executor.execute(
            _failures_statement(_dialect(executor)),
            [
                {"domain": domain, "failures": count, "now": now,
                 "cutoff": now - UNAVAILABLE_AFTER}
                for domain, count in sorted(failures.items())  # sorted: one lock order
            ],
        )  # fmt: skip


async def record_success(session: AsyncSession, domain: str, now: datetime) -> None:
    """The server answered: clear any failure streak (one cheap UPDATE, no row needed)."""
    await session.execute(
        update(Instance)
        .where(Instance.domain == domain)
        .values(failures=0, failing_since=None, unavailable_since=None, last_success_at=now)
    )


async def record_successes(
    executor: AsyncSession | AsyncConnection, domains: Collection[str], now: datetime
) -> None:
    """`record_success` for many servers in one statement (a batch of delivery outcomes)."""
    if domains:
        await executor.execute(
            _successes_statement(_dialect(executor)),
            {"domains": sorted(domains), "now": now},  # sorted: one lock order for all workers
        )


async def unavailable_domains(session: AsyncSession) -> frozenset[str]:
    query = select(Instance.domain).where(Instance.unavailable_since.is_not(None))
    return frozenset((await session.scalars(query)).all())


def _dialect(executor: AsyncSession | AsyncConnection) -> str:
    bind = executor.bind if isinstance(executor, AsyncSession) else executor
    return bind.dialect.name if bind is not None else "sqlite"


@functools.cache
def _successes_statement(dialect: str) -> Update:
    return (
        update(Instance)
        .where(member_of(Instance.domain, "domains", dialect == "postgresql"))
        .values(
            failures=0, failing_since=None, unavailable_since=None, last_success_at=bindparam("now")
        )
    )


@functools.cache
def _failures_statement(dialect: str) -> Insert:
    """INSERT … ON CONFLICT DO UPDATE: the failure count, its start, and the mark when due."""
    statement = insert_for(dialect, Instance).values(
        domain=bindparam("domain", type_=String),
        failures=bindparam("failures", type_=Integer),
        failing_since=bindparam("now"),
    )
    current, new = Instance.__table__.c, statement.excluded
    total = current.failures + new.failures
    since = func.coalesce(current.failing_since, new.failing_since)
    newly_unavailable = and_(
        current.unavailable_since.is_(None),
        total >= UNAVAILABLE_AFTER_FAILURES,
        since <= bindparam("cutoff", type_=current.failing_since.type),
    )
    return statement.on_conflict_do_update(
        index_elements=[current.domain],
        set_={
            "failures": total,
            "failing_since": since,
            "unavailable_since": case(
                (newly_unavailable, new.failing_since), else_=current.unavailable_since
            ),
        },
    )
