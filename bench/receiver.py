"""A deliberately minimal inbox for the fan-out benchmark, run as its own OS process.

It listens on many loopback addresses (127.0.1.1 … 127.0.1.N) on one port, answers every
request with `202 Accepted` over keep-alive, and counts requests per address. It is a raw
`asyncio.Protocol` rather than aiohttp.web so that the receiver is never what the benchmark
measures: it parses only the request line and Content-Length.

Control is over stdin/stdout, one line each way:
  started:  prints `{"port": P}` once every address is bound
  `stats`:  prints `{"total": T, "per_address": {...}, "connections": C, "bad": B}`
It exits when stdin closes (so it dies with its parent) or after `--max-seconds`, whichever
comes first.

Run: `python -m bench.receiver --hosts 200 --max-seconds 120`
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import sys
from collections import Counter
from typing import cast

import uvloop

ACCEPTED = b"HTTP/1.1 202 Accepted\r\nContent-Length: 0\r\n\r\n"
# Anything but a Content-Length body (chunked, say) is not what fedcop sends; refuse it loudly
# so the sender sees a non-202 instead of the receiver guessing at framing.
REFUSED = b"HTTP/1.1 501 Not Implemented\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
MAX_HEAD_BYTES = 16_384


def loopback_addresses(count: int) -> list[str]:
    """127.0.1.1 … 127.0.1.count: loopback only, never anything routable."""
    if not 1 <= count <= 254:
        raise ValueError("between 1 and 254 loopback addresses")
    return [f"127.0.1.{n}" for n in range(1, count + 1)]


class Counts:
    def __init__(self) -> None:
        self.per_address: Counter[str] = Counter()
        self.connections = 0
        self.bad = 0

    def snapshot(self) -> dict[str, object]:
        return {
            "total": sum(self.per_address.values()),
            "per_address": dict(self.per_address),
            "connections": self.connections,
            "bad": self.bad,
        }


class RequestProtocol(asyncio.Protocol):
    """Splits a connection's bytes into Content-Length-framed HTTP requests: a read may end
    one request and start the next, and a client may pipeline. Each whole request goes to
    `on_request` with its head; anything else is refused with a 501 and the connection closed
    (`on_refused` counts it). The benchmarks' receivers answer in their subclasses."""

    def __init__(self) -> None:
        self._buffer = bytearray()
        self._transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports quack like asyncio.Transport without subclassing it.
        self._transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        self._buffer += data
        while self._transport is not None and self._take_one_request():
            pass

    def _take_one_request(self) -> bool:
        head_end = self._buffer.find(b"\r\n\r\n")
        if head_end < 0:
            if len(self._buffer) > MAX_HEAD_BYTES:
                self._refuse()
            return False
        head = bytes(self._buffer[:head_end])
        length = content_length(head)
        if length is None:
            self._refuse()
            return False
        request_end = head_end + 4 + length
        if len(self._buffer) < request_end:
            return False
        del self._buffer[:request_end]
        self.on_request(head)
        return True

    def on_request(self, head: bytes) -> None:
        raise NotImplementedError

    def on_refused(self) -> None:
        """A request that was not Content-Length framed (or a head too large)."""

    def answer(self, response: bytes) -> None:
        assert self._transport is not None
        self._transport.write(response)

    def _refuse(self) -> None:
        self.on_refused()
        if self._transport is not None:
            self._transport.write(REFUSED)
            self.drop()

    def drop(self) -> None:
        if self._transport is not None:
            self._transport.close()
            self._transport = None

    def connection_lost(self, exc: Exception | None) -> None:
        self._transport = None


class InboxProtocol(RequestProtocol):
    def __init__(self, counts: Counts) -> None:
        super().__init__()
        self._counts = counts
        self._address = "?"

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        self._address = str(transport.get_extra_info("sockname")[0])
        self._counts.connections += 1  # keep-alive working shows as few connections per POST

    def on_request(self, head: bytes) -> None:
        # Counted before answering, so once the sender has its 202 the count is final.
        self._counts.per_address[self._address] += 1
        self.answer(ACCEPTED)

    def on_refused(self) -> None:
        self._counts.bad += 1


def content_length(head: bytes) -> int | None:
    """Content-Length of a request head (0 if absent); None if the framing is anything else."""
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        name = name.strip().lower()
        if name == b"transfer-encoding":
            return None
        if name == b"content-length":
            if not value.strip().isdigit():
                return None
            length = int(value)
    return length


async def bind_all(addresses: list[str], counts: Counts) -> tuple[int, list[asyncio.Server]]:
    """Bind every address on one port: the first bind picks a free port, the rest reuse it."""
    loop = asyncio.get_running_loop()
    first = await loop.create_server(lambda: InboxProtocol(counts), addresses[0], 0, backlog=1024)
    port = int(first.sockets[0].getsockname()[1])
    servers = [first]
    for address in addresses[1:]:
        servers.append(
            await loop.create_server(lambda: InboxProtocol(counts), address, port, backlog=1024)
        )
    return port, servers


async def serve_commands(counts: Counts) -> None:
    """Answer `stats` lines on stdin until it closes (the parent is gone or done)."""
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    while line := await reader.readline():
        if line.strip() == b"stats":
            say(counts.snapshot())


def say(message: dict[str, object]) -> None:
    sys.stdout.write(json.dumps(message) + "\n")
    sys.stdout.flush()


async def main(hosts: int, max_seconds: float) -> None:
    counts = Counts()
    port, servers = await bind_all(loopback_addresses(hosts), counts)
    say({"port": port})
    try:
        # Bounded: whatever happens to the parent, this process is gone after max_seconds.
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(serve_commands(counts), max_seconds)
    finally:
        for server in servers:
            server.close()


def cli() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hosts", type=int, default=200)
    parser.add_argument("--max-seconds", type=float, default=120.0)
    args = parser.parse_args()
    # uvloop: the receiver has one core and must not be the bottleneck.
    uvloop.run(main(args.hosts, args.max_seconds))


if __name__ == "__main__":
    cli()
