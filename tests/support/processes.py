"""Starting fedcop as a real OS process on loopback, bounded in time."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO

import httpx

START_TIMEOUT_SECONDS = 30.0
CLI_TIMEOUT_SECONDS = 60.0


def free_loopback_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def fedcop_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "fedcop", *args]


def run_fedcop(env: dict[str, str], cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """Run one `fedcop` command as its own process with `env` added, bounded in time."""
    return subprocess.run(
        fedcop_command(*args), env={**os.environ, **env}, cwd=cwd,
        capture_output=True, text=True, timeout=CLI_TIMEOUT_SECONDS, check=False,
    )  # fmt: skip


def fedcop_cli(env: dict[str, str], cwd: Path, *args: str) -> str:
    """As `run_fedcop`, which must succeed; its standard output, stripped."""
    result = run_fedcop(env, cwd, *args)
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


@contextlib.contextmanager
def running_server(
    env: dict[str, str], port: int, *extra: str, host: str = "127.0.0.1"
) -> Iterator[str]:
    """Run `fedcop serve` on host:port (loopback) until the block ends; yield its base URL."""
    assert host.startswith("127."), "test servers bind loopback addresses only"
    command = fedcop_command("serve", "--host", host, "--port", str(port), *extra)
    # Output goes to a file, not a pipe: nobody reads a pipe while the server runs, and a
    # chatty server would block once the pipe's buffer (~64 KB) is full.
    with tempfile.TemporaryFile("w+") as output:
        process = subprocess.Popen(
            command, env={**os.environ, **env}, stdout=output, stderr=subprocess.STDOUT, text=True
        )
        base_url = f"http://{host}:{port}"
        try:
            _wait_until_up(process, base_url, output)
            yield base_url
        finally:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=5)


def _wait_until_up(process: subprocess.Popen[str], base_url: str, output: IO[str]) -> None:
    deadline = time.monotonic() + START_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            output.seek(0)
            raise RuntimeError(f"fedcop serve exited with {process.returncode}:\n{output.read()}")
        with contextlib.suppress(httpx.TransportError):
            if httpx.get(f"{base_url}/nodeinfo/2.1", timeout=1).status_code == 200:
                return
        time.sleep(0.1)
    raise TimeoutError(f"fedcop serve did not answer at {base_url} in {START_TIMEOUT_SECONDS}s")
