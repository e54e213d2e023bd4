"""Deliveries to a failing inbox: retried on a growing schedule, then given up or skipped."""

from __future__ import annotations

import itertools
from datetime import timedelta

from sqlalchemy import select, update

from fedcop.federation.health import UNAVAILABLE_AFTER
from fedcop.federation.retry import FIRST_DELAY, GROWTH, JITTER, MAX_ATTEMPTS, MAX_DELAY
from fedcop.models import Delivery, Instance, WorkState
from fedcop.services.actors import create_group
from fedcop.web.state import AppState
from fedcop.worker import build_workers
from tests.support.clock import FakeClock
from tests.support.network import InProcessNetwork
from tests.support.peers import FakePeer, follow_activity, post_signed

GROUP = "https://home.test/groups/frailty"


def _earliest_attempt_past_the_mark() -> int:
    """The first attempt that can come UNAVAILABLE_AFTER after the first, when every delay
    draws the longest jitter (11 nominally; 10 in about 1 run in 250)."""
    elapsed = timedelta(0)
    for attempt in range(1, MAX_ATTEMPTS + 1):
        if elapsed >= UNAVAILABLE_AFTER:
            return attempt
        elapsed += min(FIRST_DELAY * GROWTH ** (attempt - 1), MAX_DELAY) * (1 + JITTER)
    return MAX_ATTEMPTS


async def _delivery(state: AppState) -> Delivery:
    async with state.db() as session:
        return (await session.scalars(select(Delivery))).one()


async def _followed_by(home: AppState, net: InProcessNetwork, peer: FakePeer, clock: FakeClock):  # type: ignore[no-untyped-def]
    await create_group(home.db, home.urls, "frailty", name="Frailty CoP")
    workers = build_workers(home, clock=clock)
    await post_signed(net, peer, f"{GROUP}/inbox", follow_activity(peer, GROUP))
    await workers.inbox.run_once()
    return workers


async def test_503_is_retried_with_growing_delays_until_the_server_is_marked_unavailable(
    home: AppState, net: InProcessNetwork, peer: FakePeer
) -> None:
    """A server that answers 503 for days: tried on the growing schedule; the tries outlast
    the two days after which it is marked unavailable, and then the delivery ends — given up
    on its last try, or skipped without a request if the mark came first."""
    clock = FakeClock()
    workers = await _followed_by(home, net, peer, clock)
    peer.inbox_status = 503
    gaps: list[timedelta] = []
    attempt = 0
    while await workers.delivery.run_once() == 1:
        attempt += 1
        delivery = await _delivery(home)
        assert delivery.attempts == attempt
        assert delivery.last_status == 503
        if delivery.state != WorkState.PENDING:
            break
        assert await workers.delivery.run_once() == 0  # not due yet
        gaps.append(delivery.next_attempt_at - clock.now)
        clock.advance(delivery.next_attempt_at - clock.now)
    delivery = await _delivery(home)
    assert _earliest_attempt_past_the_mark() <= attempt <= MAX_ATTEMPTS
    if delivery.state == WorkState.FAILED:
        assert attempt == MAX_ATTEMPTS
        assert "gave up" in (delivery.last_error or "")
    else:
        assert delivery.state == WorkState.SKIPPED
        assert delivery.last_error == "instance unavailable"
    assert all(
        later > earlier for earlier, later in itertools.pairwise(gaps[:7])
    )  # before the 12 h cap
    assert timedelta(days=2) < sum(gaps, timedelta()) < timedelta(days=4)
    async with home.db() as session:
        instance = await session.scalar(select(Instance).where(Instance.domain == peer.host))
    assert instance is not None
    assert instance.unavailable_since is not None
    assert peer.inbox == []


async def test_the_last_try_gives_up(home: AppState, net: InProcessNetwork, peer: FakePeer) -> None:
    """A delivery on its last try to a server not (yet) marked unavailable: one more 503 and
    it is given up for good."""
    clock = FakeClock()
    workers = await _followed_by(home, net, peer, clock)
    peer.inbox_status = 503
    async with home.db.begin() as session:
        await session.execute(update(Delivery).values(attempts=MAX_ATTEMPTS - 1))
    assert await workers.delivery.run_once() == 1
    delivery = await _delivery(home)
    assert delivery.state == WorkState.FAILED
    assert delivery.attempts == MAX_ATTEMPTS
    assert "gave up" in (delivery.last_error or "")
    assert await workers.delivery.run_once() == 0
    clock.advance(timedelta(days=3))
    assert await workers.delivery.run_once() == 0  # never tried again


async def test_permanent_refusal_is_given_up_at_once(
    home: AppState, net: InProcessNetwork, peer: FakePeer
) -> None:
    clock = FakeClock()
    workers = await _followed_by(home, net, peer, clock)
    peer.inbox_status = 410
    await workers.delivery.run_once()
    delivery = await _delivery(home)
    assert delivery.state == WorkState.FAILED
    assert delivery.attempts == 1


async def test_429_honours_retry_after_then_delivers(
    home: AppState, net: InProcessNetwork, peer: FakePeer
) -> None:
    clock = FakeClock()
    workers = await _followed_by(home, net, peer, clock)
    peer.inbox_status, peer.inbox_headers = 429, {"retry-after": "3600"}
    await workers.delivery.run_once()
    delivery = await _delivery(home)
    assert delivery.state == WorkState.PENDING
    assert delivery.next_attempt_at - clock.now >= timedelta(hours=1)
    clock.advance(timedelta(minutes=30))
    assert await workers.delivery.run_once() == 0
    peer.inbox_status, peer.inbox_headers = 202, {}
    clock.advance(timedelta(hours=1))
    assert await workers.delivery.run_once() == 1
    assert (await _delivery(home)).state == WorkState.DONE
    assert [a["type"] for a in peer.inbox] == ["Accept"]


async def test_a_retry_after_too_large_to_hold_is_capped_and_counted(
    home: AppState, net: InProcessNetwork, peer: FakePeer
) -> None:
    # A number of seconds beyond what timedelta holds once made the attempt's outcome raise:
    # the row kept its lease, its attempts never grew, and it went out again every time the
    # lease ran out.
    clock = FakeClock()
    workers = await _followed_by(home, net, peer, clock)
    peer.inbox_status, peer.inbox_headers = 429, {"retry-after": "99999999999999"}
    assert await workers.delivery.run_once() == 1
    delivery = await _delivery(home)
    assert (delivery.state, delivery.attempts, delivery.last_status) == (WorkState.PENDING, 1, 429)
    assert delivery.next_attempt_at - clock.now == timedelta(days=1)


async def test_connection_refused_is_retried(
    home: AppState, net: InProcessNetwork, peer: FakePeer
) -> None:
    clock = FakeClock()
    workers = await _followed_by(home, net, peer, clock)
    handler = net.routes.pop("peer.test")
    await workers.delivery.run_once()
    delivery = await _delivery(home)
    assert delivery.state == WorkState.PENDING
    assert delivery.last_status is None
    net.routes["peer.test"] = handler
    clock.advance(timedelta(minutes=2))
    await workers.delivery.run_once()
    assert (await _delivery(home)).state == WorkState.DONE
