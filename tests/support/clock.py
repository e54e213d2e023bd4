"""A clock tests move by hand, so retries days apart take no time."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from fedcop.models import utcnow


def _a_little_ahead() -> datetime:
    # Rows written by services carry real timestamps; starting a moment ahead keeps them due.
    return utcnow() + timedelta(minutes=1)


@dataclass
class FakeClock:
    now: datetime = field(default_factory=_a_little_ahead)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, delta: timedelta) -> None:
        self.now += delta
