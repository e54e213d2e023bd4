"""On a SQLite file, one process at a time runs the background workers.

The SQLite delivery worker claims its rows in two steps with no row lock in between
(`delivery_sqlite.py`): two processes running workers on one file could both claim, and send,
the same delivery. Several such processes are easy to start: `fedcop serve --processes N`, or a
`fedcop worker` beside a `fedcop serve` that runs its own. So before running them a process
takes an advisory lock on a file beside the database (`flock`: the kernel drops it when the
process ends, however it ends); any other stands by, tries again every few seconds, and takes
over when the holder goes. PostgreSQL needs no turn: its claims skip rows another has locked.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import logging
import os
from collections.abc import AsyncIterator

from sqlalchemy.ext.asyncio import AsyncEngine

from fedcop.db import sqlite_file
from fedcop.federation.doorbell import wait_set

log = logging.getLogger(__name__)
RETRY_SECONDS = 2.0


def lock_path(database_file: str) -> str:
    # Beside SQLite's own -wal and -shm files; never deleted (removing a lock file others may
    # have open would let two processes hold "the" lock on two different files).
    return f"{database_file}-workers.lock"


@contextlib.asynccontextmanager
async def workers_turn(engine: AsyncEngine, stop: asyncio.Event) -> AsyncIterator[bool]:
    """True once this process may run the workers (at once, except on a SQLite file another
    process holds); False if `stop` was set while waiting. The turn ends with the block."""
    database_file = sqlite_file(engine)
    if database_file is None:
        yield True
        return
    descriptor = os.open(lock_path(database_file), os.O_RDWR | os.O_CREAT, 0o600)
    try:
        told = False
        while not _try_lock(descriptor):
            if not told:
                log.info("another process runs the workers for %s; standing by", database_file)
                told = True
            await wait_set(stop, RETRY_SECONDS)
            if stop.is_set():
                yield False
                return
        if told:
            log.info("this process now runs the workers for %s", database_file)
        yield True
    finally:
        os.close(descriptor)  # releases the lock, if held


def _try_lock(descriptor: int) -> bool:
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True
