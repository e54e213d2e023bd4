"""An idle `fedcop worker` over 100,000 pending retries: its CPU and memory.

Target (from the issue): with 100,000 deliveries waiting for their next attempt (none due),
the worker uses < 5% of a core and its RSS stays < 200 MB.

A worker that scans or loads its whole queue to find nothing due shows here: each idle poll
must be an index range scan that finds no row. The worker is the real command (`fedcop worker`,
run as `python -m fedcop worker` so that it is this checkout's fedcop) in its own process,
configured through FEDCOP_* variables exactly as deployed, against a scratch SQLite file and
(if reachable) a scratch PostgreSQL database. After it reports ready and a short settling time,
its CPU time (utime + stime, all threads) and RSS are sampled from /proc for `--seconds`; peak
RSS is the kernel's high-water mark (VmHWM), so it covers start-up too.

These are absolute limits, not speeds, so there is no same-run baseline to divide by: the
reported ratio is the worst of CPU% / 5% and RSS / 200 MB over the databases measured
(≤ 1.00 meets both). For scale, the RSS of a process that only imports fedcop's CLI is
recorded alongside.

Run: `python -m bench idle [--pending 100000] [--seconds 20] [--database sqlite,postgresql]`
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from dataclasses import asdict, dataclass
from datetime import timedelta
from pathlib import Path

from sqlalchemy import insert, select

from bench.children import child, fedcop_worker, process_cpu_seconds, worker_env
from bench.followers import (
    bench_settings,
    postgres_reachable,
    prepared_engine,
    scratch_database,
)
from bench.report import Result
from fedcop.app import build_state
from fedcop.models import Actor, Delivery, OutboxActivity, utcnow
from fedcop.services.actors import create_group

ROOT = Path(__file__).resolve().parent.parent
CPU_LIMIT_PERCENT = 5.0
RSS_LIMIT_MB = 200.0


@dataclass(frozen=True, slots=True)
class IdleRun:
    database: str
    pending: int
    seed_seconds: float
    startup_seconds: float  # process start → "fedcop worker: ..." on stdout
    seconds: float  # the sampled window
    cpu_seconds: float
    cpu_percent: float  # of one core, over the window
    rss_mb: float  # at the end of the window
    max_rss_mb: float  # highest sampled during the window
    peak_rss_mb: float  # VmHWM: the high-water mark since start
    threads: int
    still_pending: int  # rows still pending after the window: nothing was sent or skipped

    @property
    def met(self) -> bool:
        return self.cpu_percent < CPU_LIMIT_PERCENT and self.peak_rss_mb < RSS_LIMIT_MB


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench idle")
    parser.add_argument("--pending", type=int, default=100_000)
    parser.add_argument("--seconds", type=float, default=20.0, help="sampled idle window")
    parser.add_argument("--settle", type=float, default=2.0, help="after ready, before sampling")
    parser.add_argument(
        "--database",
        default="sqlite,postgresql",
        help="comma-separated; postgresql is skipped if not reachable",
    )
    args, _ = parser.parse_known_args(argv)
    args.database = [name.strip() for name in str(args.database).split(",") if name.strip()]
    return args


async def seed(database_url: str, pending: int) -> None:
    """A group, one outbox activity and `pending` deliveries due in an hour."""
    engine = await prepared_engine(database_url)
    try:
        state = await build_state(bench_settings(database_url), engine)
        try:
            created = await create_group(state.db, state.urls, "bench", name="Bench")
            async with state.db.begin() as session:
                group_id = await session.scalar(
                    select(Actor.id).where(Actor.ap_id == created.ap_id)
                )
                assert group_id is not None
                activity = OutboxActivity(
                    ap_id=f"{created.ap_id}/activities/idle",
                    actor_id=group_id,
                    type="Create",
                    activity={"type": "Create"},
                    body='{"type":"Create"}',
                    public=True,
                    fanned_out_at=utcnow(),
                )
                session.add(activity)
                await session.flush()
                later = utcnow() + timedelta(hours=1)
                for start in range(0, pending, 10_000):
                    rows = [
                        {
                            "activity_id": activity.id,
                            "inbox_url": f"https://h{k % 1000}.example/users/u{k}/inbox",
                            "domain": f"h{k % 1000}.example",
                            "attempts": 1 + k % 5,
                            "next_attempt_at": later + timedelta(seconds=k % 3600),
                            "last_status": 503,
                            "last_error": "answered 503",
                        }
                        for k in range(start, min(start + 10_000, pending))
                    ]
                    await session.execute(insert(Delivery), rows)
        finally:
            await state.client.aclose()
    finally:
        await engine.dispose()


async def count_pending(database_url: str) -> int:
    from sqlalchemy import func

    engine = await prepared_engine(database_url)
    try:
        async with engine.connect() as connection:
            result = await connection.execute(
                select(func.count()).select_from(Delivery).where(Delivery.state == "pending")
            )
            return int(result.scalar_one())
    finally:
        await engine.dispose()


def cpu_seconds(pid: int) -> float:
    """The worker's CPU time: this benchmark has no figure without it."""
    seconds = process_cpu_seconds(pid)
    if seconds is None:
        raise RuntimeError(f"no CPU time for process {pid} in /proc")
    return seconds


def status_fields(pid: int) -> dict[str, str]:
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        name, _, value = line.partition(":")
        fields[name] = value.strip()
    return fields


def kilobytes_to_mb(value: str) -> float:
    return int(value.split()[0]) / 1024


async def measure_worker(database: str, database_url: str, args: argparse.Namespace) -> IdleRun:
    started = time.perf_counter()
    await seed(database_url, args.pending)
    seed_seconds = time.perf_counter() - started
    launched = time.perf_counter()
    async with fedcop_worker(worker_env(database_url)) as process:
        startup = time.perf_counter() - launched
        await asyncio.sleep(args.settle)
        pid = process.pid
        cpu_before, wall_before = cpu_seconds(pid), time.perf_counter()
        max_rss = 0.0
        deadline = wall_before + args.seconds
        while time.perf_counter() < deadline:
            await asyncio.sleep(0.5)
            if process.returncode is not None:
                raise RuntimeError(f"fedcop worker exited with {process.returncode}")
            max_rss = max(max_rss, kilobytes_to_mb(status_fields(pid)["VmRSS"]))
        cpu_after, wall_after = cpu_seconds(pid), time.perf_counter()
        status = status_fields(pid)
    window = wall_after - wall_before
    cpu = cpu_after - cpu_before
    return IdleRun(
        database=database,
        pending=args.pending,
        seed_seconds=seed_seconds,
        startup_seconds=startup,
        seconds=window,
        cpu_seconds=cpu,
        cpu_percent=100 * cpu / window,
        rss_mb=kilobytes_to_mb(status["VmRSS"]),
        max_rss_mb=max_rss,
        peak_rss_mb=kilobytes_to_mb(status["VmHWM"]),
        threads=int(status["Threads"]),
        still_pending=await count_pending(database_url),
    )


async def imports_rss_mb() -> float:
    """RSS of a process that has imported fedcop's CLI and nothing else: the floor."""
    code = "import fedcop.cli, sys; print('ready', flush=True); sys.stdin.read()"
    async with child(sys.executable, "-c", code) as process:
        assert process.stdout is not None
        async with asyncio.timeout(30):
            await process.stdout.readline()
        return kilobytes_to_mb(status_fields(process.pid)["VmRSS"])


async def run(argv: list[str]) -> Result:
    args = parse_args(argv)
    runs: list[IdleRun] = []
    for database in args.database:
        if database == "postgresql" and not await postgres_reachable():
            continue
        async with scratch_database(database) as url:
            runs.append(await measure_worker(database, url, args))
        _print_run(runs[-1])
    if not runs:
        raise RuntimeError("no database to measure on")
    floor = await imports_rss_mb()
    print(f"   for scale: a process that only imports fedcop.cli has {floor:.0f} MB RSS")
    worst = max(max(r.cpu_percent / CPU_LIMIT_PERCENT, r.peak_rss_mb / RSS_LIMIT_MB) for r in runs)
    clean = all(r.still_pending == r.pending for r in runs)
    return Result(
        scenario=f"idle worker, {args.pending:,} pending retries",
        ratio=worst,
        absolute="; ".join(
            f"{r.database} {r.cpu_percent:.1f}% CPU, {r.peak_rss_mb:.0f} MB peak RSS" for r in runs
        ),
        target=f"≤ 1.00 (CPU < {CPU_LIMIT_PERCENT:.0f}%, RSS < {RSS_LIMIT_MB:.0f} MB)",
        met=clean and all(r.met for r in runs),
        details={
            "ratio_is": "worst of cpu_percent/5 and peak_rss_mb/200 over the databases",
            "imports_only_rss_mb": floor,
            "runs": [asdict(r) for r in runs],
        },
    )


def _print_run(run: IdleRun) -> None:
    print(
        f"   {run.database}: {run.cpu_percent:.2f}% of a core over {run.seconds:.0f}s "
        f"({run.cpu_seconds:.2f}s CPU); RSS {run.rss_mb:.0f} MB, peak {run.peak_rss_mb:.0f} MB; "
        f"{run.threads} threads; start-up {run.startup_seconds:.1f}s; "
        f"{run.still_pending:,}/{run.pending:,} still pending (seeded in {run.seed_seconds:.1f}s)",
        flush=True,
    )
