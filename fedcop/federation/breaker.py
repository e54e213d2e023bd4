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
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import or_, update
from sqlalchemy.ext.asyncio import AsyncSession

from fedcop.models import Delivery, WorkState

THRESHOLD = 3
COOL_DOWN = timedelta(seconds=60)
# Doubling while the host stays down, capped well below the retry schedule's longest delays so
# a host that comes back is noticed within the hour.
MAX_COOL_DOWN = timedelta(hours=1)


@dataclass(slots=True)
class _Host:
    failures: int = 0  # consecutive, since the last answer
    trips: int = 0  # times opened since the last answer: the cool-down grows with it
    open_until: datetime | None = None  # None: closed; past: half-open (one probe at a time)


class CircuitBreaker:
    """Pure bookkeeping, no I/O: `clock` is injected so tests move time by hand."""

    def __init__(
        self,
        clock: Callable[[], datetime],
        *,
        threshold: int = THRESHOLD,
        cool_down: timedelta = COOL_DOWN,
        max_cool_down: timedelta = MAX_COOL_DOWN,
    ) -> None:
        self._clock = clock
        self.threshold = threshold
        self.cool_down = cool_down
        self.max_cool_down = max_cool_down
        self._hosts: dict[str, _Host] = {}

    def succeeded(self, domain: str) -> None:
        """Any answer but a 5xx: the host is up, forget everything about it."""
        self._hosts.pop(domain, None)

    def failed(self, domain: str) -> datetime | None:
        """Count a failure; if this one opens the breaker, return when the cool-down ends."""
        host = self._hosts.setdefault(domain, _Host())
        now = self._clock()
        if host.open_until is not None and now < host.open_until:
            return None  # a request sent before it opened: already accounted for
        host.failures += 1
        # Half-open (cool-down over): the probe failed, so reopen at once, for longer.
        if host.open_until is None and host.failures < self.threshold:
            return None
        host.trips += 1
        delay = min(self.cool_down * 2 ** (host.trips - 1), self.max_cool_down)
        host.open_until = now + delay
        return host.open_until

    def cap(self, domain: str, per_host: int) -> int:
        """How many requests to this host may be in flight: none while open, one probe when
        the cool-down has ended (half-open), `per_host` otherwise."""
        host = self._hosts.get(domain)
        if host is None or host.open_until is None:
            return per_host
        return 0 if self._clock() < host.open_until else 1

    def open_domains(self) -> list[str]:
        now = self._clock()
        return [
            domain
            for domain, host in self._hosts.items()
            if host.open_until is not None and now < host.open_until
        ]


async def defer_due(session: AsyncSession, domain: str, until: datetime, now: datetime) -> int:
    """Move the host's due, unleased rows to the end of its cool-down, without an attempt.

    Leased rows are left alone: they are in flight here or in another worker, and will record
    their own outcome. Other workers see the new `next_attempt_at` too, so they hold off as well.
    Rows not yet due keep their own retry time: this worker will not claim them while the
    breaker is open, and moving them would only make the returned count lie about what waits.
    """
    result = await session.execute(
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
