"""A server dead for days is skipped; a sign of life from it (or an operator) revives it."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import httpx
from sqlalchemy import select, update

from fedcop.federation.health import UNAVAILABLE_AFTER
from fedcop.models import Delivery, Instance, WorkState, utcnow
from fedcop.services import deliveries as delivery_services
from fedcop.services import follows as follow_services
from fedcop.services.actors import create_group, create_person
from fedcop.web.state import AppState
from fedcop.worker import build_workers
from tests.support.clock import FakeClock
from tests.support.network import InProcessNetwork
from tests.support.peers import FakePeer, follow_activity, post_signed


async def _states(state: AppState) -> list[str]:
    async with state.db() as session:
        return list((await session.scalars(select(Delivery.state).order_by(Delivery.id))).all())


async def _instance(state: AppState, domain: str) -> Instance | None:
    async with state.db() as session:
        return await session.get(Instance, domain)


async def _kill_for_days(home: AppState, net: InProcessNetwork, clock: FakeClock) -> None:
    """peer.test stops answering; one delivery is retried until the mark is set."""
    await create_person(home.db, home.urls, "alice")
    await follow_services.follow(home.db, home.remote_actors, "alice", "@remote@peer.test")
    net.routes.pop("peer.test")
    worker = build_workers(home, clock=clock).delivery
    for _ in range(20):
        await worker.run_once()
        instance = await _instance(home, "peer.test")
        assert instance is not None
        if instance.unavailable_since is not None:
            break
        [delivery] = await _query_pending(home)
        clock.advance(delivery.next_attempt_at - clock.now)
    assert instance.unavailable_since is not None
    assert clock.now - (instance.failing_since or clock.now) >= UNAVAILABLE_AFTER


async def _query_pending(state: AppState) -> list[Delivery]:
    async with state.db() as session:
        return list(
            (
                await session.scalars(select(Delivery).where(Delivery.state == WorkState.PENDING))
            ).all()
        )


async def test_dead_instance_is_skipped_then_revived_by_its_own_activity(
    home: AppState, net: InProcessNetwork, peer: FakePeer
) -> None:
    clock = FakeClock()
    await _kill_for_days(home, net, clock)
    net.add_handler(peer.host, peer.handler)  # it is back, but we do not know yet

    # new work for it is skipped without a request
    await follow_services.unfollow(home.db, home.remote_actors, "alice", "@remote@peer.test")
    posts_before = [r for r in peer.requests if r.method == "POST"]
    workers = build_workers(home, clock=clock)
    await workers.delivery.run_once()
    assert "skipped" in await _states(home)
    assert [r for r in peer.requests if r.method == "POST"] == posts_before

    # it speaks to us: the mark is cleared and deliveries flow again
    await create_group(home.db, home.urls, "frailty", name="Frailty CoP")
    group = "https://home.test/groups/frailty"
    assert (
        await post_signed(net, peer, f"{group}/inbox", follow_activity(peer, group))
    ).status_code == 202
    await workers.inbox.run_once()
    instance = await _instance(home, "peer.test")
    assert instance is not None
    assert instance.unavailable_since is None
    await workers.delivery.run_once()
    assert [a["type"] for a in peer.inbox][-1] == "Accept"


async def test_operator_retry_requeues_and_clears_the_mark(
    home: AppState, net: InProcessNetwork, peer: FakePeer
) -> None:
    clock = FakeClock()
    await _kill_for_days(home, net, clock)
    status = await delivery_services.status(home.db)
    assert status.unavailable == ["peer.test"]
    assert ("peer.test", 1) in status.failing_domains

    net.add_handler(peer.host, peer.handler)
    assert await delivery_services.retry(home.db, "peer.test") == 1
    await build_workers(home, clock=clock).delivery.run_once()
    assert await _states(home) == ["done"]
    assert [a["type"] for a in peer.inbox] == ["Follow"]
    assert (await delivery_services.status(home.db)).unavailable == []


async def test_healthy_hosts_are_not_held_up_by_a_dead_one(
    home: AppState, net: InProcessNetwork, peer: FakePeer
) -> None:
    """One worker round delivers to the healthy host even while another times out."""
    await create_person(home.db, home.urls, "alice")
    slow = FakePeer("slow.test")

    async def hang(request: httpx.Request) -> httpx.Response:
        if request.method == "POST":
            await asyncio.sleep(3600)
        return slow.handler(request)

    net.routes["slow.test"] = httpx.MockTransport(hang)
    await follow_services.follow(home.db, home.remote_actors, "alice", "@remote@slow.test")
    await follow_services.follow(home.db, home.remote_actors, "alice", "@remote@peer.test")
    worker = build_workers(home).delivery
    stop = asyncio.Event()
    running = asyncio.create_task(worker.run(stop, idle_seconds=0.05))
    for _ in range(100):
        if peer.inbox:
            break
        await asyncio.sleep(0.05)
    stop.set()
    running.cancel()
    assert [a["type"] for a in peer.inbox] == ["Follow"]


async def test_operator_retry_leaves_a_delivery_being_sent_alone(
    home: AppState, net: InProcessNetwork, peer: FakePeer
) -> None:
    """Its lease is a worker sending it right now: clearing it would let another worker send
    the same row again."""
    clock = FakeClock()
    await _kill_for_days(home, net, clock)
    leased_until = utcnow() + timedelta(minutes=5)
    async with home.db.begin() as session:
        # Pending as well as leased: in about 1 run in 70 the jitter puts the mark on the
        # twelfth and last attempt, which also gave the row up.
        await session.execute(
            update(Delivery).values(state=WorkState.PENDING, locked_until=leased_until)
        )
    assert await delivery_services.retry(home.db, "peer.test") == 0
    [delivery] = await _query_pending(home)
    assert delivery.locked_until == leased_until
    assert delivery.attempts > 0


async def test_a_delivery_that_gets_through_clears_the_mark(
    home: AppState, net: InProcessNetwork, peer: FakePeer
) -> None:
    """A row claimed before the host was marked (by another worker, say) and then answered:
    the answer is a sign of life, and new work flows to the host again."""
    await create_person(home.db, home.urls, "alice")

    async def marked_while_sending(request: httpx.Request) -> httpx.Response:
        if request.method == "POST":
            async with home.db.begin() as session:
                since = utcnow() - UNAVAILABLE_AFTER
                session.add(Instance(domain="peer.test", failures=7, failing_since=since,
                                     unavailable_since=utcnow()))  # fmt: skip
        return peer.handler(request)

    net.routes["peer.test"] = httpx.MockTransport(marked_while_sending)
    await follow_services.follow(home.db, home.remote_actors, "alice", "@remote@peer.test")
    await build_workers(home).delivery.run_once()
    instance = await _instance(home, "peer.test")
    assert instance is not None
    assert (instance.unavailable_since, instance.failing_since, instance.failures) == (
        None,
        None,
        0,
    )
    assert await _states(home) == ["done"]
    assert [a["type"] for a in peer.inbox] == ["Follow"]
