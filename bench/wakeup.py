"""Wake-up latency: a publish committed → its delivery's POST received by the follower's inbox.

The delivery worker either finds the new row at its next poll (1 s; the baseline, as fedcop
was before doorbells) or is woken by its doorbell (fedcop/federation/doorbell.py), in the same
run, alternating. Three placements: on SQLite, the worker in the publishing process (`fedcop
serve`, the embedded default), woken in-process after the commit; on SQLite and on PostgreSQL,
the worker "apart", on an engine and state of its own as `fedcop worker` beside a web process
would be, woken by the file's change counter (read every 100 ms) or the queue trigger's
NOTIFY.

Each publish waits a random 50-300 ms after the previous delivery arrived, so publishes fall
anywhere in the poll's cycle. Ratio: the doorbell's median latency / the poll's median.
Target (ours, not an issue's): ≤ 0.10, i.e. the queue adds a small fraction of the poll.

Run: `python -m bench wakeup [--publishes 30] [--no-postgres]`
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import random
import statistics
import time
from collections.abc import AsyncIterator
from dataclasses import asdict, dataclass

from sqlalchemy.ext.asyncio import AsyncEngine

from bench.followers import (
    bench_settings,
    create_note,
    postgres_reachable,
    prepared_engine,
    scratch_database,
    seed_followers,
)
from bench.receiver import RequestProtocol
from bench.report import Result
from fedcop.app import build_state
from fedcop.federation.delivery import DeliveryWorker
from fedcop.federation.doorbell import listener_for
from fedcop.federation.outbox import Audience, publish
from fedcop.models import Actor
from fedcop.services.keys import SignerCache
from fedcop.web.state import AppState

TARGET_RATIO = 0.10
POLL_SECONDS = 1.0  # DeliveryWorker.run's default
ACCEPTED = b"HTTP/1.1 202 Accepted\r\nContent-Length: 0\r\n\r\n"


class Arrivals:
    """The follower's inbox on 127.0.0.1: notes when each POST arrives."""

    def __init__(self) -> None:
        self.next: asyncio.Future[float] | None = None

    def expect(self) -> asyncio.Future[float]:
        self.next = asyncio.get_running_loop().create_future()
        return self.next

    def arrived(self) -> None:
        if self.next is not None and not self.next.done():
            self.next.set_result(time.perf_counter())


class ArrivalProtocol(RequestProtocol):
    def __init__(self, arrivals: Arrivals) -> None:
        super().__init__()
        self._arrivals = arrivals

    def on_request(self, head: bytes) -> None:
        self._arrivals.arrived()
        self.answer(ACCEPTED)


@dataclass(slots=True)
class Latencies:
    database: str  # and where the worker ran: "sqlite", "sqlite, worker apart", …
    mode: str  # "poll" or "doorbell"
    seconds: list[float]

    @property
    def median_ms(self) -> float:
        return 1000 * statistics.median(self.seconds)

    @property
    def p95_ms(self) -> float:
        return 1000 * statistics.quantiles(self.seconds, n=20)[-1]


@contextlib.asynccontextmanager
async def delivery_worker(web: AppState, apart: bool, mode: str) -> AsyncIterator[DeliveryWorker]:
    """A running worker: in the publishing process, or `apart` on an engine and state of its
    own, as `fedcop worker` would be, hearing of work through `listener_for` (PostgreSQL's
    NOTIFY, a SQLite file's change counter)."""
    stop = asyncio.Event()
    tasks: list[asyncio.Task[None]] = []
    engine: AsyncEngine | None = None
    state = web
    try:
        if apart:
            engine = await prepared_engine(web.settings.database_url)
            state = await build_state(web.settings, engine)
            listener = listener_for(engine, state.doorbells) if mode == "doorbell" else None
            if listener is not None:
                tasks.append(asyncio.create_task(listener.run(stop)))
                async with asyncio.timeout(10):
                    await listener.connected.wait()
        worker = DeliveryWorker(
            state.db,
            state.client,
            SignerCache(state.db),
            doorbell=state.doorbells.deliveries if mode == "doorbell" else None,
        )
        tasks.append(asyncio.create_task(worker.run(stop, idle_seconds=POLL_SECONDS)))
        yield worker
    finally:
        stop.set()
        await asyncio.gather(*tasks)
        if engine is not None:
            await state.client.aclose()
            await state.inbox_writer.aclose()
            await engine.dispose()


async def measure_mode(
    web: AppState, apart: bool, mode: str, group_id: int, arrivals: Arrivals, count: int
) -> list[float]:
    rng = random.Random(count)
    seconds: list[float] = []
    async with delivery_worker(web, apart, mode):
        await asyncio.sleep(0.2)  # the worker's first (empty) claim is behind it
        for serial in range(count):
            await asyncio.sleep(rng.uniform(0.05, 0.30))
            arrival = arrivals.expect()
            async with web.db.begin() as session:
                group = await session.get(Actor, group_id)
                assert group is not None
                activity = create_note(group.ap_id, serial)
                await publish(session, group, activity, Audience(followers=True), public=True)
            committed = time.perf_counter()
            async with asyncio.timeout(POLL_SECONDS + 10):
                seconds.append(await arrival - committed)
    return seconds


async def measure_placement(
    database: str, apart: bool, port: int, arrivals: Arrivals, count: int
) -> list[Latencies]:
    async with scratch_database(database) as url:
        engine = await prepared_engine(url)
        try:
            web = await build_state(bench_settings(url), engine)
            try:
                options = argparse.Namespace(followers=1, without_shared=0)
                followers = await seed_followers(web, ["127.0.0.1"], port, options)
                found: dict[str, list[float]] = {"poll": [], "doorbell": []}
                for _ in range(2):  # alternating halves, so drift lands on both
                    for mode in found:
                        found[mode] += await measure_mode(
                            web, apart, mode, followers.group_id, arrivals, count // 2
                        )
                label = f"{database}, worker apart" if apart else database
                return [Latencies(label, mode, seconds) for mode, seconds in found.items()]
            finally:
                await web.client.aclose()
                await web.inbox_writer.aclose()
        finally:
            await engine.dispose()


async def run(argv: list[str]) -> Result:
    parser = argparse.ArgumentParser(prog="python -m bench wakeup")
    parser.add_argument("--publishes", type=int, default=30, help="per mode and database")
    parser.add_argument("--no-postgres", action="store_true")
    args, _ = parser.parse_known_args(argv)
    placements = [("sqlite", False), ("sqlite", True)]  # (database, worker apart)
    if not args.no_postgres and await postgres_reachable():
        placements.append(("postgresql", True))
    arrivals = Arrivals()
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: ArrivalProtocol(arrivals), "127.0.0.1", 0)
    port = int(server.sockets[0].getsockname()[1])
    results: list[Latencies] = []
    try:
        for database, apart in placements:
            for latencies in await measure_placement(
                database, apart, port, arrivals, args.publishes
            ):
                print(
                    f"   {latencies.database} {latencies.mode:>8}:"
                    f" median {latencies.median_ms:.1f} ms,"
                    f" p95 {latencies.p95_ms:.1f} ms over {len(latencies.seconds)} publishes",
                    flush=True,
                )
                results.append(latencies)
    finally:
        server.close()
    ratios = {
        label: by["doorbell"].median_ms / by["poll"].median_ms
        for label in dict.fromkeys(r.database for r in results)
        if (by := {r.mode: r for r in results if r.database == label})
    }
    worst = max(ratios, key=lambda database: ratios[database])
    figures = "; ".join(
        f"{r.database} {r.mode} median {r.median_ms:.1f} ms (p95 {r.p95_ms:.1f})" for r in results
    )
    return Result(
        scenario="publish → delivery received, worker woken vs polling (1 s)",
        ratio=ratios[worst],
        absolute=figures,
        target=f"≤ {TARGET_RATIO:.2f} of the poll's median",
        met=all(ratio <= TARGET_RATIO for ratio in ratios.values()),
        details={
            "ratios": ratios,
            "runs": [asdict(r) | {"median_ms": r.median_ms, "p95_ms": r.p95_ms} for r in results],
        },
    )
