"""A process that dies at any point loses nothing: leases expire and the work is redone."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select

from fedcop.federation.delivery import LEASE
from fedcop.federation.outbox import Audience, publish
from fedcop.models import Actor, Delivery, OutboxActivity, WorkState
from fedcop.services import follows as follow_services
from fedcop.services.actors import create_group, create_person
from fedcop.web.state import AppState
from fedcop.worker import build_workers
from tests.support.clock import FakeClock
from tests.support.network import InProcessNetwork
from tests.support.peers import FakePeer, follow_activity, post_signed


async def _publish_then_die(state: AppState, remote: Actor) -> None:
    async with state.db.begin() as session:
        alice = await session.scalar(select(Actor).where(Actor.username == "alice"))
        assert alice is not None
        activity = {"id": "https://home.test/users/alice#x", "type": "Like", "actor": alice.ap_id}
        await publish(session, alice, activity, Audience(actors=[remote]))
        raise RuntimeError("the process dies before commit")


async def test_a_change_and_its_deliveries_commit_together_or_not_at_all(
    home: AppState, peer: FakePeer
) -> None:
    await create_person(home.db, home.urls, "alice")
    remote = await home.remote_actors.get(peer.actor_id)
    with pytest.raises(RuntimeError):
        await _publish_then_die(home, remote)
    async with home.db() as session:
        assert await session.scalar(select(func.count()).select_from(OutboxActivity)) == 0
        assert await session.scalar(select(func.count()).select_from(Delivery)) == 0


async def test_a_worker_killed_after_claiming_leaves_the_delivery_for_another(
    home: AppState, peer: FakePeer
) -> None:
    clock = FakeClock()
    await create_person(home.db, home.urls, "alice")
    await follow_services.follow(home.db, home.remote_actors, "alice", "@remote@peer.test")
    doomed = build_workers(home, clock=clock).delivery
    assert len(await doomed.claim(10)) == 1  # ... and the process is SIGKILLed here

    survivor = build_workers(home, clock=clock).delivery
    assert await survivor.run_once() == 0  # still leased to the dead worker
    clock.advance(LEASE + timedelta(seconds=1))
    assert await survivor.run_once() == 1
    assert [a["type"] for a in peer.inbox] == ["Follow"]


async def test_an_acknowledged_activity_is_processed_after_a_crash(
    home: AppState, net: InProcessNetwork, peer: FakePeer
) -> None:
    clock = FakeClock()
    await create_group(home.db, home.urls, "frailty", name="Frailty CoP")
    group = "https://home.test/groups/frailty"
    assert (
        await post_signed(net, peer, f"{group}/inbox", follow_activity(peer, group))
    ).status_code == 202
    # a processor claims the item and dies before handling it
    doomed = build_workers(home, clock=clock).inbox
    assert len(await doomed._claim()) == 1

    workers = build_workers(home, clock=clock)
    assert await workers.inbox.run_once() == 0
    clock.advance(LEASE + timedelta(seconds=1))
    assert await workers.inbox.run_once() == 1
    await workers.delivery.run_once()
    assert [a["type"] for a in peer.inbox] == ["Accept"]
    async with home.db() as session:
        states = (await session.scalars(select(Delivery.state))).all()
    assert states == [WorkState.DONE]
