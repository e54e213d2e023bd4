"""`fedcop worker`, with a clock the test can move forward: for the fault tests.

    FEDCOP_TEST_CLOCK_FILE=/tmp/offset python -m tests.support.clocked_worker

Runs exactly what `fedcop worker` runs (`run_workers` over `fedcop.worker.build_workers`,
the same settings from FEDCOP_* variables), but their "now" is the real time plus the number
of seconds in the clock file (0 if absent). Retries wait minutes (1 min first,
`federation/retry.py`), the circuit breaker cools down for 60 s and a lease lasts 5 minutes: a
test moves this worker's clock past them instead of sleeping, as the in-process flow tests do
with their fake clocks.
HTTP signatures keep the real time (the client signs with its own clock).
"""

from __future__ import annotations

import asyncio
import os
import signal
from datetime import datetime, timedelta
from pathlib import Path

from fedcop.cli.base import with_state
from fedcop.models import utcnow
from fedcop.web.state import AppState
from fedcop.worker import build_workers, run_workers


class FileClock:
    """utcnow() plus the offset written in a file, re-read when the file changes."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._mtime = -1.0
        self._offset = timedelta(0)

    def __call__(self) -> datetime:
        try:
            mtime = self.path.stat().st_mtime
            if mtime != self._mtime:
                self._offset = timedelta(seconds=float(self.path.read_text().strip() or 0))
                self._mtime = mtime
        except (OSError, ValueError):
            pass
        return utcnow() + self._offset


async def _run(state: AppState) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    clock = FileClock(Path(os.environ["FEDCOP_TEST_CLOCK_FILE"]))
    await run_workers(lambda: build_workers(state, clock=clock), stop)


if __name__ == "__main__":
    with_state(_run)
