"""Mixed soak: inbound signed POSTs, reads and a fan-out at once, against each alone.

A few minutes of a busy server compressed into ~60 s (`--seconds`): three streams at a fixed
offered load, first each alone for `--solo-seconds` (8 s), then all three together. Reported:
each stream's achieved throughput together ÷ alone (at a fixed offered load, 1.00 means the
server kept up with everything at once), the error count (must be 0) and the server's RSS
growth over the soak. Target: every stream ≥ 0.90 of its solo throughput, 0 errors.

- **Database**: one SQLite file (temp dir), shared by the web process and the worker, as
  `fedcop serve` + `fedcop worker` share it (WAL).
- **Web process**: fedcop under uvicorn in its own process, as `bench/inbox.py` runs it
  (`bench.inbox.server_process`).
- **Inbound**: pre-signed `Follow`s from `bench/verify.py`'s fake peer (key stored beforehand,
  as in `bench/inbox.py`), `--inbox-rate` per second (200) from 16 paced connections; a
  request is an error unless answered 202.
- **Reads**: actor JSON, WebFinger and the group's outbox page in turn, `--read-rate` per
  second (400) from 16 paced connections; an error unless 200.
- **Fan-out**: in this process, fedcop's own delivery worker (`build_workers(state)`, as
  `fedcop worker` runs it) on the same database; every `--publish-every` seconds (4) the group
  publishes a ~1 KB `Create{Note}` to its 1,000 followers on 50 loopback hosts, all personal
  inboxes (1,000 deliveries per publish, ~250/s), answered by `bench/followers.py`'s receiver
  process. Its throughput is 1,000 ÷ the mean time from a publish's commit to its last
  delivery recorded as done (how fast one fan-out reaches everyone). Errors: any non-202
  answer, a publish not delivered within 60 s, and any delivery row not done at the end.
- **Memory**: the web process's RSS (/proc) at the start and end of the soak, and this
  process's (the worker's).

Paced streams: each connection sends, then waits for its next slot (connections ÷ rate apart),
so a slow server shows as fewer requests per second rather than an ever-growing queue.

Run: `python -m bench soak [--seconds 60] [--solo-seconds 8] [--inbox-rate 200]
[--read-rate 400] [--publish-every 4] [--followers 1000]`
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import os
import tempfile
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
from sqlalchemy import func, select

from bench.followers import Receiver, create_note, receiver_process, seed_followers
from bench.inbox import Server, server_process, store_peer_key
from bench.reads import ACTOR_PATH, AS2, OUTBOX_PATH, WEBFINGER_PATH
from bench.report import Result, percentile
from bench.verify import DOMAIN, INBOX_PATH, SignedPost, make_peer, settings_for, sign_posts
from fedcop import db as database
from fedcop.app import build_state
from fedcop.federation.outbox import Audience, publish
from fedcop.models import Delivery, WorkState
from fedcop.models.actor import Actor
from fedcop.web.state import AppState
from fedcop.worker import build_workers

TARGET = 0.90
HOSTS = 50
CONNECTIONS = 16


# -- paced streams --------------------------------------------------------------------------


@dataclass(slots=True)
class Stream:
    """What one stream did in one phase."""

    sent: int = 0
    ok: int = 0
    errors: Counter[str] = field(default_factory=Counter)
    latencies: list[float] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def per_second(self) -> float:
        return self.ok / self.seconds if self.seconds else 0.0

    def summary(self) -> dict[str, Any]:
        ordered = sorted(self.latencies)
        return {
            "sent": self.sent,
            "ok": self.ok,
            "errors": dict(self.errors),
            "per_second": self.per_second,
            "p50_ms": 1000 * percentile(ordered, 0.5) if ordered else None,
            "p99_ms": 1000 * percentile(ordered, 0.99) if ordered else None,
            "seconds": self.seconds,
        }


async def paced(
    rate: float, connections: int, seconds: float, send: Callable[[], Awaitable[str]]
) -> Stream:
    """`connections` loops, each sending every `connections / rate` s, for `seconds`."""
    stream = Stream()
    interval = connections / rate
    start = time.perf_counter()
    deadline = start + seconds

    async def loop(offset: float) -> None:
        due = start + offset
        while due < deadline:
            now = time.perf_counter()
            if due > now:
                await asyncio.sleep(due - now)
            began = time.perf_counter()
            stream.sent += 1
            try:
                status = await send()
            except (aiohttp.ClientError, TimeoutError) as exc:
                status = f"error: {type(exc).__name__}"
            stream.latencies.append(time.perf_counter() - began)
            if status == "ok":
                stream.ok += 1
            else:
                stream.errors[status] += 1
            due = max(due + interval, time.perf_counter() - interval)  # no catch-up bursts

    await asyncio.gather(*(loop(n * interval / connections) for n in range(connections)))
    stream.seconds = time.perf_counter() - start
    return stream


class Inbound:
    def __init__(self, session: aiohttp.ClientSession, server: Server, posts: list[SignedPost]):
        self._session = session
        self._url = f"http://127.0.0.1:{server.port}{INBOX_PATH}"
        self._posts = iter(posts)

    async def send(self) -> str:
        post = next(self._posts, None)
        if post is None:
            return "ran out of pre-signed posts"
        async with self._session.post(self._url, data=post.body, headers=post.headers) as r:
            await r.read()
            return "ok" if r.status == 202 else str(r.status)


class Reads:
    def __init__(self, session: aiohttp.ClientSession, server: Server) -> None:
        self._session = session
        base = f"http://127.0.0.1:{server.port}"
        paths = (ACTOR_PATH, WEBFINGER_PATH, OUTBOX_PATH, ACTOR_PATH)
        self._urls: Iterator[str] = itertools.cycle([base + p for p in paths])

    async def send(self) -> str:
        headers = {"Accept": AS2, "Host": DOMAIN}
        async with self._session.get(next(self._urls), headers=headers) as r:
            await r.read()
            return "ok" if r.status == 200 else str(r.status)


class Fanout:
    """Publishes to the group's followers every `every` s and times each publish's delivery.

    Its throughput is followers ÷ the mean time from a publish's commit to its last delivery
    recorded as done (polled every 0.1 s): how fast one fan-out reaches everyone, which the
    other streams slow down if they compete for the CPU or the database.
    """

    def __init__(self, state: AppState, group_id: int, receiver: Receiver, every: float):
        self._state = state
        self._group_id = group_id
        self._receiver = receiver
        self._every = every
        self._serial = itertools.count(1)
        self.published = 0

    async def answered(self) -> Counter[str]:
        stats = await self._receiver.ask("stats")
        return Counter({s: sum(c.values()) for s, c in stats["answered"].items()})

    async def publish_once(self) -> tuple[int, int]:
        """Publish one note; its activity row id and how many deliveries it made."""
        async with self._state.db.begin() as session:
            group = await session.get(Actor, self._group_id)
            assert group is not None
            published = await publish(
                session,
                group,
                create_note(group.ap_id, next(self._serial)),
                Audience(followers=True),
                public=True,
            )
        self.published += 1
        return published.activity.id, published.deliveries

    async def timed_publish(self, stream: Stream) -> None:
        began = time.perf_counter()
        activity_id, deliveries = await self.publish_once()
        while await self._done(activity_id) < deliveries:
            if time.perf_counter() - began > 60:
                stream.errors["fan-out not delivered within 60 s"] += 1
                return
            await asyncio.sleep(0.1)
        stream.latencies.append(time.perf_counter() - began)
        stream.ok += deliveries

    async def _done(self, activity_id: int) -> int:
        async with self._state.db() as session:
            query = select(func.count()).where(
                Delivery.activity_id == activity_id, Delivery.state == WorkState.DONE
            )
            return int(await session.scalar(query) or 0)

    async def run(self, seconds: float) -> Stream:
        stream = Stream()
        before = await self.answered()
        start = time.perf_counter()
        timings: list[asyncio.Task[None]] = []
        due = start
        while due < start + seconds:
            await asyncio.sleep(max(0.0, due - time.perf_counter()))
            timings.append(asyncio.create_task(self.timed_publish(stream)))
            due += self._every
        await asyncio.gather(*timings)
        answered = await self.answered() - before
        stream.sent = sum(answered.values())
        stream.errors.update({s: n for s, n in answered.items() if s != "202"})
        # Followers reached per second of a publish's own delivery time (see the class).
        stream.seconds = sum(stream.latencies)
        return stream


# -- memory ---------------------------------------------------------------------------------


def rss_mb(pid: int) -> float | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


# -- the benchmark --------------------------------------------------------------------------


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench soak")
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--solo-seconds", type=float, default=8.0)
    parser.add_argument("--inbox-rate", type=float, default=200.0)
    parser.add_argument("--read-rate", type=float, default=400.0)
    parser.add_argument("--publish-every", type=float, default=4.0)
    parser.add_argument("--followers", type=int, default=1000)
    args, _ = parser.parse_known_args(argv)
    return args


@dataclass(frozen=True, slots=True)
class Soak:
    solo: dict[str, Stream]
    mixed: dict[str, Stream]
    undelivered: dict[str, int]  # delivery rows not done after the drain, by state
    rss_start_mb: float | None
    rss_end_mb: float | None
    own_rss_start_mb: float | None
    own_rss_end_mb: float | None
    published: int


async def undelivered(state: AppState) -> dict[str, int]:
    async with state.db() as session:
        rows = await session.execute(
            select(Delivery.state, func.count())
            .where(Delivery.state != WorkState.DONE)
            .group_by(Delivery.state)
        )
        return {str(s): int(n) for s, n in rows}


async def drain(state: AppState, seconds: float) -> dict[str, int]:
    deadline = time.perf_counter() + seconds
    # Polls the database: the worker says nothing when a batch lands.
    while (left := await undelivered(state)) and time.perf_counter() < deadline:  # noqa: ASYNC110
        await asyncio.sleep(0.5)
    return left


async def measure(state: AppState, url: str, args: argparse.Namespace) -> Soak:
    peer = make_peer()
    # Paced loops never send more than rate * seconds, plus one per connection.
    solo_posts = int(args.inbox_rate * args.solo_seconds) + 2 * CONNECTIONS
    mixed_posts = int(args.inbox_rate * args.seconds) + 2 * CONNECTIONS
    started = time.perf_counter()
    posts = sign_posts(peer, range(1, 2 + solo_posts + mixed_posts))
    print(f"   signed {len(posts):,} POSTs in {time.perf_counter() - started:.1f}s", flush=True)
    seed_args = argparse.Namespace(followers=args.followers, without_shared=HOSTS)
    limit = 60 + 3 * args.solo_seconds + args.seconds + 60
    async with receiver_process(HOSTS, limit) as receiver:
        addresses = [f"127.0.1.{n}" for n in range(1, HOSTS + 1)]
        followers = await seed_followers(state, addresses, receiver.port, seed_args)
        # After the followers: seed_followers makes every remote actor stored so far follow.
        await store_peer_key(url, peer)
        fanout = Fanout(state, followers.group_id, receiver, args.publish_every)
        await fanout.publish_once()  # something in the outbox page from the start
        stop = asyncio.Event()
        worker = asyncio.create_task(build_workers(state).delivery.run(stop, idle_seconds=0.2))
        try:
            async with server_process(url, max_seconds=limit) as server:
                connector = aiohttp.TCPConnector(limit=2 * CONNECTIONS + 4)
                async with aiohttp.ClientSession(connector=connector) as session:
                    inbound = Inbound(session, server, posts[1 : 1 + solo_posts])
                    reads = Reads(session, server)
                    warm = Inbound(session, server, posts[:1])
                    if await warm.send() != "ok":
                        raise RuntimeError("warm-up POST was not accepted")
                    await drain(state, 30)
                    solo = {
                        "inbound": await paced(
                            args.inbox_rate, CONNECTIONS, args.solo_seconds, inbound.send
                        ),
                        "reads": await paced(
                            args.read_rate, CONNECTIONS, args.solo_seconds, reads.send
                        ),
                        "fan-out": await fanout.run(args.solo_seconds),
                    }
                    for name, stream in solo.items():
                        _print(f"{name} alone", stream)
                    await drain(state, 30)
                    inbound = Inbound(session, server, posts[1 + solo_posts :])
                    rss_start = rss_mb(server.process.pid)
                    own_start = rss_mb(os.getpid())
                    together = await asyncio.gather(
                        paced(args.inbox_rate, CONNECTIONS, args.seconds, inbound.send),
                        paced(args.read_rate, CONNECTIONS, args.seconds, reads.send),
                        fanout.run(args.seconds),
                    )
                    rss_end = rss_mb(server.process.pid)
                    own_end = rss_mb(os.getpid())
                    mixed = dict(zip(("inbound", "reads", "fan-out"), together, strict=True))
                    for name, stream in mixed.items():
                        _print(f"{name} together", stream)
                    left = await drain(state, 30)
        finally:
            stop.set()
            await worker
    return Soak(solo, mixed, left, rss_start, rss_end, own_start, own_end, fanout.published)


def _print(label: str, stream: Stream) -> None:
    s = stream.summary()
    latency = f", p50/p99 {s['p50_ms']:.1f}/{s['p99_ms']:.1f} ms" if s["p50_ms"] else ""
    print(
        f"   {label}: {stream.per_second:,.0f}/s ({stream.ok:,} ok in {stream.seconds:.1f}s)"
        f"{latency}, errors {dict(stream.errors)}",
        flush=True,
    )


async def run(argv: list[str]) -> Result:
    args = parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="fedcop-bench-soak-") as tmp:
        url = f"sqlite+aiosqlite:///{Path(tmp) / 'soak.db'}"
        engine = database.create_engine(url)
        try:
            state = await build_state(settings_for(url), engine)
            try:
                soak = await measure(state, url, args)
            finally:
                await state.client.aclose()
        finally:
            await engine.dispose()
    return summarise(soak, args)


def summarise(soak: Soak, args: argparse.Namespace) -> Result:
    ratios = {name: soak.mixed[name].per_second / soak.solo[name].per_second for name in soak.solo}
    errors = sum(sum(s.errors.values()) for s in (*soak.solo.values(), *soak.mixed.values()))
    errors += sum(soak.undelivered.values())
    growth = (
        soak.rss_end_mb - soak.rss_start_mb
        if soak.rss_end_mb is not None and soak.rss_start_mb is not None
        else None
    )
    worst = min(ratios.values())
    mixed = soak.mixed
    return Result(
        scenario=f"mixed soak {args.seconds:.0f}s (inbound + reads + fan-out), SQLite",
        ratio=worst,
        absolute=(
            f"together vs alone: inbound {mixed['inbound'].per_second:,.0f}/s "
            f"({ratios['inbound']:.2f}), reads {mixed['reads'].per_second:,.0f}/s "
            f"({ratios['reads']:.2f}), fan-out {mixed['fan-out'].per_second:,.0f} deliveries/s "
            f"({ratios['fan-out']:.2f}); errors {errors}; web RSS "
            f"{soak.rss_start_mb or 0:.0f} → {soak.rss_end_mb or 0:.0f} MB"
        ),
        target=f"each ≥ {TARGET:.2f} of alone, 0 errors",
        met=errors == 0 and worst >= TARGET,
        details={
            "baseline": "each stream alone at the same offered load, same run, same server",
            "ratios": ratios,
            "errors": errors,
            "undelivered": soak.undelivered,
            "solo": {name: s.summary() for name, s in soak.solo.items()},
            "together": {name: s.summary() for name, s in soak.mixed.items()},
            "web_rss_mb": {"start": soak.rss_start_mb, "end": soak.rss_end_mb, "growth": growth},
            "worker_rss_mb": {"start": soak.own_rss_start_mb, "end": soak.own_rss_end_mb},
            "published": soak.published,
            "offered": {
                "inbox_per_second": args.inbox_rate,
                "reads_per_second": args.read_rate,
                "deliveries_per_second": args.followers / args.publish_every,
            },
            "args": vars(args),
        },
    )
