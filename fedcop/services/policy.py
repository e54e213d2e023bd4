"""Use cases for the instance's federation policy."""

from __future__ import annotations

from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from fedcop.db import SessionMaker
from fedcop.errors import NotFoundError, ValidationError
from fedcop.federation.policy import domain_is_listed
from fedcop.models import AuditEntry, BlockSeverity, Delivery, DomainBlock, WorkState
from fedcop.settings import normalise_domain


async def block_domain(db: SessionMaker, domain: str, severity: str, reason: str = "") -> None:
    try:
        chosen = BlockSeverity(severity)
    except ValueError:
        raise ValidationError(f"severity {severity!r} must be suspend or silence") from None
    name = normalise_domain(domain)
    async with db.begin() as session:
        block = await session.get(DomainBlock, name)
        if block is None:
            session.add(DomainBlock(domain=name, severity=chosen, reason=reason))
        else:
            block.severity, block.reason = chosen, reason
        if chosen == BlockSeverity.SUSPEND:
            await _cancel_deliveries(session, name)
        session.add(AuditEntry(action=f"domain {chosen}", target=name, reason=reason))


async def _cancel_deliveries(session: AsyncSession, name: str) -> None:
    """What was queued for a server before it was suspended is not sent: publishing skips
    suspended servers from now on, and the rows already waiting are closed as failed.
    (A row being sent at this moment may still go out.)"""
    pending = await session.scalars(
        select(Delivery.domain).where(Delivery.state == WorkState.PENDING).distinct()
    )
    domains = [d for d in pending.all() if domain_is_listed(d, frozenset({name}))]
    if domains:
        await session.execute(
            update(Delivery)
            .where(Delivery.state == WorkState.PENDING, Delivery.domain.in_(domains))
            .values(state=WorkState.FAILED, last_error=f"{name} is suspended")
        )


async def unblock_domain(db: SessionMaker, domain: str) -> None:
    name = normalise_domain(domain)
    async with db.begin() as session:
        result = await session.execute(delete(DomainBlock).where(DomainBlock.domain == name))
        if not result.rowcount:  # type: ignore[attr-defined]
            raise NotFoundError(f"{name} is not blocked")  # rolls back: nothing to audit
        session.add(AuditEntry(action="domain unblock", target=name))


async def list_blocks(db: SessionMaker) -> list[DomainBlock]:
    async with db() as session:
        return list((await session.scalars(select(DomainBlock).order_by(DomainBlock.domain))).all())
