"""Signing requests on a small thread pool, handed over in batches.

`cryptography` (47 and later) releases the GIL while it signs, so RSA on two threads overlaps
with the event loop's own work. `run_in_executor` per signature cost the event loop a
`concurrent.futures.Future` (with its Condition), the chaining of two futures and a wake-up of
the loop per request; under a fan-out most of a delivery's event-loop time outside aiohttp.
Here every signature asked for in one turn of the loop goes to the pool together, in chunks,
and each chunk's results come back with one wake-up.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

# Signatures per job: small enough that both threads get work and the first result is not
# held back long (an RSA-2048 signature is ~0.4 ms), large enough to share a job's overhead.
CHUNK = 8

SignJob = tuple[Callable[[], dict[str, str]], "asyncio.Future[dict[str, str]]"]
Outcome = tuple[bool, Any]  # (True, headers) or (False, the exception)


class SigningPool:
    def __init__(self, threads: int = 2) -> None:
        self._executor = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="fedcop-sign")
        self._pending: list[SignJob] = []

    def sign(self, job: Callable[[], dict[str, str]]) -> asyncio.Future[dict[str, str]]:
        """The headers `job` returns, computed on the pool."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[dict[str, str]] = loop.create_future()
        if not self._pending:  # the first of this turn: hand the turn's jobs over after it
            loop.call_soon(self._dispatch, loop)
        self._pending.append((job, future))
        return future

    def shutdown(self) -> None:
        self._executor.shutdown(wait=False)

    def _dispatch(self, loop: asyncio.AbstractEventLoop) -> None:
        pending, self._pending = self._pending, []
        for start in range(0, len(pending), CHUNK):
            chunk = pending[start : start + CHUNK]
            try:
                self._executor.submit(self._run, loop, chunk)
            except RuntimeError as exc:  # shut down: fail these rather than leave them waiting
                _settle(chunk, [(False, exc)] * len(chunk))

    def _run(self, loop: asyncio.AbstractEventLoop, jobs: list[SignJob]) -> None:
        """On a pool thread: sign the chunk, then wake the loop once for all of it."""
        outcomes: list[Outcome] = []
        for job, _ in jobs:
            try:
                outcomes.append((True, job()))
            except Exception as exc:  # the caller's to see, like run_in_executor's
                outcomes.append((False, exc))
        # RuntimeError: the loop closed meanwhile, and nobody waits for these any more.
        with contextlib.suppress(RuntimeError):
            loop.call_soon_threadsafe(_settle, jobs, outcomes)


def _settle(jobs: list[SignJob], outcomes: list[Outcome]) -> None:
    for (_, future), (ok, value) in zip(jobs, outcomes, strict=True):
        if future.cancelled():
            continue
        if ok:
            future.set_result(value)
        else:
            future.set_exception(value)
