"""A clock tests move by hand, so retries days apart take no time."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from fedcop.models import utcnow


@dataclass
class FakeClock:
    now: datetime = field(default_factory=utcnow)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, delta: timedelta) -> None:
        self.now += delta
