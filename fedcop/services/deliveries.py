"""Use cases for operators watching and nudging the delivery queue."""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import func, or_, select, update

from fedcop.db import SessionMaker
from fedcop.federation.doorbell import announce
from fedcop.models import Delivery, Instance, WorkState, utcnow
from fedcop.settings import normalise_domain


@dataclass(frozen=True, slots=True)
class QueueStatus:
    by_state: dict[str, int]
    failing_domains: list[tuple[str, int]] = field(default_factory=list)
    unavailable: list[str] = field(default_factory=list)

    def lines(self) -> list[str]:
        lines = ["deliveries by state:"]
        lines += [f"  {state}\t{count}" for state, count in sorted(self.by_state.items())]
        lines.append("domains with failed or retrying deliveries:")
        lines += [f"  {domain}\t{count}" for domain, count in self.failing_domains] or ["  none"]
        lines.append("unavailable instances:")
        lines += [f"  {domain}" for domain in self.unavailable] or ["  none"]
        return lines


async def status(db: SessionMaker) -> QueueStatus:
    troubled = (Delivery.state == WorkState.FAILED) | (
        (Delivery.state == WorkState.PENDING) & (Delivery.attempts > 0)
    )
    async with db() as session:
        by_state = dict(
            (
                await session.execute(select(Delivery.state, func.count()).group_by(Delivery.state))
            ).all()
        )
        failing = (
            await session.execute(
                select(Delivery.domain, func.count())
                .where(troubled)
                .group_by(Delivery.domain)
                .order_by(func.count().desc())
                .limit(50)
            )
        ).all()
        unavailable = (
            await session.scalars(
                select(Instance.domain)
                .where(Instance.unavailable_since.is_not(None))
                .order_by(Instance.domain)
            )
        ).all()
    return QueueStatus(by_state, [(domain, count) for domain, count in failing], list(unavailable))


async def retry(db: SessionMaker, domain: str) -> int:
    name = normalise_domain(domain)
    now = utcnow()
    async with db.begin() as session:
        result = await session.execute(
            update(Delivery)
            .where(
                Delivery.domain == name,
                Delivery.state.in_([WorkState.FAILED, WorkState.SKIPPED, WorkState.PENDING]),
                # A row a worker holds is being sent right now: clearing its lease would let
                # another worker send it a second time.
                or_(Delivery.locked_until.is_(None), Delivery.locked_until < now),
            )
            .values(state=WorkState.PENDING, next_attempt_at=now, locked_until=None, attempts=0)
        )
        await announce(session, "deliveries")
        await session.execute(
            update(Instance)
            .where(Instance.domain == name)
            .values(failures=0, failing_since=None, unavailable_since=None)
        )
    return int(result.rowcount)  # type: ignore[attr-defined]
