"""The delivery worker's cache of local signers: reloaded after its age, once per actor."""

from __future__ import annotations

import asyncio
from typing import Any

from sqlalchemy import select

from fedcop.models import Actor
from fedcop.services.actors import create_person
from fedcop.services.keys import SignerCache
from fedcop.web.state import AppState


async def test_concurrent_callers_share_one_reload(home: AppState) -> None:
    await create_person(home.db, home.urls, "alice")
    async with home.db() as session:
        alice = await session.scalar(select(Actor.id).where(Actor.username == "alice"))
    assert alice is not None
    sessions = 0

    def counting(**kwargs: Any) -> Any:
        nonlocal sessions
        sessions += 1
        return home.db(**kwargs)

    cache = SignerCache(counting, max_age_seconds=0)  # type: ignore[arg-type]
    signers = await asyncio.gather(*(cache.get(alice) for _ in range(64)))
    assert len({id(s) for s in signers}) == 1  # everyone got the one loaded signer
    first_load = sessions
    assert first_load <= 2  # the actor, and its key: once, not 64 times
    await cache.get(alice)  # expired at once (max age 0): loaded again, by itself
    assert sessions == 2 * first_load
