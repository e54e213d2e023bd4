"""The delivery worker: claims due delivery rows, signs and POSTs them, records the outcome.

Rows are claimed with a lease (`locked_until`): a worker that dies mid-send leaves rows that
another claims once the lease runs out, so every delivery is sent at least once. On PostgreSQL
the claim uses FOR UPDATE SKIP LOCKED, so any number of workers share the queue without
sending a row twice; on SQLite one worker runs.

A slow or dead server cannot hold up the rest: each host has its own cap of requests in flight,
rows for a host at its cap are not claimed, and hosts marked unavailable are skipped.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from fedcop.db import SessionMaker
from fedcop.federation.client import FederationClient, FetchError, PostResult, Signer
from fedcop.federation.health import record_failure, record_success, unavailable_domains
from fedcop.federation.retry import Decision, Outcome, classify, next_attempt
from fedcop.models import Delivery, OutboxActivity, WorkState, utcnow
from fedcop.services.keys import SignerCache

log = logging.getLogger(__name__)
LEASE = timedelta(minutes=5)


@dataclass(frozen=True, slots=True)
class ClaimedDelivery:
    id: int
    inbox_url: str
    domain: str
    attempts: int
    body: bytes
    actor_id: int


class DeliveryWorker:
    def __init__(
        self,
        db: SessionMaker,
        client: FederationClient,
        signers: SignerCache,
        *,
        concurrency: int = 64,
        per_host: int = 8,
        clock: Callable[[], datetime] = utcnow,
        rng: random.Random | None = None,
    ) -> None:
        self._db = db
        self._client = client
        self._signers = signers
        self.concurrency = concurrency
        self.per_host = per_host
        self._clock = clock
        self._rng = rng or random.Random()
        self._in_flight: Counter[str] = Counter()
        self._tasks: set[asyncio.Task[None]] = set()

    async def run_once(self) -> int:
        """Claim what is due now (up to `concurrency`), send it all, and return how many."""
        claimed = await self.claim(self.concurrency)
        await asyncio.gather(*(self._deliver(item) for item in claimed))
        return len(claimed)

    async def run(self, stop: asyncio.Event, *, idle_seconds: float = 1.0) -> None:
        """Keep `concurrency` deliveries in flight until `stop` is set."""
        while not stop.is_set():
            free = self.concurrency - len(self._tasks)
            claimed = await self.claim(free) if free > 0 else []
            for item in claimed:
                task = asyncio.create_task(self._deliver(item))
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)
            if self._tasks and (claimed or free <= 0):
                await asyncio.wait(self._tasks, timeout=idle_seconds, return_when="FIRST_COMPLETED")
            else:
                await _sleep_or_stop(stop, idle_seconds)
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)

    async def claim(self, limit: int) -> list[ClaimedDelivery]:
        """Lease up to `limit` due rows, at most `per_host` in flight per host."""
        now = self._clock()
        saturated = [d for d, n in self._in_flight.items() if n >= self.per_host]
        async with self._db.begin() as session:
            rows = await _lock_due(session, now, limit * 2, saturated)
            if not rows:
                return []
            dead = await unavailable_domains(session)
            chosen, skipped = self._choose(rows, dead, limit)
            await _lease(session, [d.id for d in chosen], now + LEASE)
            await _skip(session, [d.id for d in skipped], now)
            bodies = await _bodies(session, {d.activity_id for d in chosen})
        for delivery in chosen:
            self._in_flight[delivery.domain] += 1
        return [
            ClaimedDelivery(d.id, d.inbox_url, d.domain, d.attempts, *bodies[d.activity_id])
            for d in chosen
        ]

    def _choose(
        self, rows: list[Delivery], dead: frozenset[str], limit: int
    ) -> tuple[list[Delivery], list[Delivery]]:
        chosen: list[Delivery] = []
        skipped: list[Delivery] = []
        planned: Counter[str] = Counter()
        for row in rows:
            if row.domain in dead:
                skipped.append(row)
            elif (
                len(chosen) < limit
                and self._in_flight[row.domain] + planned[row.domain] < self.per_host
            ):
                chosen.append(row)
                planned[row.domain] += 1
        return chosen, skipped

    async def _deliver(self, item: ClaimedDelivery) -> None:
        try:
            result = await self._send(item)
            await self._record(item, result)
        except Exception:  # a bug must not kill the worker; the lease brings the row back
            log.exception("delivery %s to %s failed unexpectedly", item.id, item.inbox_url)
        finally:
            self._in_flight[item.domain] -= 1
            if self._in_flight[item.domain] <= 0:
                del self._in_flight[item.domain]

    async def _send(self, item: ClaimedDelivery) -> PostResult | FetchError:
        signer: Signer = await self._signers.get(item.actor_id)
        try:
            return await self._client.post(item.inbox_url, item.body, signer)
        except FetchError as exc:
            return exc

    async def _record(self, item: ClaimedDelivery, result: PostResult | FetchError) -> None:
        now = self._clock()
        if isinstance(result, FetchError):
            decision, status, error = Decision(Outcome.RETRY), result.status, result.reason
        else:
            decision = classify(result.status, result.retry_after, now)
            status, error = result.status, None
        attempts = item.attempts + 1
        values: dict[str, object] = {
            "attempts": attempts,
            "last_status": status,
            "locked_until": None,
        }
        if decision.outcome is Outcome.DELIVERED:
            values.update(state=WorkState.DONE, delivered_at=now, last_error=None)
        elif decision.outcome is Outcome.GIVE_UP:
            values.update(state=WorkState.FAILED, last_error=f"refused with {status}")
        else:
            retry_at = next_attempt(attempts, decision, now, self._rng)
            error = error or f"answered {status}"
            if retry_at is None:
                values.update(state=WorkState.FAILED, last_error=f"gave up: {error}")
            else:
                values.update(next_attempt_at=retry_at, last_error=error)
        async with self._db.begin() as session:
            await session.execute(update(Delivery).where(Delivery.id == item.id).values(**values))
            if decision.outcome is Outcome.RETRY:
                await record_failure(session, item.domain, now)
            else:  # it answered: whatever it said, the server is alive
                await record_success(session, item.domain, now)


async def _lock_due(
    session: AsyncSession, now: datetime, limit: int, saturated: list[str]
) -> list[Delivery]:
    query = (
        select(Delivery)
        .where(
            Delivery.state == WorkState.PENDING,
            Delivery.next_attempt_at <= now,
            or_(Delivery.locked_until.is_(None), Delivery.locked_until < now),
        )
        .order_by(Delivery.next_attempt_at, Delivery.id)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    if saturated:
        query = query.where(Delivery.domain.not_in(saturated))
    return list((await session.scalars(query)).all())


async def _lease(session: AsyncSession, ids: list[int], until: datetime) -> None:
    if ids:
        await session.execute(
            update(Delivery).where(Delivery.id.in_(ids)).values(locked_until=until)
        )


async def _skip(session: AsyncSession, ids: list[int], now: datetime) -> None:
    if ids:
        await session.execute(
            update(Delivery)
            .where(Delivery.id.in_(ids))
            .values(state=WorkState.SKIPPED, last_error="instance unavailable", locked_until=None)
        )


async def _bodies(session: AsyncSession, activity_ids: set[int]) -> dict[int, tuple[bytes, int]]:
    query = select(OutboxActivity.id, OutboxActivity.body, OutboxActivity.actor_id).where(
        OutboxActivity.id.in_(activity_ids)
    )
    return {row.id: (row.body.encode(), row.actor_id) for row in await session.execute(query)}


async def _sleep_or_stop(stop: asyncio.Event, seconds: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), timeout=seconds)
