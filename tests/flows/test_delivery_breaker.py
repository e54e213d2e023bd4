"""The delivery worker's per-host circuit breaker: a host that keeps failing is left alone for
a growing cool-down, without holding up anyone else and without counting attempts."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import httpx
from sqlalchemy import select

from fedcop.federation.breaker import CircuitBreaker
from fedcop.models import Delivery, Instance, WorkState
from fedcop.web.state import AppState
from fedcop.worker import build_workers
from tests.flows.test_delivery_batches import answering, queue_deliveries
from tests.support.clock import FakeClock
from tests.support.network import InProcessNetwork

# -- the breaker alone ------------------------------------------------------------------------


def test_it_opens_after_three_consecutive_failures() -> None:
    clock = FakeClock()
    breaker = CircuitBreaker(clock, per_host=8)
    assert breaker.failed("a.test") is None
    assert breaker.failed("a.test") is None
    assert breaker.cap("a.test") == 1  # still closed, its window halved twice
    assert breaker.failed("a.test") == clock.now + timedelta(seconds=60)
    assert breaker.cap("a.test") == 0
    assert breaker.open_domains() == ["a.test"]
    assert breaker.cap("b.test") == 2  # other hosts are not affected


def test_an_answer_resets_the_count() -> None:
    breaker = CircuitBreaker(FakeClock())
    breaker.failed("a.test")
    breaker.failed("a.test")
    breaker.succeeded("a.test")
    assert breaker.failed("a.test") is None
    assert breaker.failed("a.test") is None
    assert breaker.open_domains() == []


def test_failures_of_requests_sent_before_it_opened_do_not_extend_it() -> None:
    clock = FakeClock()
    breaker = CircuitBreaker(clock)
    for _ in range(3):
        until = breaker.failed("a.test")
    clock.advance(timedelta(seconds=10))
    assert breaker.failed("a.test") is None
    assert breaker.open_domains() == ["a.test"]
    clock.advance(timedelta(seconds=50))
    assert breaker.open_domains() == []
    assert until == clock.now


def test_after_the_cool_down_one_probe_is_let_through_and_its_failure_doubles_it() -> None:
    clock = FakeClock()
    breaker = CircuitBreaker(clock, per_host=8, max_cool_down=timedelta(minutes=3))
    for _ in range(3):
        breaker.failed("a.test")
    delays = []
    for _ in range(3):
        clock.advance(timedelta(minutes=10))  # cool-down over: half-open
        assert breaker.open_domains() == []
        assert breaker.cap("a.test") == 1
        until = breaker.failed("a.test")  # the probe fails: open again at once
        assert until is not None
        delays.append(until - clock.now)
    assert delays == [timedelta(minutes=2), timedelta(minutes=3), timedelta(minutes=3)]  # capped
    clock.advance(timedelta(minutes=10))
    breaker.succeeded("a.test")  # the probe succeeds: closed, count from zero, window grows
    assert breaker.cap("a.test") == 2
    assert breaker.failed("a.test") is None


# -- the window: requests in flight per host ----------------------------------------------------


def test_a_new_host_starts_narrow_and_each_answer_widens_it_up_to_per_host() -> None:
    breaker = CircuitBreaker(FakeClock(), per_host=5)
    assert breaker.cap("far.test") == 2
    caps = []
    for _ in range(5):
        breaker.succeeded("far.test")
        caps.append(breaker.cap("far.test"))
    assert caps == [3, 4, 5, 5, 5]


def test_a_failure_or_a_429_halves_the_window_but_never_below_one() -> None:
    breaker = CircuitBreaker(FakeClock(), per_host=32)
    for _ in range(40):
        breaker.succeeded("busy.test")
    assert breaker.cap("busy.test") == 32
    breaker.throttled("busy.test")
    assert breaker.cap("busy.test") == 16
    breaker.failed("busy.test")
    assert breaker.cap("busy.test") == 8
    for _ in range(5):
        breaker.throttled("busy.test")
    assert breaker.cap("busy.test") == 1
    assert breaker.open_domains() == []  # 429s never open the breaker


def test_the_start_window_never_exceeds_per_host() -> None:
    assert CircuitBreaker(FakeClock(), per_host=1).cap("a.test") == 1


# -- in the worker ----------------------------------------------------------------------------


async def _rows(state: AppState, domain: str) -> list[Delivery]:
    async with state.db() as session:
        query = select(Delivery).where(Delivery.domain == domain).order_by(Delivery.id)
        return list((await session.scalars(query)).all())


def _posts(net: InProcessNetwork, host: str) -> int:
    return sum(1 for r in net.sent if r.method == "POST" and r.url.host == host)


async def test_a_refusing_host_is_left_alone_while_a_healthy_one_gets_everything(
    home: AppState, net: InProcessNetwork
) -> None:
    clock = FakeClock()
    await queue_deliveries(home, ["dead.test", "ok.test"], 12)  # dead.test has no route: refused
    net.routes["ok.test"] = answering(202)
    worker = build_workers(home, clock=clock, concurrency=4, per_host=4).delivery
    posts_when_opened = None
    for _ in range(20):
        if await worker.run_once() == 0:
            break
        if posts_when_opened is None and worker.breaker.open_domains() == ["dead.test"]:
            posts_when_opened = _posts(net, "dead.test")
    assert posts_when_opened is not None
    # the threshold, plus what was in flight with it: a host never heard from gets a window of
    # 2, not per_host (4), so a dead one costs at most 3 + 2 - 1 requests
    assert posts_when_opened <= 3 + 2 - 1
    assert _posts(net, "dead.test") == posts_when_opened  # nothing after it opened
    assert [r.state for r in await _rows(home, "ok.test")] == [WorkState.DONE] * 12

    dead = await _rows(home, "dead.test")
    tried = [r for r in dead if r.attempts]
    deferred = [r for r in dead if not r.attempts]
    assert len(tried) == posts_when_opened
    assert len(deferred) == 12 - posts_when_opened
    assert {r.state for r in dead} == {WorkState.PENDING}
    assert {r.next_attempt_at for r in deferred} == {clock.now + timedelta(seconds=60)}
    async with home.db() as session:
        instance = await session.get(Instance, "dead.test")
    assert instance is not None
    assert instance.failures == posts_when_opened  # deferring is not a failure

    # cool-down over: one probe, refused again, so it opens for twice as long
    clock.advance(timedelta(seconds=61))
    assert await worker.run_once() == 1
    assert _posts(net, "dead.test") == posts_when_opened + 1
    assert await worker.run_once() == 0

    # the host is back: the next probe succeeds, closes the breaker, and the rest follows
    # (four minutes: past the new cool-down and the tried rows' own retry times)
    net.routes["dead.test"] = answering(202)
    clock.advance(timedelta(minutes=4))
    for _ in range(20):
        if await worker.run_once() == 0:
            break
    assert [r.state for r in await _rows(home, "dead.test")] == [WorkState.DONE] * 12
    assert worker.breaker.open_domains() == []


async def test_a_healthy_host_starts_with_two_in_flight_and_widens_to_per_host(
    home: AppState, net: InProcessNetwork
) -> None:
    """A backlog to one slow-answering server: requests in flight start at the window of 2
    and grow with each answer to per_host, never beyond it."""
    await queue_deliveries(home, ["far.test"], 60)
    in_flight = 0
    seen: list[int] = []  # requests in flight as each one arrives
    all_sent = asyncio.Event()

    async def slow(request: httpx.Request) -> httpx.Response:
        nonlocal in_flight
        in_flight += 1
        seen.append(in_flight)
        await asyncio.sleep(0.01)
        in_flight -= 1
        if len(seen) == 60:
            all_sent.set()
        return httpx.Response(202)

    net.add_handler("far.test", slow)
    worker = build_workers(home, concurrency=64, per_host=8).delivery
    stop = asyncio.Event()
    task = asyncio.create_task(worker.run(stop, idle_seconds=0.05))
    async with asyncio.timeout(30):
        await all_sent.wait()
    stop.set()
    await task
    assert max(seen[:2]) <= 2  # the first claim: a host never heard from gets 2
    assert max(seen) == 8  # widened to per_host, never past it
    assert [r.state for r in await _rows(home, "far.test")] == [WorkState.DONE] * 60
