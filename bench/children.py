"""Helper processes of the benchmarks: servers, peers and receivers started as `python -m`."""

from __future__ import annotations

import asyncio
import contextlib
import json
import sys
from collections.abc import AsyncIterator

from bench.report import ROOT


@contextlib.asynccontextmanager
async def child_process(
    module: str, *args: str, what: str = "process"
) -> AsyncIterator[tuple[asyncio.subprocess.Process, int]]:
    """`python -m MODULE ARGS` from the checkout, with stdin and stdout piped.

    Waits (30 s at most) for the JSON line the child prints once it listens, and yields the
    process and the `port` in it. On exit closes the child's stdin, which tells it to stop (a
    child also stops by itself after its own time limit), and kills it if it has not within 10 s.
    """
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", module, *args,
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, cwd=ROOT,
    )  # fmt: skip
    try:
        assert process.stdout is not None
        async with asyncio.timeout(30):
            line = await process.stdout.readline()
        if not line:
            raise RuntimeError(f"the {what} exited (status {await process.wait()})")
        yield process, int(json.loads(line)["port"])
    finally:
        if process.stdin is not None:
            process.stdin.close()
        await wait_or_kill(process, 10)


async def wait_or_kill(process: asyncio.subprocess.Process, seconds: float) -> None:
    """Give a child that was told to stop `seconds` to exit, then kill it."""
    try:
        async with asyncio.timeout(seconds):
            await process.wait()
    except TimeoutError:
        process.kill()
        await process.wait()
