"""The retry policy as pure functions: what an answer means, and when to try again."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest

from fedcop.federation.health import UNAVAILABLE_AFTER
from fedcop.federation.retry import (
    FIRST_DELAY,
    JITTER,
    MAX_ATTEMPTS,
    MAX_DELAY,
    Decision,
    Outcome,
    backoff,
    classify,
    next_attempt,
    parse_retry_after,
)

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)


class _Extreme(random.Random):
    """Jitter always at one end of its range."""

    def __init__(self, end: float) -> None:
        super().__init__(0)
        self.end = end

    def uniform(self, a: float, b: float) -> float:
        return a if self.end < 0 else b


@pytest.mark.parametrize(
    ("status", "outcome"),
    [
        (200, Outcome.DELIVERED), (202, Outcome.DELIVERED), (204, Outcome.DELIVERED),
        (400, Outcome.GIVE_UP), (403, Outcome.GIVE_UP), (404, Outcome.GIVE_UP),
        (410, Outcome.GIVE_UP), (422, Outcome.GIVE_UP),
        (401, Outcome.RETRY), (408, Outcome.RETRY), (429, Outcome.RETRY),
        (500, Outcome.RETRY), (502, Outcome.RETRY), (503, Outcome.RETRY),
        (None, Outcome.RETRY),  # no answer at all
    ],
)  # fmt: skip
def test_what_an_answer_means(status: int | None, outcome: Outcome) -> None:
    assert classify(status).outcome == outcome


def test_retry_after_in_seconds_or_as_a_date_capped_at_a_day() -> None:
    assert parse_retry_after("120", NOW) == timedelta(minutes=2)
    assert parse_retry_after("Thu, 26 Nov 2026 13:00:00 GMT", NOW) == timedelta(hours=1)
    assert parse_retry_after("Wed, 25 Nov 2026 13:00:00 GMT", NOW) == timedelta(0)
    assert parse_retry_after("9999999", NOW) == timedelta(days=1)
    assert parse_retry_after("soon", NOW) is None
    assert parse_retry_after(None, NOW) is None


@pytest.mark.parametrize(
    "value",
    [
        "99999999999999",  # more seconds than a timedelta holds
        "9" * 5000,  # more digits than int() converts
        "0" * 5000 + "7200",  # long, but only two hours
    ],
)
def test_retry_after_beyond_what_python_holds_is_capped_not_an_error(value: str) -> None:
    # A peer's header must never raise here: the outcome of the attempt would be lost and the
    # row sent again when its lease ends, forever, to a peer that asked for less traffic.
    expected = timedelta(hours=2) if value.endswith("7200") else timedelta(days=1)
    assert parse_retry_after(value, NOW) == expected


@pytest.mark.parametrize(
    "value", ["\u00b2", "\u0663\u0660", "1e9", "-5", "12 34", "Fri, 99 Nov 2026"]
)
def test_retry_after_that_is_not_ascii_digits_or_a_date_is_ignored(value: str) -> None:
    # RFC 9110 section 10.2.3: delay-seconds is 1*DIGIT, ASCII only; str.isdigit() also
    # accepts superscripts (which int() refuses) and other scripts' digits (which it reads).
    assert parse_retry_after(value, NOW) is None


def test_retry_after_longer_than_the_backoff_wins() -> None:
    asked = classify(503, "3600", NOW)
    assert asked == Decision(Outcome.RETRY, timedelta(hours=1))
    later = next_attempt(1, asked, NOW, _Extreme(+1))
    assert later == NOW + timedelta(hours=1)
    # and a shorter one does not shorten the backoff
    assert next_attempt(3, classify(503, "1", NOW), NOW, _Extreme(-1)) == NOW + FIRST_DELAY * 9 * (
        1 - JITTER
    )


def test_delays_grow_then_cap_then_stop() -> None:
    nominal = [backoff(n, _Extreme(-1)) for n in range(1, MAX_ATTEMPTS)]
    assert all(d is not None for d in nominal)
    assert nominal[0] == FIRST_DELAY * (1 - JITTER)
    assert nominal == sorted(nominal)  # type: ignore[type-var]
    assert max(d for d in nominal if d is not None) == MAX_DELAY * (1 - JITTER)
    assert backoff(MAX_ATTEMPTS) is None
    assert backoff(MAX_ATTEMPTS + 5) is None


@pytest.mark.parametrize("end", [-1.0, +1.0])
def test_every_schedule_spans_two_to_three_and_a_half_days(end: float) -> None:
    """With the jitter at either extreme, the last try comes after the two days that mark a
    server unavailable, and within the 'about two to three days' the delivery issue asks."""
    total = sum(
        (backoff(n, _Extreme(end)) or timedelta() for n in range(1, MAX_ATTEMPTS)), timedelta()
    )
    assert UNAVAILABLE_AFTER < total < timedelta(days=3.5)
