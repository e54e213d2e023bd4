"""Helper processes of the benchmarks: servers, peers and receivers started as `python -m`.

`child_process` is the benchmark's side; `serve_app` the side of a child serving an ASGI app.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import socket
import sys
import threading
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

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


def serve_app(app: Any, max_seconds: float) -> None:
    """In a child: serve `app` under uvicorn (the settings `fedcop serve` uses that matter here)
    on 127.0.0.1:<free port>, print {"port": P} once it is up, and stop when stdin closes (the
    benchmark closed the pipe or died) or after `max_seconds`."""
    import uvicorn
    import uvloop

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))  # loopback only
    port = sock.getsockname()[1]
    server = uvicorn.Server(
        uvicorn.Config(app, log_level="warning", access_log=False, proxy_headers=True, backlog=2048)
    )

    async def main() -> None:
        loop = asyncio.get_running_loop()

        def stop() -> None:
            server.should_exit = True

        def watch_stdin() -> None:
            sys.stdin.buffer.read()  # returns at EOF
            loop.call_soon_threadsafe(stop)

        threading.Thread(target=watch_stdin, daemon=True).start()
        loop.call_later(max_seconds, stop)
        serving = asyncio.create_task(server.serve(sockets=[sock]))
        # uvicorn says it is up through a plain attribute, so poll it.
        while not server.started and not serving.done():  # noqa: ASYNC110
            await asyncio.sleep(0.02)
        print(json.dumps({"port": port}), flush=True)
        await serving

    uvloop.run(main())


def process_cpu_seconds(pid: int) -> float | None:
    """User + system CPU time of a process from /proc (Linux); None elsewhere."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    # After the ")" that ends the command name, utime and stime are the 12th and 13th fields.
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
