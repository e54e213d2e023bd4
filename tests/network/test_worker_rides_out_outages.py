"""`fedcop worker` (and `fedcop serve`) ride out a database outage, stop on a bug (worker.py).

In-process and fast; the real thing, with a PostgreSQL restart under load, is in
test_faults.py.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any, cast

import pytest
from sqlalchemy.exc import DBAPIError, OperationalError

from fedcop import worker as worker_module
from fedcop.db import is_database_outage
from fedcop.worker import Workers, run_workers


@dataclass
class FakeLoop:
    """A queue loop that fails with `errors` (one per round), then runs until stopped."""

    errors: list[BaseException]
    rounds: int = 0
    stopped_cleanly: int = 0
    healthy: asyncio.Event = field(default_factory=asyncio.Event)  # a round that did not fail

    async def run(self, stop: asyncio.Event) -> None:
        self.rounds += 1
        if self.errors:
            await asyncio.sleep(0)
            raise self.errors.pop(0)
        self.healthy.set()
        await stop.wait()
        self.stopped_cleanly += 1


@dataclass
class FakeWorkers:
    inbox: FakeLoop
    delivery: FakeLoop = field(default_factory=lambda: FakeLoop([]))


@pytest.fixture(autouse=True)
def no_waiting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(worker_module, "FIRST_RESTART_DELAY", 0.01)


async def test_workers_restart_after_the_database_went_away_and_stop_on_request() -> None:
    outage = OperationalError("SELECT 1", {}, ConnectionRefusedError(111, "refused"))
    inbox = FakeLoop([ConnectionRefusedError(111, "refused"), outage])
    workers = FakeWorkers(inbox)
    stop = asyncio.Event()
    runner = asyncio.create_task(run_workers(lambda: cast(Workers, workers), stop))

    await asyncio.wait_for(inbox.healthy.wait(), timeout=5)
    assert inbox.rounds == 3  # two failures, then a healthy third round
    assert not runner.done()
    # Each failed round also ended the other loop: never two delivery loops at once.
    assert workers.delivery.stopped_cleanly == 2
    stop.set()
    await asyncio.wait_for(runner, timeout=5)
    assert inbox.stopped_cleanly == 1
    assert workers.delivery.stopped_cleanly == 3


async def test_a_bug_in_a_worker_ends_the_process() -> None:
    workers = FakeWorkers(FakeLoop([ValueError("a bug")]))
    with pytest.raises(ValueError, match="a bug"):
        await asyncio.wait_for(
            run_workers(lambda: cast(Workers, workers), asyncio.Event()), timeout=5
        )
    assert workers.delivery.stopped_cleanly == 1  # the other loop was stopped, not abandoned


@pytest.mark.parametrize(
    ("error", "outage"),
    [
        (ConnectionRefusedError(111, "refused"), True),
        (ConnectionResetError(104, "reset"), True),
        (OperationalError("SELECT 1", {}, Exception("server closed the connection")), True),
        (DBAPIError("SELECT 1", {}, Exception("gone"), connection_invalidated=True), True),
        (ValueError("a bug"), False),
        (KeyError("missing"), False),
        (DBAPIError("SELECT 1", {}, Exception("syntax error")), False),
    ],
)
def test_what_counts_as_a_database_outage(error: Any, outage: bool) -> None:
    assert is_database_outage(error) is outage
