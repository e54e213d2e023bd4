"""Helper processes of the benchmarks: servers, peers and receivers started as `python -m`.

`child_process` is the benchmark's side; `serve_app` the side of a child serving an ASGI app.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
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


def worker_env(database_url: str, **settings: str) -> dict[str, str]:
    """This process's environment without its FEDCOP_ settings, and those of a bench instance
    (`settings`: more of them, FEDCOP_ALLOW_PRIVATE_ADDRESSES="true", say)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("FEDCOP_")}
    env.update(
        FEDCOP_DOMAIN="bench.test",
        FEDCOP_SCHEME="http",
        FEDCOP_DATABASE_URL=database_url,
        FEDCOP_SECRET_KEY="x" * 40,
        FEDCOP_LOG_LEVEL="warning",
        **settings,
    )
    return env


@contextlib.asynccontextmanager
async def child(
    *command: str, env: dict[str, str] | None = None
) -> AsyncIterator[asyncio.subprocess.Process]:
    """A child process that is always stopped (TERM, then KILL) when the block exits."""
    process = await asyncio.create_subprocess_exec(
        *command,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        cwd=ROOT,
        env=env,
    )
    try:
        yield process
    finally:
        if process.returncode is None:
            process.send_signal(signal.SIGTERM)
            await wait_or_kill(process, 10)


@contextlib.asynccontextmanager
async def fedcop_worker(
    env: dict[str, str], *options: str
) -> AsyncIterator[asyncio.subprocess.Process]:
    """`fedcop worker OPTIONS` in its own process, once it has printed its start line."""
    # `python -m fedcop` is `.venv/bin/fedcop`, but runs the fedcop of this checkout (cwd).
    async with child(sys.executable, "-m", "fedcop", "worker", *options, env=env) as process:
        assert process.stdout is not None
        assert process.stderr is not None
        async with asyncio.timeout(60):
            line = await process.stdout.readline()
        if not line.startswith(b"fedcop worker"):
            error = (await process.stderr.read()).decode(errors="replace")[-2000:]
            raise RuntimeError(f"fedcop worker did not start: {line!r} {error}")
        yield process


def serve_app(app: Any, max_seconds: float, processes: int = 1) -> None:
    """In a child: serve `app` under uvicorn (the settings `fedcop serve` uses that matter here)
    on 127.0.0.1:<free port>, print {"port": P} once it is up, and stop when stdin closes (the
    benchmark closed the pipe or died) or after `max_seconds`.

    With `processes` > 1, as `fedcop serve --processes N`: N processes accept on the one
    socket. They are forked here once it is bound (fedcop spawns them and each builds its app;
    `app` holds no connection yet, and each process runs its own lifespan: its own engine,
    inbox writer and threads). `process_tree_cpu_seconds` counts them all."""
    import uvicorn
    import uvloop

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))  # loopback only
    port = sock.getsockname()[1]
    # The parent forks processes - 1 children; each child stops at its own fork (0).
    forked = any(os.fork() == 0 for _ in range(processes - 1))
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
        if not forked:  # the first process speaks for all
            print(json.dumps({"port": port}), flush=True)
        await serving

    uvloop.run(main())


def process_cpu_seconds(pid: int) -> float | None:
    """User + system CPU time of a process from /proc (Linux); None elsewhere."""
    fields = _stat_fields(Path(f"/proc/{pid}/stat"))
    return None if fields is None else _cpu_seconds(fields)


def process_tree_cpu_seconds(pid: int) -> float | None:
    """As `process_cpu_seconds`, for a process and its children (`serve_app`'s forks)."""
    own = process_cpu_seconds(pid)
    if own is None:
        return None
    for stat in Path("/proc").glob("[0-9]*/stat"):
        fields = _stat_fields(stat)
        if fields is not None and fields[1] == str(pid):  # the 4th field: the parent's pid
            own += _cpu_seconds(fields)
    return own


def _stat_fields(stat: Path) -> list[str] | None:
    """The fields after the ")" that ends the command name (so from the 3rd on)."""
    try:
        return stat.read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None  # not Linux, or the process is gone


def _cpu_seconds(fields: list[str]) -> float:
    # utime and stime are the 14th and 15th fields of the stat line.
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
