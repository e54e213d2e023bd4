"""The delivery worker: claims due delivery rows, signs and POSTs them, records the outcome.

Rows are claimed with a lease (`locked_until`): a worker that dies mid-send leaves rows that
another claims once the lease runs out, so every delivery is sent at least once. On PostgreSQL
the claim uses FOR UPDATE SKIP LOCKED, so any number of workers share the queue without
sending a row twice; on SQLite one worker runs.

A slow or dead server cannot hold up the rest: each host has its own window of requests in
flight (from 2 for a host not yet heard from up to `per_host`, see `breaker.py`), rows for a host
at its window are not claimed, hosts marked unavailable are skipped, and a host
that keeps failing is left alone for a while (`breaker.py`).

Outcomes are recorded in batches (`OutcomeRecorder`): one transaction per delivery was over half
of the worker's time, and on SQLite every one queued behind the single writer.
"""

from __future__ import annotations

import asyncio
import functools
import gc
import logging
import random
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine

from fedcop.db import SessionMaker, engine_of, on_asyncpg, sqlite_file
from fedcop.federation import delivery_postgres, delivery_sqlite
from fedcop.federation.breaker import CircuitBreaker
from fedcop.federation.client import FederationClient, FetchError, PostResult, Signer
from fedcop.federation.delivery_sql import ActivityBodies, Choose, DueRow, EngineStore
from fedcop.federation.doorbell import Doorbell, wait_set, waking
from fedcop.federation.retry import Decision, Outcome, classify, next_attempt
from fedcop.models import WorkState, utcnow
from fedcop.services.keys import SignerCache

log = logging.getLogger(__name__)
LEASE = timedelta(minutes=5)
# A batch of outcomes is committed when it has this many, when this long has passed since its
# first, or at once when no send is in progress (nothing more could join it soon).
MAX_BATCH = 200
BATCH_SECONDS = 0.02
COMMIT_TRIES = 3


@dataclass(frozen=True, slots=True)
class ClaimedDelivery:
    id: int
    inbox_url: str
    domain: str
    attempts: int
    body: bytes
    actor_id: int
    activity_id: int


class DeliveryWorker:
    def __init__(
        self,
        db: SessionMaker,
        client: FederationClient,
        signers: SignerCache,
        *,
        concurrency: int = 64,
        per_host: int = 32,
        clock: Callable[[], datetime] = utcnow,
        rng: random.Random | None = None,
        doorbell: Doorbell | None = None,
    ) -> None:
        self._db = db
        self._doorbell = doorbell
        self._client = client
        self._signers = signers
        self.concurrency = concurrency
        self.per_host = per_host
        self._clock = clock
        self._rng = rng or random.Random()
        self._in_flight: Counter[str] = Counter()  # requests being sent, per host
        self._sending = 0  # the same, in total
        self._tasks: set[asyncio.Task[None]] = set()
        # Set when the loop should look again: a slot (or a host's window) was freed, new
        # deliveries were committed (the doorbell), or it is time to stop.
        self._wake = asyncio.Event()
        self.breaker = CircuitBreaker(clock, per_host=per_host)
        self._store = store_for(engine_of(db))
        self._bodies = ActivityBodies()
        self._recorder = OutcomeRecorder(self._store, clock, lambda: self._sending)

    async def run_once(self) -> int:
        """Claim what is due now (up to `concurrency`), send it all, and return how many once
        every outcome is committed."""
        claimed = await self.claim(self.concurrency)
        await asyncio.gather(*(self._deliver(item) for item in claimed))
        return len(claimed)

    async def run(self, stop: asyncio.Event, *, idle_seconds: float = 1.0) -> None:
        """Keep `concurrency` requests in flight until `stop` is set."""
        _freeze_startup_objects()
        try:
            with waking(self._wake, self._doorbell, stop):
                while not stop.is_set():
                    self._wake.clear()
                    for item in await self.claim(self._free_slots()):
                        task = asyncio.create_task(self._deliver(item))
                        self._tasks.add(task)
                        task.add_done_callback(self._delivery_over)
                    # Look again as soon as a request is over, even if this claim found nothing:
                    # rows may be waiting only for their host's cap, which that request freed.
                    await wait_set(self._wake, idle_seconds)
            if self._tasks:  # each awaits its own outcome's commit: this flushes the last batch
                await asyncio.gather(*self._tasks, return_exceptions=True)
        finally:  # also when cancelled: no commit is left running behind the caller's back
            await self._recorder.drain()

    def _delivery_over(self, task: asyncio.Task[None]) -> None:
        # Its outcome is committed: if claims had stopped for outcomes waiting, they may resume.
        self._tasks.discard(task)
        self._wake.set()

    def _free_slots(self) -> int:
        """Requests that may start now. A delivery whose request is over no longer takes a
        slot while its outcome waits for the batch's commit (its row stays leased until then),
        but at most `concurrency` more outcomes may wait, so a stuck commit stops the claims."""
        waiting = len(self._tasks) - self._sending
        return max(0, min(self.concurrency - self._sending, 2 * self.concurrency - waiting))

    async def claim(self, limit: int) -> list[ClaimedDelivery]:
        """Lease up to `limit` due rows, at most `per_host` in flight per host."""
        if limit <= 0:
            return []
        now = self._clock()
        excluded = self.breaker.open_domains() + [
            d for d, n in self._in_flight.items() if n >= self._cap(d)
        ]
        chosen = await self._store.claim(
            now, limit * 2, excluded, lambda rows: self._choose(rows, limit), LEASE, self._bodies
        )
        for delivery in chosen:
            self._in_flight[delivery.domain] += 1
            self._sending += 1
        return [
            ClaimedDelivery(
                d.id,
                d.inbox_url,
                d.domain,
                d.attempts,
                *self._bodies[d.activity_id],
                d.activity_id,
            )
            for d in chosen
        ]

    @property
    def deferred(self) -> int:
        """Rows the circuit breaker has pushed back without an attempt, since start."""
        return self._recorder.deferred

    def _cap(self, domain: str) -> int:
        return self.breaker.cap(domain)

    def _choose(self, rows: list[DueRow], limit: int) -> tuple[list[DueRow], list[DueRow]]:
        chosen: list[DueRow] = []
        skipped: list[DueRow] = []
        planned: Counter[str] = Counter()
        for row in rows:
            if row.unavailable:  # marked by health.py: skipped without a request
                skipped.append(row)
            elif len(chosen) < limit and self._in_flight[row.domain] + planned[
                row.domain
            ] < self._cap(row.domain):
                chosen.append(row)
                planned[row.domain] += 1
        return chosen, skipped

    async def _deliver(self, item: ClaimedDelivery) -> None:
        try:
            try:
                result = await self._send(item)
            finally:  # the request is over: the host's cap counts requests, not commits
                self._in_flight[item.domain] -= 1
                self._sending -= 1
                if self._in_flight[item.domain] <= 0:
                    del self._in_flight[item.domain]
                self._wake.set()
            self._watch_host(item.domain, result)
            await self._recorder.record(outcome_of(item, result, self._clock(), self._rng))
        except Exception:  # a bug must not kill the worker; the lease brings the row back
            log.exception("delivery %s to %s failed unexpectedly", item.id, item.inbox_url)

    async def _send(self, item: ClaimedDelivery) -> PostResult | FetchError:
        signer: Signer = await self._signers.get(item.actor_id, item.activity_id)
        try:
            return await self._client.post(item.inbox_url, item.body, signer)
        except FetchError as exc:
            return exc

    def _watch_host(self, domain: str, result: PostResult | FetchError) -> None:
        # No answer or a 5xx is the server's trouble; any other answer (4xx included) shows
        # it is up. A 429 narrows the window; the row itself follows Retry-After and backoff.
        if not isinstance(result, FetchError) and result.status == 429:
            self.breaker.throttled(domain)
        elif isinstance(result, FetchError) or result.status >= 500:
            until = self.breaker.failed(domain)
            if until is not None:
                log.info("%s keeps failing: not contacted until %s", domain, until)
                self._recorder.defer(domain, until)
        else:
            self.breaker.succeeded(domain)


@dataclass(frozen=True, slots=True)
class DeliveryOutcome:
    domain: str
    values: dict[str, object]  # the row's new columns, with its "id"
    failed: bool  # no usable answer: counts towards the host's failure streak (health.py)


def outcome_of(
    item: ClaimedDelivery, result: PostResult | FetchError, now: datetime, rng: random.Random
) -> DeliveryOutcome:
    """What the delivery row becomes after this attempt (retry.py decides)."""
    if isinstance(result, FetchError):
        decision, status, error = Decision(Outcome.RETRY), result.status, result.reason
    else:
        decision = classify(result.status, result.retry_after, now)
        status, error = result.status, None
    attempts = item.attempts + 1
    # Every outcome sets the same columns, so a batch is one executemany: the ORM bulk UPDATE
    # starts a new statement whenever the set changes. A finished row's `next_attempt_at`
    # becomes the time of its last attempt (nothing reads it once the row is done or failed).
    values: dict[str, object] = {
        "id": item.id,
        "state": WorkState.PENDING,
        "attempts": attempts,
        "next_attempt_at": now,
        "locked_until": None,
        "last_status": status,
        "last_error": None,
        "delivered_at": None,
    }
    if decision.outcome is Outcome.DELIVERED:
        values.update(state=WorkState.DONE, delivered_at=now)
    elif decision.outcome is Outcome.GIVE_UP:
        values.update(state=WorkState.FAILED, last_error=f"refused with {status}")
    else:
        values.update(_retry(attempts, decision, now, rng, error or f"answered {status}"))
    return DeliveryOutcome(item.domain, values, decision.outcome is Outcome.RETRY)


def _retry(
    attempts: int, decision: Decision, now: datetime, rng: random.Random, error: str
) -> dict[str, object]:
    retry_at = next_attempt(attempts, decision, now, rng)
    if retry_at is None:
        return {"state": WorkState.FAILED, "last_error": f"gave up: {error}"}
    return {"next_attempt_at": retry_at, "last_error": error}


class OutcomeRecorder:
    """Commits delivery outcomes in batches: one transaction for up to MAX_BATCH of them.

    `record` returns once its outcome is committed, so a delivery still counts as done only when
    it is durable; until then its row stays leased, and a crash before the commit only means the
    lease runs out and the row is sent again (at least once, as before batching).
    """

    def __init__(
        self,
        store: DeliveryStore,
        clock: Callable[[], datetime],
        sending: Callable[[], int],
    ) -> None:
        self._store = store
        self._clock = clock
        self._sending = sending
        self._waiting: list[tuple[DeliveryOutcome, asyncio.Future[None]]] = []
        self._deferrals: dict[str, datetime] = {}
        self.deferred = 0  # rows pushed back by the breaker, committed
        self._arrived = asyncio.Event()
        self._flusher: asyncio.Task[None] | None = None

    async def record(self, outcome: DeliveryOutcome) -> None:
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiting.append((outcome, future))
        self._arrived.set()
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.create_task(self._flush_all())
        await asyncio.shield(future)  # a cancelled delivery does not cancel the batch

    async def drain(self) -> None:
        """Wait for the batch being committed, if any."""
        if self._flusher is not None:
            await asyncio.shield(self._flusher)

    def defer(self, domain: str, until: datetime) -> None:
        """Push the host's due rows to `until` in the next batch (its breaker just opened)."""
        self._deferrals[domain] = until

    async def _flush_all(self) -> None:
        while self._waiting:
            await self._fill()
            batch, self._waiting = self._waiting[:MAX_BATCH], self._waiting[MAX_BATCH:]
            deferrals, self._deferrals = self._deferrals, {}
            try:
                await self._commit([outcome for outcome, _ in batch], deferrals)
            except Exception as exc:  # every waiting delivery learns of it; leases expire
                for _, future in batch:
                    if not future.done():
                        future.set_exception(exc)
            else:
                for _, future in batch:
                    if not future.done():
                        future.set_result(None)

    async def _fill(self) -> None:
        """Wait for more outcomes to join the batch, but not past BATCH_SECONDS."""
        deadline = asyncio.get_running_loop().time() + BATCH_SECONDS
        while len(self._waiting) < MAX_BATCH and self._sending() > 0:
            self._arrived.clear()
            try:
                async with asyncio.timeout_at(deadline):
                    await self._arrived.wait()
            except TimeoutError:
                return

    async def _commit(self, batch: list[DeliveryOutcome], deferrals: dict[str, datetime]) -> None:
        for attempt in range(1, COMMIT_TRIES + 1):
            try:
                self.deferred += await self._write(batch, deferrals)
                return
            except DBAPIError:
                # Workers on PostgreSQL lock the same `instances` rows in batches now, so one
                # may be chosen as a deadlock victim; the whole batch is safe to run again.
                if attempt == COMMIT_TRIES:
                    raise
                log.warning("recording %d outcomes failed; trying again", len(batch))

    async def _write(self, batch: list[DeliveryOutcome], deferrals: dict[str, datetime]) -> int:
        answered: set[str] = set()
        failures: Counter[str] = Counter()
        for outcome in batch:  # in order: an answer resets the streak the failures before it
            if outcome.failed:
                failures[outcome.domain] += 1
            else:
                answered.add(outcome.domain)
                failures.pop(outcome.domain, None)
        outcomes = [outcome.values for outcome in batch]
        return await self._store.record(outcomes, answered, failures, deferrals, self._clock())


class DeliveryStore(Protocol):
    """Where claims and outcomes go: `SqliteDeliveryStore` on a SQLite file,
    `PostgresDeliveryStore` on asyncpg, else `EngineStore`."""

    async def claim(
        self,
        now: datetime,
        scan: int,
        excluded: list[str],
        choose: Choose,
        lease: timedelta,
        bodies: ActivityBodies,
    ) -> list[DueRow]: ...

    async def record(
        self,
        outcomes: list[dict[str, Any]],
        answered: set[str],
        failures: Counter[str],
        deferrals: dict[str, datetime],
        now: datetime,
    ) -> int: ...


def store_for(engine: AsyncEngine) -> DeliveryStore:
    path = sqlite_file(engine)
    if path and delivery_sqlite.usable():
        return delivery_sqlite.SqliteDeliveryStore(path)
    if on_asyncpg(engine):
        return delivery_postgres.PostgresDeliveryStore(engine)
    return EngineStore(engine)


@functools.cache
def _freeze_startup_objects() -> None:
    """Once per process, when the first worker starts: leave what start-up made (modules,
    mappers, the app's state) out of the collector's full passes, as `fedcop serve` does after
    its start-up (app.py). Under a fan-out a full collection came every second or two, and
    walking all of it stopped the event loop for 60-75 ms each time (a frozen heap: 3-9 ms)."""
    gc.collect()
    gc.freeze()
