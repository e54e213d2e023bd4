"""What a delivery's answer means, and when to try again. Pure functions, no I/O.

Mastodon treats a 4xx other than 401, 408 and 429 as permanent and drops the delivery; so do
we, and for the same statuses we retry (https://github.com/mastodon/mastodon/blob/main/app/lib/request.rb,
`response_successful?`/`response_error_unsalvageable?`; Lemmy's `handle_response` in
activitypub-federation-rust src/activity_sending.rs makes the same split).
"""

from __future__ import annotations

import enum
import random
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime

FIRST_DELAY = timedelta(minutes=1)
GROWTH = 3
MAX_DELAY = timedelta(hours=12)
# 1, 3, 9, 27, 81, 243 minutes, then 12 h five times: the last try is 2.75 days after the
# first (2.2-3.3 with the jitter), so a server down for good has failed for more than the two
# days after which health.py marks it unavailable (with 11, jitter could end it at 1.8 days).
MAX_ATTEMPTS = 12
JITTER = 0.2
MAX_RETRY_AFTER = timedelta(days=1)
_MAX_RETRY_AFTER_DIGITS = len(str(int(MAX_RETRY_AFTER.total_seconds())))
_SALVAGEABLE_4XX = frozenset({401, 408, 429})


class Outcome(enum.StrEnum):
    DELIVERED = "delivered"
    RETRY = "retry"
    GIVE_UP = "give_up"


@dataclass(frozen=True, slots=True)
class Decision:
    outcome: Outcome
    # For RETRY: the earliest the peer asked us to come back (Retry-After), if it did.
    not_before: timedelta | None = None


def classify(
    status: int | None, retry_after: str | None = None, now: datetime | None = None
) -> Decision:
    """`status` None means no answer at all (connection refused, timeout, TLS failure)."""
    if status is None:
        return Decision(Outcome.RETRY)
    if 200 <= status < 300:
        return Decision(Outcome.DELIVERED)
    if 400 <= status < 500 and status not in _SALVAGEABLE_4XX:
        return Decision(Outcome.GIVE_UP)
    return Decision(Outcome.RETRY, parse_retry_after(retry_after, now or datetime.now(UTC)))


def parse_retry_after(value: str | None, now: datetime) -> timedelta | None:
    """Retry-After as seconds or an HTTP date, capped at a day; None if absent or unreadable."""
    if not value:
        return None
    value = value.strip()
    if value.isascii() and value.isdigit():
        # delay-seconds is ASCII digits (RFC 9110 section 10.2.3). Leading zeros stripped, a
        # number too long to be under the cap is the cap: int() refuses over 4,300 digits
        # and timedelta over ~10^14 seconds, and a peer's header must not raise.
        digits = value.lstrip("0") or "0"
        if len(digits) > _MAX_RETRY_AFTER_DIGITS:
            return MAX_RETRY_AFTER
        delay = timedelta(seconds=int(digits))
    else:
        try:
            delay = parsedate_to_datetime(value) - now
        except (TypeError, ValueError, OverflowError):
            return None
    return max(timedelta(0), min(delay, MAX_RETRY_AFTER))


def backoff(attempts: int, rng: random.Random | None = None) -> timedelta | None:
    """Delay before the next try after `attempts` failed tries, or None: give up."""
    if attempts >= MAX_ATTEMPTS:
        return None
    base: timedelta = min(FIRST_DELAY * GROWTH ** max(attempts - 1, 0), MAX_DELAY)
    spread = (rng or random).uniform(1 - JITTER, 1 + JITTER)
    return base * spread


def next_attempt(
    attempts: int, decision: Decision, now: datetime, rng: random.Random | None = None
) -> datetime | None:
    """When to try again after a RETRY decision, or None to give up."""
    delay = backoff(attempts, rng)
    if delay is None:
        return None
    if decision.not_before is not None:
        delay = max(delay, decision.not_before)
    return now + delay
