"""Other servers' health: failures across days mark a server unavailable; any sign of life
clears the mark. Mastodon does the same with its `unavailable_domains`
(https://github.com/mastodon/mastodon/blob/main/app/lib/delivery_failure_tracker.rb).
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from fedcop.models import Instance

# Unavailable once it has failed this many times, the first failure this long ago.
UNAVAILABLE_AFTER_FAILURES = 5
UNAVAILABLE_AFTER = timedelta(days=2)


async def record_failure(
    session: AsyncSession, domain: str, now: datetime, failures: int = 1
) -> None:
    """Count `failures` failed requests to `domain` (the delivery worker records a batch's
    failures for one host at once: one row lock per host per batch, not per delivery)."""
    instance = await _instance(session, domain)
    instance.failures += failures
    instance.failing_since = instance.failing_since or now
    if (
        instance.unavailable_since is None
        and instance.failures >= UNAVAILABLE_AFTER_FAILURES
        and now - instance.failing_since >= UNAVAILABLE_AFTER
    ):
        instance.unavailable_since = now


async def record_success(session: AsyncSession, domain: str, now: datetime) -> None:
    """The server answered: clear any failure streak (one cheap UPDATE, no row needed)."""
    await session.execute(
        update(Instance)
        .where(Instance.domain == domain)
        .values(failures=0, failing_since=None, unavailable_since=None, last_success_at=now)
    )


async def record_successes(session: AsyncSession, domains: Collection[str], now: datetime) -> None:
    """`record_success` for many servers in one statement (a batch of delivery outcomes)."""
    if domains:
        await session.execute(
            update(Instance)
            .where(Instance.domain.in_(sorted(domains)))  # sorted: one lock order for all workers
            .values(failures=0, failing_since=None, unavailable_since=None, last_success_at=now)
        )


async def unavailable_domains(session: AsyncSession) -> frozenset[str]:
    query = select(Instance.domain).where(Instance.unavailable_since.is_not(None))
    return frozenset((await session.scalars(query)).all())


async def _instance(session: AsyncSession, domain: str) -> Instance:
    dialect = session.bind.dialect.name if session.bind is not None else "sqlite"
    insert = pg_insert if dialect == "postgresql" else sqlite_insert
    await session.execute(
        insert(Instance).values(domain=domain, failures=0).on_conflict_do_nothing()
    )
    instance = await session.scalar(
        select(Instance).where(Instance.domain == domain).with_for_update()
    )
    assert instance is not None
    return instance
