"""Closed-loop HTTP load from `wrk` (a C load generator), replaying pre-signed requests.

Why not the benchmarks' own aiohttp client: on this 2-core machine it spent as much CPU per
request as the server it measured (~100-170 µs, measured by `bench inbox`), so a run measured
the two Python processes taking turns on the cores as much as the server. wrk keeps the same
closed loop (N keep-alive connections, each sending its next request when the previous answer
arrives) at ~10-20 µs of CPU per request, so nearly a core is left to the server under test,
as it would be with senders on other machines.

Every request is written out once, byte for byte (request line, the signed headers, the
body), and `wrk_requests.lua` hands them out in order, starting over at the end of the file.
A run is bounded in time, not in count: the caller gives enough distinct requests, and
`WrkRun.requests` tells whether they ran out (more requests than the file holds).

Debian and Ubuntu package it as `wrk` (`apt-get install wrk`). Without it the benchmarks fall
back to the aiohttp client and say so.
"""

from __future__ import annotations

import asyncio
import json
import resource
import shutil
from dataclasses import dataclass
from pathlib import Path

from bench.verify import SignedPost

SCRIPT = Path(__file__).with_name("wrk_requests.lua")
# Between requests in the file. Never inside one: header lines end in CRLF and the bodies are
# compact JSON (a newline inside a JSON string is escaped).
SEPARATOR = b"\n\n"


def wrk_path() -> str | None:
    return shutil.which("wrk")


def raw_request(post: SignedPost, path: str) -> bytes:
    head = [f"POST {path} HTTP/1.1"]
    head += [f"{name}: {value}" for name, value in post.headers.items()]
    head.append(f"Content-Length: {len(post.body)}")
    request = ("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + post.body
    if SEPARATOR in request:
        raise ValueError(f"{post.activity_id}: the request holds the file's separator")
    return request


def write_requests(file: Path, posts: list[SignedPost], path: str) -> Path:
    file.write_bytes(b"".join(raw_request(post, path) + SEPARATOR for post in posts))
    return file


@dataclass(frozen=True, slots=True)
class WrkRun:
    requests: int  # answers received
    seconds: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float
    non_2xx: int
    socket_errors: int  # connect, read, write and timeout errors together
    cpu_seconds: float  # wrk's own user + system time


async def run_wrk(
    url: str, requests_file: Path, *, connections: int, seconds: int, answer_within: int = 5
) -> WrkRun:
    """`connections` keep-alive connections from one wrk thread for `seconds` (wrk takes
    whole seconds)."""
    wrk = wrk_path()
    if wrk is None:
        raise RuntimeError("wrk is not installed")
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    process = await asyncio.create_subprocess_exec(
        wrk, "-t1", f"-c{connections}", f"-d{seconds}s", f"--timeout={answer_within}s",
        "-s", str(SCRIPT), url, "--", str(requests_file),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await process.communicate()
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    lines = [line for line in out.decode().splitlines() if line.startswith("{")]
    if process.returncode != 0 or not lines:
        raise RuntimeError(f"wrk failed ({process.returncode}): {err.decode()[-500:]}")
    summary = json.loads(lines[-1])
    return WrkRun(
        requests=summary["requests"],
        seconds=summary["duration_us"] / 1e6,
        p50_ms=summary["p50_us"] / 1000,
        p90_ms=summary["p90_us"] / 1000,
        p99_ms=summary["p99_us"] / 1000,
        max_ms=summary["max_us"] / 1000,
        non_2xx=summary["status_errors"],
        socket_errors=summary["socket_errors"],
        cpu_seconds=(after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime),
    )
