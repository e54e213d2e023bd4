"""Background work: the inbox processor and the delivery worker, run together.

`fedcop serve` runs one set inside the web process (the embedded default); `fedcop worker`
runs them on their own, as many processes as PostgreSQL is asked to serve.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from fedcop.federation.delivery import DeliveryWorker
from fedcop.federation.dispatch import HandlerContext
from fedcop.federation.handlers import build_table
from fedcop.federation.processor import InboxProcessor
from fedcop.models import utcnow
from fedcop.services.keys import SignerCache
from fedcop.web.state import AppState


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
        inbox=InboxProcessor(context, build_table(), clock=clock),
        delivery=DeliveryWorker(
            state.db,
            state.client,
            SignerCache(state.db),
            concurrency=concurrency,
            per_host=per_host,
            clock=clock,
        ),
    )
