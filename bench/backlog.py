"""Catch-up of a delivery backlog to one slow host: 50,000 pending deliveries, 150 ms round trip.

Target (from the issue): the worker drains a 50,000-activity backlog to ONE host that takes
150 ms to answer at **≥ 100 activities/s**. A host that has been down for a day and comes back
is the common case; the worker must not crawl through its backlog one small window at a time.

- **Receiver:** a separate OS process (`python -m bench.backlog --receive`, a raw
  `asyncio.Protocol` on uvloop) on 127.0.1.1 only, answering every POST `202 Accepted` over
  keep-alive **150 ms after** the request arrived (`loop.call_later`, so it holds any number of
  requests at once and is never the bottleneck). It counts POSTs, peak requests in flight and
  connections, and exits when its stdin closes or after a bounded time.
- **Backlog:** one local group, 50,000 `outbox_activities` (a ~1 KB `Create{Note}` each) and one
  pending `deliveries` row each to the receiver's shared inbox, inserted in bulk before timing.
- **Worker:** fedcop's own, through its public interface: `build_workers(state)` from
  `fedcop/worker.py` with the defaults `fedcop worker` uses (or `--concurrency`/`--per-host`),
  its delivery worker's `run(stop)` started as a task, exactly as `fedcop worker` runs it.
- **Measured:** a 3 s ramp (not timed; the per-host window may start small and grow), then
  deliveries *recorded as done* in the database per second over `--seconds` (default 15 s).
  Draining all 50,000 at ≥ 100/s takes ≥ 8 minutes, too long for the suite; the steady rate
  over the window is what the target is about, and the time to drain the whole backlog is
  projected from it. `--drain` runs until the backlog is empty instead.
- **Checks:** after the worker stops (it records every outcome in flight first), the receiver's
  POST count must equal the number of rows marked done, every answer 202, no row failed.
- **Baseline:** the host's round trip fixes what any sender can reach with W requests in
  flight: W ÷ 0.150 s. The ratio reported is activities/s ÷ 100 (the issue's absolute target,
  as `idle` does for its absolute limits); the run also records the peak in-flight requests the
  receiver saw, and the rate the same window would allow (peak ÷ RTT), so a miss says whether
  the window or the sender's speed is what limits it.

Run: `python -m bench backlog [--backlog 50000] [--seconds 15] [--rtt-ms 150] [--drain]
[--database postgresql] [--concurrency N] [--per-host N] [--client-per-host N]`
(`--client-per-host` is a what-if: the same worker over an HTTP client allowing that many
connections per host; its row is kept apart from the real one.)
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import json
import sys
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import asdict, dataclass
from datetime import timedelta
from typing import Any

import orjson
from sqlalchemy import func, insert, select

from bench.children import child_process
from bench.followers import bench_settings, postgres_reachable, prepared_engine, scratch_database
from bench.receiver import RequestProtocol, say
from bench.report import Result
from fedcop.ap.remote import host_of
from fedcop.app import build_state
from fedcop.federation.client import FederationClient
from fedcop.models import Delivery, OutboxActivity, WorkState, utcnow
from fedcop.models.actor import Actor
from fedcop.services.actors import create_group
from fedcop.web.state import AppState
from fedcop.worker import build_workers

TARGET_PER_SECOND = 100.0
ADDRESS = "127.0.1.1"  # loopback only
ACCEPTED = b"HTTP/1.1 202 Accepted\r\nContent-Length: 0\r\n\r\n"
RAMP_SECONDS = 3.0


# -- the slow receiver (its own process) ----------------------------------------------------


class SlowCounts:
    def __init__(self) -> None:
        self.posts = 0
        self.in_flight = 0
        self.peak_in_flight = 0
        self.connections = 0
        self.bad = 0

    def snapshot(self) -> dict[str, object]:
        return {
            "posts": self.posts,
            "in_flight": self.in_flight,
            "peak_in_flight": self.peak_in_flight,
            "connections": self.connections,
            "bad": self.bad,
        }


class SlowInboxProtocol(RequestProtocol):
    """Answers each request `delay` seconds after it arrived, in order, over keep-alive."""

    def __init__(self, counts: SlowCounts, delay: float) -> None:
        super().__init__()
        self._counts = counts
        self._delay = delay

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        self._counts.connections += 1

    def on_request(self, head: bytes) -> None:
        self._counts.in_flight += 1
        self._counts.peak_in_flight = max(self._counts.peak_in_flight, self._counts.in_flight)
        asyncio.get_running_loop().call_later(self._delay, self._answer)

    def _answer(self) -> None:
        self._counts.in_flight -= 1
        if self._transport is not None and not self._transport.is_closing():
            self._counts.posts += 1  # counted when answered: the sender has its 202
            self._transport.write(ACCEPTED)

    def on_refused(self) -> None:
        self._counts.bad += 1


async def receiver_main(delay: float, max_seconds: float) -> None:
    counts = SlowCounts()
    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        lambda: SlowInboxProtocol(counts, delay), ADDRESS, 0, backlog=1024
    )
    say({"port": int(server.sockets[0].getsockname()[1])})
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)

    async def commands() -> None:
        while line := await reader.readline():
            if line.strip() == b"stats":
                say(counts.snapshot())

    try:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(commands(), max_seconds)
    finally:
        server.close()


class SlowReceiver:
    def __init__(self, process: asyncio.subprocess.Process, port: int) -> None:
        self.process = process
        self.port = port

    async def stats(self) -> dict[str, Any]:
        assert self.process.stdin is not None
        assert self.process.stdout is not None
        self.process.stdin.write(b"stats\n")
        await self.process.stdin.drain()
        async with asyncio.timeout(10):
            message: dict[str, Any] = json.loads(await self.process.stdout.readline())
        return message


@contextlib.asynccontextmanager
async def slow_receiver(delay: float, max_seconds: float) -> AsyncIterator[SlowReceiver]:
    async with child_process(
        "bench.backlog",
        "--receive",
        f"--delay={delay}",
        f"--max-seconds={max_seconds}",
        what="receiver",
    ) as (process, port):
        yield SlowReceiver(process, port)


# -- the backlog ----------------------------------------------------------------------------


async def seed_backlog(state: AppState, inbox_url: str, count: int) -> int:
    """`count` activities by one group, each with one pending delivery to `inbox_url`."""
    group = await create_group(state.db, state.urls, "backlog", name="Backlog")
    domain = host_of(inbox_url)
    # Due a little in the past and in id order, as a day-long outage leaves them.
    due = utcnow() - timedelta(days=1)
    async with state.db.begin() as session:
        actor_id = await session.scalar(select(Actor.id).where(Actor.ap_id == group.ap_id))
        assert actor_id is not None
        for start in range(0, count, 2_000):
            numbers = range(start, min(count, start + 2_000))
            activities = [note(group.ap_id, n) for n in numbers]
            ids = await session.scalars(
                insert(OutboxActivity).returning(OutboxActivity.id),
                [
                    {
                        "ap_id": activity["id"],
                        "actor_id": actor_id,
                        "type": "Create",
                        "activity": activity,
                        "body": orjson.dumps(activity).decode(),
                        "public": True,
                        "fanned_out_at": due,
                    }
                    for activity in activities
                ],
            )
            await session.execute(
                insert(Delivery),
                [
                    {
                        "activity_id": activity_id,
                        "inbox_url": inbox_url,
                        "domain": domain,
                        "next_attempt_at": due,
                    }
                    for activity_id in ids
                ],
            )
    return count


def note(actor: str, serial: int) -> dict[str, Any]:
    return {
        "@context": "https://www.w3.org/ns/activitystreams",
        "id": f"{actor}/activities/{serial}-{uuid.uuid4().hex[:8]}",
        "type": "Create",
        "actor": actor,
        "to": ["https://www.w3.org/ns/activitystreams#Public"],
        "cc": [f"{actor}/followers"],
        "object": {
            "id": f"{actor}/notes/{serial}",
            "type": "Note",
            "attributedTo": actor,
            "content": "<p>" + "x" * 700 + "</p>",
        },
    }


async def count_states(state: AppState) -> dict[str, int]:
    async with state.db() as session:
        rows = await session.execute(select(Delivery.state, func.count()).group_by(Delivery.state))
        return {str(s): int(n) for s, n in rows}


async def done_count(state: AppState) -> int:
    async with state.db() as session:
        return int(
            await session.scalar(select(func.count()).where(Delivery.state == WorkState.DONE)) or 0
        )


# -- the measurement ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class BacklogRun:
    backlog: int
    seed_seconds: float
    window_seconds: float
    window_done: int
    per_second: float
    total_done: int
    total_seconds: float  # worker start → stop (ramp + window, or the whole drain)
    receiver_posts: int
    peak_in_flight: int
    connections: int
    bad: int
    states: dict[str, int]
    concurrency: int
    per_host: int
    sender_cpu_ms_per_delivery: float

    @property
    def exact(self) -> bool:
        failed = sum(n for s, n in self.states.items() if s not in ("pending", "done"))
        return self.receiver_posts == self.total_done and not failed and not self.bad


async def measure(state: AppState, receiver: SlowReceiver, args: argparse.Namespace) -> BacklogRun:
    started = time.perf_counter()
    inbox_url = f"http://{ADDRESS}:{receiver.port}/inbox"
    await seed_backlog(state, inbox_url, args.backlog)
    seed_seconds = time.perf_counter() - started
    print(f"   seeded {args.backlog:,} deliveries to {inbox_url} in {seed_seconds:.1f}s")
    if args.client_per_host:
        # What-if: the same worker over an HTTP client allowing more connections per host.
        client = FederationClient(
            user_agent="fedcop-bench", guard=state.client.guard, per_host=args.client_per_host
        )
        state = dataclasses.replace(state, client=client)
    delivery = build_workers(state).delivery  # what `fedcop worker` runs
    if args.concurrency or args.per_host:
        delivery = build_workers(
            state,
            concurrency=args.concurrency or delivery.concurrency,
            per_host=args.per_host or delivery.per_host,
        ).delivery
    stop = asyncio.Event()
    cpu = time.process_time()
    began = time.perf_counter()
    task = asyncio.create_task(delivery.run(stop, idle_seconds=0.2))
    try:
        await asyncio.sleep(RAMP_SECONDS)
        done_before = await done_count(state)
        window_start = time.perf_counter()
        if args.drain:
            while (done := await done_count(state)) < args.backlog:
                if task.done():
                    break
                await asyncio.sleep(1.0)
                print(f"   … {done:,} done", flush=True)
        else:
            await asyncio.sleep(args.seconds)
        done_after = await done_count(state)
        window = time.perf_counter() - window_start
    finally:
        stop.set()
        await task
        if args.client_per_host:
            await state.client.aclose()
    total_seconds = time.perf_counter() - began
    cpu = time.process_time() - cpu
    stats = await receiver.stats()
    total_done = await done_count(state)
    return BacklogRun(
        backlog=args.backlog,
        seed_seconds=seed_seconds,
        window_seconds=window,
        window_done=done_after - done_before,
        per_second=(done_after - done_before) / window,
        total_done=total_done,
        total_seconds=total_seconds,
        receiver_posts=int(stats["posts"]),
        peak_in_flight=int(stats["peak_in_flight"]),
        connections=int(stats["connections"]),
        bad=int(stats["bad"]),
        states=await count_states(state),
        concurrency=delivery.concurrency,
        per_host=delivery.per_host,
        sender_cpu_ms_per_delivery=1000 * cpu / max(1, total_done),
    )


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench backlog")
    parser.add_argument("--backlog", type=int, default=50_000)
    parser.add_argument("--seconds", type=float, default=15.0, help="measured window")
    parser.add_argument("--rtt-ms", type=float, default=150.0)
    parser.add_argument("--drain", action="store_true", help="run until the backlog is empty")
    parser.add_argument("--database", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument("--concurrency", type=int, default=0, help="default: build_workers'")
    parser.add_argument("--per-host", type=int, default=0, help="default: build_workers'")
    parser.add_argument(
        "--client-per-host",
        type=int,
        default=0,
        help="what-if: an HTTP client with this many connections per host (default: fedcop's)",
    )
    args, _ = parser.parse_known_args(argv)
    return args


async def run(argv: list[str]) -> Result:
    args = parse_args(argv)
    if args.database == "postgresql" and not await postgres_reachable():
        raise SystemExit("backlog: --database postgresql but PostgreSQL is not reachable")
    limit = 120 + (args.backlog / 50 if args.drain else args.seconds)
    async with (
        slow_receiver(args.rtt_ms / 1000, limit) as receiver,
        scratch_database(args.database) as url,
    ):
        engine = await prepared_engine(url)
        try:
            state = await build_state(bench_settings(url), engine)
            try:
                result = await measure(state, receiver, args)
            finally:
                await state.client.aclose()
        finally:
            await engine.dispose()
    return summarise(result, args)


def summarise(result: BacklogRun, args: argparse.Namespace) -> Result:
    rtt = args.rtt_ms / 1000
    window_allows = result.peak_in_flight / rtt
    drain_minutes = result.backlog / result.per_second / 60 if result.per_second else float("inf")
    print(
        f"   {result.per_second:,.1f} deliveries/s over {result.window_seconds:.1f}s "
        f"({result.window_done:,} done); peak in flight {result.peak_in_flight} "
        f"(allows {window_allows:,.0f}/s at {args.rtt_ms:.0f} ms); {result.connections} "
        f"connections; posts {result.receiver_posts:,} = done {result.total_done:,}: "
        f"{result.exact}; states {result.states}",
        flush=True,
    )
    ratio = result.per_second / TARGET_PER_SECOND
    return Result(
        scenario=(
            f"backlog catch-up, one host at {args.rtt_ms:.0f} ms RTT, {args.database}"
            + (f", client {args.client_per_host}/host (what-if)" if args.client_per_host else "")
        ),
        ratio=ratio,
        absolute=(
            f"{result.per_second:,.0f} deliveries/s (peak {result.peak_in_flight} in flight, "
            f"per_host setting {result.per_host}); "
            f"{args.backlog:,} drained in ~{drain_minutes:.0f} min; POSTs = rows done: "
            f"{'exact' if result.exact else 'NO'}"
        ),
        target=f"≥ {TARGET_PER_SECOND:.0f}/s (ratio ≥ 1.00)",
        met=result.exact and result.per_second >= TARGET_PER_SECOND,
        details={
            **asdict(result),
            "exact": result.exact,
            "rtt_ms": args.rtt_ms,
            "window_allows_per_second": window_allows,
            "projected_drain_minutes": drain_minutes,
            "baseline": "absolute target 100/s; peak in-flight ÷ RTT is the window's ceiling",
            "database": args.database,
        },
    )


def _receive_main(argv: list[str]) -> int:
    import uvloop

    parser = argparse.ArgumentParser(prog="python -m bench.backlog --receive")
    parser.add_argument("--receive", action="store_true")
    parser.add_argument("--delay", type=float, default=0.150)
    parser.add_argument("--max-seconds", type=float, default=300)
    args = parser.parse_args(argv)
    uvloop.run(receiver_main(args.delay, args.max_seconds))
    return 0


if __name__ == "__main__":
    if "--receive" in sys.argv[1:]:
        sys.exit(_receive_main(sys.argv[1:]))
    from bench.__main__ import main

    sys.exit(main(["backlog", *sys.argv[1:]]))
