"""Background work: the inbox processor and the delivery worker, run together.

`fedcop serve` runs one set inside the web process (the embedded default); `fedcop worker`
runs them on their own, as many processes as PostgreSQL is asked to serve.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from fedcop import db as database
from fedcop.federation.delivery import DeliveryWorker
from fedcop.federation.dispatch import HandlerContext
from fedcop.federation.doorbell import listener_for
from fedcop.federation.handlers import build_table
from fedcop.federation.processor import InboxProcessor
from fedcop.models import utcnow
from fedcop.services.keys import SignerCache
from fedcop.web.state import AppState
from fedcop.worker_turn import workers_turn

log = logging.getLogger(__name__)
# Between restarts of the workers after the database went away: doubling, capped.
FIRST_RESTART_DELAY = 0.5
MAX_RESTART_DELAY = 10.0


@dataclass(frozen=True, slots=True)
class Workers:
    inbox: InboxProcessor
    delivery: DeliveryWorker

    async def run(self, stop: asyncio.Event) -> None:
        await asyncio.gather(self.inbox.run(stop), self.delivery.run(stop))

    async def run_until_idle(self, max_rounds: int = 50) -> int:
        """Step both queues until neither has anything due (tests; never sleeps)."""
        handled = 0
        for _ in range(max_rounds):
            step = await self.inbox.run_once() + await self.delivery.run_once()
            if step == 0:
                return handled
            handled += step
        raise RuntimeError(f"queues still busy after {max_rounds} rounds")


def build_workers(
    state: AppState,
    *,
    concurrency: int = 64,
    per_host: int = 32,
    clock: Callable[[], datetime] = utcnow,
) -> Workers:
    context = HandlerContext(db=state.db, urls=state.urls, actors=state.remote_actors)
    return Workers(
        inbox=InboxProcessor(context, build_table(), clock=clock, doorbell=state.doorbells.inbox),
        delivery=DeliveryWorker(
            state.db,
            state.client,
            SignerCache(state.db),
            concurrency=concurrency,
            per_host=per_host,
            clock=clock,
            doorbell=state.doorbells.deliveries,
        ),
    )


async def serve_workers(
    state: AppState, stop: asyncio.Event, *, concurrency: int = 64, per_host: int = 32
) -> None:
    """This process's workers until `stop` (`run_workers`), woken by new work as it commits:
    in this process through its doorbells, from other processes through PostgreSQL's
    notifications where the database sends them (`doorbell.DoorbellListener`). On a SQLite
    file only one process at a time runs them (`worker_turn`); another waits its turn."""
    async with workers_turn(state.engine, stop) as ours:
        if not ours:
            return
        listener = listener_for(state.engine, state.doorbells)
        listening = asyncio.create_task(listener.run(stop)) if listener is not None else None
        try:
            await run_workers(
                lambda: build_workers(state, concurrency=concurrency, per_host=per_host), stop
            )
        finally:
            if listening is not None:
                listening.cancel()
                await asyncio.gather(listening, return_exceptions=True)


async def run_workers(build: Callable[[], Workers], stop: asyncio.Event) -> None:
    """Run the inbox processor and delivery worker until `stop`, riding out database outages.

    If the database goes away (restart, failover, network), the queues' loops fail on their
    next query. Rather than exit and wait for someone to restart the process, both loops are
    stopped, and fresh ones start once the database answers again (retried with a doubling
    delay). Rows leased when it happened are claimed again when their lease runs out: work is
    done at least once, as after a crash. Any other error is a bug and ends the process.
    """
    delay = FIRST_RESTART_DELAY
    while not stop.is_set():
        round_stop = asyncio.Event()
        workers = build()
        loops = [asyncio.create_task(workers.inbox.run(round_stop)),
                 asyncio.create_task(workers.delivery.run(round_stop))]  # fmt: skip
        stopped = asyncio.create_task(stop.wait())
        await asyncio.wait([*loops, stopped], return_when=asyncio.FIRST_COMPLETED)
        round_stop.set()  # one loop failed (or we are stopping): end the other one too
        results = await asyncio.gather(*loops, return_exceptions=True)
        stopped.cancel()
        errors = [r for r in results if isinstance(r, BaseException)]
        if not errors:
            return
        if not all(database.is_database_outage(e) for e in errors):
            raise next(e for e in errors if not database.is_database_outage(e))
        log.warning("database unavailable (%s); workers restart in %.1fs", errors[0], delay)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=delay)
        delay = min(delay * 2, MAX_RESTART_DELAY)
