"""A per-host circuit breaker for the delivery worker: stop hammering a server that is down.

Without it, a dead server with many inboxes behind it (a personal-inbox-only server with 30
followers, say) costs a signed request per row before the retry schedule spaces them out; each
failure is as expensive as a delivery and, for servers that time out, holds a slot for 30 s.
After `threshold` consecutive failures (no answer at all, or a 5xx) from one host, the worker
stops claiming that host's rows for a cool-down and pushes its due rows to the end of it.

How it relates to `health.py`: the breaker is in-memory, per worker process and short-lived
(seconds to an hour); `health.py`'s mark is in the database, shared, and set only after failures
spanning days. The breaker never touches the `instances` row: rows it pushes are not attempted,
so they count neither an attempt nor a failure, and the days-long streak still grows only from
real requests (the probe after each cool-down, and the retries' own schedule). A host marked
unavailable by `health.py` is skipped before the breaker is consulted; a host the breaker holds
open is merely not claimed, so its rows are never skipped because of the breaker.

It also sets each host's window, the requests it may have in flight, the way TCP's congestion
window works: a host this worker has not heard from yet gets START_WINDOW (so a dead host costs
a couple of requests, not `per_host`, before its failures open the breaker), each answer widens
it by one (doubling per round trip while everything succeeds) up to `per_host`, and a failure or
a 429 halves it. A healthy host far away needs a wide window to be fast: a backlog to a server at
150 ms round trip moves at window / 0.15 s, e.g. 8 → 53/s but 32 → 213/s.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import or_, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from fedcop.models import Delivery, WorkState

THRESHOLD = 3
START_WINDOW = 2
COOL_DOWN = timedelta(seconds=60)
# Doubling while the host stays down, capped well below the retry schedule's longest delays so
# a host that comes back is noticed within the hour.
MAX_COOL_DOWN = timedelta(hours=1)


@dataclass(slots=True)
class _Host:
    window: int  # requests that may be in flight while closed
    failures: int = 0  # consecutive, since the last answer
    trips: int = 0  # times opened since the last answer: the cool-down grows with it
    open_until: datetime | None = None  # None: closed; past: half-open (one probe at a time)


class CircuitBreaker:
    """Pure bookkeeping, no I/O: `clock` is injected so tests move time by hand."""

    def __init__(
        self,
        clock: Callable[[], datetime],
        *,
        per_host: int = 8,
        start_window: int = START_WINDOW,
        threshold: int = THRESHOLD,
        cool_down: timedelta = COOL_DOWN,
        max_cool_down: timedelta = MAX_COOL_DOWN,
    ) -> None:
        self._clock = clock
        self.per_host = per_host
        self.start_window = min(start_window, per_host)
        self.threshold = threshold
        self.cool_down = cool_down
        self.max_cool_down = max_cool_down
        self._hosts: dict[str, _Host] = {}

    def _host(self, domain: str) -> _Host:
        host = self._hosts.get(domain)
        if host is None:
            host = self._hosts[domain] = _Host(self.start_window)
        return host

    def succeeded(self, domain: str) -> None:
        """Any answer but a 5xx or a 429: the host is up; close, widen the window by one."""
        host = self._host(domain)
        host.failures = host.trips = 0
        host.open_until = None
        host.window = min(host.window + 1, self.per_host)

    def throttled(self, domain: str) -> None:
        """A 429: the host is up but asks for less; halve the window (its Retry-After and the
        backoff schedule the row itself)."""
        host = self._host(domain)
        host.window = max(1, host.window // 2)

    def failed(self, domain: str) -> datetime | None:
        """Count a failure; if this one opens the breaker, return when the cool-down ends."""
        host = self._host(domain)
        now = self._clock()
        if host.open_until is not None and now < host.open_until:
            return None  # a request sent before it opened: already accounted for
        host.window = max(1, host.window // 2)
        host.failures += 1
        # Half-open (cool-down over): the probe failed, so reopen at once, for longer.
        if host.open_until is None and host.failures < self.threshold:
            return None
        host.trips += 1
        delay = min(self.cool_down * 2 ** (host.trips - 1), self.max_cool_down)
        host.open_until = now + delay
        return host.open_until

    def cap(self, domain: str) -> int:
        """How many requests to this host may be in flight: none while open, one probe when
        the cool-down has ended (half-open), its window otherwise."""
        host = self._hosts.get(domain)
        if host is None:
            return self.start_window
        if host.open_until is None:
            return host.window
        return 0 if self._clock() < host.open_until else 1

    def open_domains(self) -> list[str]:
        now = self._clock()
        return [
            domain
            for domain, host in self._hosts.items()
            if host.open_until is not None and now < host.open_until
        ]


async def defer_due(
    executor: AsyncSession | AsyncConnection, domain: str, until: datetime, now: datetime
) -> int:
    """Move the host's due, unleased rows to the end of its cool-down, without an attempt.

    Leased rows are left alone: they are in flight here or in another worker, and will record
    their own outcome. Other workers see the new `next_attempt_at` too, so they hold off as well.
    Rows not yet due keep their own retry time: this worker will not claim them while the
    breaker is open, and moving them would only make the returned count lie about what waits.
    """
    result = await executor.execute(
        update(Delivery)
        .where(
            Delivery.domain == domain,
            Delivery.state == WorkState.PENDING,
            Delivery.next_attempt_at <= now,
            or_(Delivery.locked_until.is_(None), Delivery.locked_until < now),
        )
        .values(next_attempt_at=until)
        .execution_options(synchronize_session=False)
    )
    return int(getattr(result, "rowcount", 0) or 0)
