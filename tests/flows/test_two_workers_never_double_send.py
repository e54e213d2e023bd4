"""Several delivery workers on PostgreSQL share one queue and never send a row twice."""

from __future__ import annotations

import asyncio
from collections import Counter

import httpx
import pytest
from sqlalchemy import insert, select

from fedcop.app import Network
from fedcop.db import create_engine, session_maker
from fedcop.federation.client import FederationClient
from fedcop.federation.delivery import DeliveryWorker
from fedcop.models import Actor, Delivery, OutboxActivity, WorkState
from fedcop.security.ssrf import AddressGuard
from fedcop.services.actors import create_person
from fedcop.services.keys import SignerCache
from fedcop.web.state import AppState

DELIVERIES = 300


@pytest.mark.parametrize("backend", ["postgresql"], indirect=True)
async def test_four_workers_deliver_each_row_exactly_once(home: AppState) -> None:
    await create_person(home.db, home.urls, "alice")
    async with home.db.begin() as session:
        alice = await session.scalar(select(Actor).where(Actor.username == "alice"))
        assert alice is not None
        activity = OutboxActivity(ap_id="https://home.test/a/1", actor_id=alice.id, type="Note",
                                  activity={}, body="{}", public=True)  # fmt: skip
        session.add(activity)
        await session.flush()
        await session.execute(
            insert(Delivery),
            [
                {
                    "activity_id": activity.id,
                    "inbox_url": f"https://h{i % 30}.test/inbox/{i}",
                    "domain": f"h{i % 30}.test",
                }
                for i in range(DELIVERIES)
            ],
        )

    received: Counter[str] = Counter()

    async def inbox(request: httpx.Request) -> httpx.Response:
        received[str(request.url)] += 1
        await asyncio.sleep(0.002)  # a little latency so the workers really overlap
        return httpx.Response(202)

    async def resolve(host: str, port: int) -> list[str]:
        return ["127.0.0.1"]

    network = Network(transport=httpx.MockTransport(inbox), resolve=resolve)
    engines = [create_engine(home.settings.database_url) for _ in range(4)]
    try:
        workers = []
        for engine in engines:  # one engine each: as separate processes would have
            db = session_maker(engine)
            guard = AddressGuard(allow_private=True, resolve=network.resolve)
            client = FederationClient(user_agent="t", guard=guard, transport=network.transport)
            workers.append(DeliveryWorker(db, client, SignerCache(db), concurrency=16, per_host=4))
        for _ in range(40):
            counts = await asyncio.gather(*(w.run_once() for w in workers))
            if sum(counts) == 0:
                break
        assert sum(received.values()) == DELIVERIES
        assert set(received.values()) == {1}
        async with home.db() as session:
            states = Counter((await session.scalars(select(Delivery.state))).all())
        assert states == {WorkState.DONE: DELIVERIES}
    finally:
        for engine in engines:
            await engine.dispose()
