"""Use cases for the instance's federation policy."""

from __future__ import annotations

from sqlalchemy import delete, select

from fedcop.db import SessionMaker
from fedcop.errors import NotFoundError, ValidationError
from fedcop.models import AuditEntry, BlockSeverity, DomainBlock
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
        session.add(AuditEntry(action=f"domain {chosen}", target=name, reason=reason))


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
