"""Bearer tokens for the JSON API: made, listed and revoked from the command line.

A token is 32 random bytes; the database keeps only its SHA-256. A fast unsalted hash is enough
here, unlike for passwords: a token has 256 bits of entropy, so there is no dictionary to try
and nothing for a slow hash (bcrypt, argon2) to protect. Looking a token up by its hash also
means no comparison of secrets ever happens in Python, so there is no timing side channel.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from fedcop.db import SessionMaker
from fedcop.errors import NotFoundError, ValidationError
from fedcop.models import Actor, ActorType, ApiToken, utcnow
from fedcop.services.actors import find_local_actor

# A recognisable prefix lets secret scanners (and people) tell a leaked fedcop token apart.
TOKEN_PREFIX = "fedcop_"  # noqa: S105 - a prefix, not a secret
MAX_NAME = 100
# last_used_at is for people deciding which tokens to revoke: minute precision is plenty, and
# it spares a write on nearly every request.
LAST_USED_PRECISION = timedelta(minutes=1)


@dataclass(frozen=True, slots=True)
class NewToken:
    id: int
    token: str  # shown once; never stored


@dataclass(frozen=True, slots=True)
class TokenInfo:
    id: int
    name: str
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None


@dataclass(frozen=True, slots=True)
class Caller:
    """The local person a request's token speaks for."""

    actor_id: int
    username: str
    ap_id: str
    token_id: int


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


async def create_token(db: SessionMaker, username: str, name: str = "") -> NewToken:
    if len(name) > MAX_NAME:
        raise ValidationError(f"a token's name is at most {MAX_NAME} characters")
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    async with db.begin() as session:
        person = await _person(session, username)
        row = ApiToken(actor_id=person.id, token_hash=hash_token(token), name=name.strip())
        session.add(row)
        await session.flush()
        return NewToken(row.id, token)


async def list_tokens(db: SessionMaker, username: str) -> list[TokenInfo]:
    async with db() as session:
        person = await _person(session, username)
        rows = await session.scalars(
            select(ApiToken).where(ApiToken.actor_id == person.id).order_by(ApiToken.id)
        )
        return [_info(row) for row in rows]


async def revoke_token(db: SessionMaker, token_id: int) -> TokenInfo:
    """Revoke at once; revoking again keeps the first revocation time."""
    async with db.begin() as session:
        row = await session.get(ApiToken, token_id)
        if row is None:
            raise NotFoundError(f"no API token {token_id}")
        if row.revoked_at is None:
            row.revoked_at = utcnow()
        return _info(row)


async def authenticate(db: SessionMaker, token: str) -> Caller | None:
    """The live person behind a token, or None for unknown, revoked or orphaned tokens."""
    now = utcnow()
    async with db() as session:
        found = (
            await session.execute(
                select(ApiToken, Actor)
                .join(Actor, Actor.id == ApiToken.actor_id)
                .where(
                    ApiToken.token_hash == hash_token(token),
                    ApiToken.revoked_at.is_(None),
                    Actor.local,
                    Actor.deleted_at.is_(None),
                )
            )
        ).first()
    if found is None:
        return None
    row, person = found
    if row.last_used_at is None or now - row.last_used_at >= LAST_USED_PRECISION:
        await _touch(db, row.id, now)
    return Caller(person.id, person.username, person.ap_id, row.id)


async def _touch(db: SessionMaker, token_id: int, now: datetime) -> None:
    async with db.begin() as session:
        await session.execute(
            update(ApiToken).where(ApiToken.id == token_id).values(last_used_at=now)
        )


async def _person(session: AsyncSession, username: str) -> Actor:
    person = await find_local_actor(session, username)
    if person is None or person.type != ActorType.PERSON or person.deleted_at is not None:
        raise NotFoundError(f"no local person named {username!r}")
    return person


def _info(row: ApiToken) -> TokenInfo:
    return TokenInfo(row.id, row.name, row.created_at, row.last_used_at, row.revoked_at)
