"""The block list cache: one read at a time, and requests never queue behind a due refresh."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from typing import Any

import pytest

from fedcop.federation import policy as policy_module
from fedcop.federation.policy import FederationPolicy


class FakeBlockList:
    """Stands in for the session maker: counts reads, and can hold or fail them."""

    def __init__(self, suspended: set[str]) -> None:
        self.suspended = set(suspended)
        self.reads = 0
        self.gate: asyncio.Event | None = None  # while set to an unset event, reads wait
        self.failing = False

    @contextlib.asynccontextmanager
    async def __call__(self) -> AsyncIterator[FakeBlockList]:
        yield self

    async def scalars(self, _query: Any) -> FakeBlockList:
        self.reads += 1
        if self.gate is not None:
            await self.gate.wait()
        if self.failing:
            raise OSError("database unreachable")
        return self

    def all(self) -> list[str]:
        return sorted(self.suspended)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


def policy_over(blocks: FakeBlockList, clock: Clock) -> FederationPolicy:
    return FederationPolicy(blocks, clock)  # type: ignore[arg-type]


async def background_turns(turns: int = 3) -> None:
    """Let a reload started in the background run to its end (it awaits nothing slow)."""
    for _ in range(turns):
        await asyncio.sleep(0)


async def test_concurrent_first_requests_share_one_read(clock: Clock) -> None:
    blocks = FakeBlockList({"bad.example"})
    policy = policy_over(blocks, clock)
    blocks.gate = asyncio.Event()
    asking = [asyncio.ensure_future(policy.is_suspended(f"host{i}.example")) for i in range(32)]
    asking.append(asyncio.ensure_future(policy.is_suspended("bad.example")))
    await asyncio.sleep(0)
    blocks.gate.set()
    verdicts = await asyncio.gather(*asking)
    assert blocks.reads == 1
    assert verdicts == [False] * 32 + [True]


async def test_a_due_list_answers_at_once_and_reloads_once_behind(clock: Clock) -> None:
    blocks = FakeBlockList(set())
    policy = policy_over(blocks, clock)
    assert await policy.is_suspended("new.example") is False
    blocks.suspended.add("new.example")
    clock.now += policy_module._REFRESH_SECONDS + 1
    blocks.gate = asyncio.Event()
    # Due: every caller gets the verdict it had, without waiting, and one read starts.
    assert [policy.cached_verdict("new.example") for _ in range(50)] == [False] * 50
    await asyncio.sleep(0)
    assert blocks.reads == 2
    blocks.gate.set()
    await background_turns(2)
    # The reload landed: the block made meanwhile now counts.
    assert policy.cached_verdict("new.example") is True
    assert blocks.reads == 2


async def test_a_list_too_old_is_not_answered_from(clock: Clock) -> None:
    blocks = FakeBlockList(set())
    policy = policy_over(blocks, clock)
    await policy.reload()
    blocks.suspended.add("gone.example")
    clock.now += policy_module._MAX_STALE_SECONDS + 1
    assert policy.cached_verdict("gone.example") is None
    assert await policy.is_suspended("gone.example") is True


async def test_a_failed_background_reload_is_logged_and_tried_again(
    clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    blocks = FakeBlockList(set())
    policy = policy_over(blocks, clock)
    await policy.reload()
    blocks.failing = True
    clock.now += policy_module._REFRESH_SECONDS + 1
    with caplog.at_level(logging.WARNING, logger="fedcop.federation.policy"):
        assert policy.cached_verdict("any.example") is False
        await background_turns()
    assert "could not reload the domain block list" in caplog.text
    blocks.failing = False
    blocks.suspended.add("any.example")
    policy.cached_verdict("any.example")  # still due: starts another reload
    await background_turns()
    assert policy.cached_verdict("any.example") is True
    assert blocks.reads == 3


async def test_an_explicit_reload_reads_even_while_one_is_running(clock: Clock) -> None:
    blocks = FakeBlockList(set())
    policy = policy_over(blocks, clock)
    await policy.reload()
    clock.now += policy_module._REFRESH_SECONDS + 1
    blocks.gate = asyncio.Event()
    policy.cached_verdict("x.example")  # a background reload starts, and waits at the gate
    await asyncio.sleep(0)
    blocks.suspended.add("x.example")  # the change lands after that read began
    blocks.gate.set()
    await policy.reload()  # what the blocking service does after a change
    assert policy.cached_verdict("x.example") is True
