"""Open-loop HTTP load: requests sent on a fixed schedule, latency counted from that schedule.

wrk (bench/wrk.py) is a closed loop: each of its 32 connections sends its next request when
the previous answer arrives, so the server is always saturated and the latency it reports is
mostly the queue in front of the server: median ≈ connections ÷ rate (Little's law). That
says how the rate was reached, not how long a request waits at a given load. Here, as in
wrk2's model (https://github.com/giltene/wrk2), request i is due at start + i / rate on
connection i mod N; a connection still waiting for an earlier answer sends it late, and the
request's latency is counted from when it was *due*, so a stalled server cannot hide its
stall by slowing the load down (coordinated omission).

Pure asyncio protocol code on the benchmark's own event loop (uvloop): ~15-25 µs of CPU a
request, a few percent of a core at the rates measured. The generator's own lateness (a timer
firing late on a busy machine) is counted as latency too: the figures err on the slow side.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import cast

from bench.report import percentile


@dataclass(frozen=True, slots=True)
class OpenLoopRun:
    rate: float  # requests per second offered
    sent: int
    answered: int  # answers with a 2xx status
    failed: int  # other statuses, closed connections, no answer before the deadline
    p50_ms: float
    p99_ms: float
    max_ms: float

    def summary(self) -> str:
        return (
            f"{self.rate:,.0f}/s offered, {self.answered}/{self.sent} 2xx, p50 {self.p50_ms:.1f} "
            f"ms, p99 {self.p99_ms:.1f} ms, max {self.max_ms:.1f} ms"
        )


class _Connection(asyncio.Protocol):
    """One keep-alive HTTP/1.1 connection; `exchange` sends a request and awaits its status."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        self.answer: asyncio.Future[int] | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast("asyncio.Transport", transport)  # uvloop's is not a subclass

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        end = self.buffer.find(b"\r\n\r\n")
        if end < 0 or self.answer is None or self.answer.done():
            return
        head = bytes(self.buffer[:end]).decode("latin-1").split("\r\n")
        length = 0
        for line in head[1:]:
            name, _, value = line.partition(":")
            if name.strip().lower() == "content-length":
                length = int(value)
        if len(self.buffer) < end + 4 + length:
            return  # the body is still coming
        del self.buffer[: end + 4 + length]
        self.answer.set_result(int(head[0].split()[1]))

    def connection_lost(self, exc: Exception | None) -> None:
        if self.answer is not None and not self.answer.done():
            self.answer.set_exception(exc or ConnectionError("closed by the server"))

    async def exchange(self, request: bytes) -> int:
        assert self.transport is not None
        self.answer = asyncio.get_running_loop().create_future()
        self.transport.write(request)
        return await self.answer


async def run_open_loop(
    host: str, port: int, requests: list[bytes], *, rate: float, connections: int,
    seconds: float, answer_within: float = 5.0,
) -> OpenLoopRun:  # fmt: skip
    """Offer `rate` requests a second over `connections` connections for `seconds`, taking
    `requests` in order (each is sent once: there must be at least rate times seconds of them)."""
    total = int(rate * seconds)
    if total > len(requests):
        raise ValueError(f"{total} requests needed, {len(requests)} given")
    loop = asyncio.get_running_loop()
    opened = [await loop.create_connection(_Connection, host, port) for _ in range(connections)]
    latencies: list[float] = []
    failed = 0
    start = time.perf_counter() + 0.05  # every connection is open before the first is due

    async def drive(first: int, connection: _Connection) -> None:
        nonlocal failed
        for index in range(first, total, connections):
            due = start + index / rate
            wait = due - time.perf_counter()
            if wait > 0:
                await asyncio.sleep(wait)
            try:
                async with asyncio.timeout(answer_within):
                    status = await connection.exchange(requests[index])
            except (TimeoutError, ConnectionError, OSError):
                failed += len(range(index, total, connections))  # this one and the rest
                return  # of this connection's: it is done for
            if 200 <= status < 300:
                latencies.append(time.perf_counter() - due)
            else:
                failed += 1

    try:
        await asyncio.gather(*(drive(k, protocol) for k, (_, protocol) in enumerate(opened)))
    finally:
        for transport, _ in opened:
            transport.close()
    latencies.sort()
    ordered = latencies or [float("nan")]  # nothing answered: no latency to give
    return OpenLoopRun(
        rate=rate,
        sent=total,
        answered=len(latencies),
        failed=failed,
        p50_ms=1000 * percentile(ordered, 0.50),
        p99_ms=1000 * percentile(ordered, 0.99),
        max_ms=1000 * (latencies[-1] if latencies else 0.0),
    )
