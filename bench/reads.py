"""Reads over real HTTP: actor JSON, WebFinger and an outbox page, beside a bare Starlette endpoint.

Targets (from the issue): the cached actor document (AS2) served at **≥ 50%** of the rate of a
bare Starlette JSON endpoint under the same uvicorn settings in the same run, with **p99 ≤ 5 ms**;
an outbox page read from the database at **≥ 10%** of it. WebFinger is measured and reported
beside them (no target of its own).

- **Servers**: each in its own OS process (`python -m bench.reads --serve`), under
  `uvicorn.Server` with the settings `bench/inbox.py` uses (uvloop + httptools, no access log,
  `proxy_headers=True`), bound to 127.0.0.1 on a free port; they exit when their stdin closes or
  after a bounded time. fedcop is `create_app` on a SQLite file (or PostgreSQL with
  `--database postgresql`) holding one open group and `--outbox` public activities by it.
- **Baseline**: a bare Starlette app with one GET route returning `JSONResponse` of a constant
  dict: fedcop's own actor document for the group, fetched once beforehand, so both serialise
  the same ~2 KB. Measured before and after fedcop (mean), by the same load generator.
- **Load**: this process, aiohttp, `--connections` (default 32) keep-alive connections, GETs
  with `Accept: application/activity+json` (WebFinger: `?resource=acct:…`), a warm-up of 200
  first, then `--requests` per scenario (the outbox page a quarter of that). The load generator
  shares the machine's 2 cores with the server, so the server's own CPU per request (/proc)
  is recorded too, and `cpu_time_ratio` (bare CPU/request ÷ fedcop's) is blind to that.
- **p99 at 32 connections** is dominated by queueing when the server's core is saturated, so
  latency is also measured at **1 connection** (one request at a time: the request's own cost)
  for the actor document and the bare endpoint; the target is judged on that, both figures are
  reported.
- **Checks:** every answer 200 and every actor body identical to the one fetched beforehand.

Run: `python -m bench reads [--requests 4000] [--connections 32] [--outbox 60]
[--database postgresql]`
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import tempfile
from collections.abc import AsyncIterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import aiohttp
import orjson
from sqlalchemy import insert, select

from bench.backlog import note
from bench.children import child_process, serve_app
from bench.followers import postgres_reachable, scratch_database
from bench.inbox import LoadRun, Server, run_load
from bench.report import Result
from bench.verify import DOMAIN, settings_for
from fedcop import db as database
from fedcop.app import build_state, create_app
from fedcop.models import OutboxActivity
from fedcop.models.actor import Actor
from fedcop.services.actors import create_group

ACTOR_TARGET = 0.50
ACTOR_P99_TARGET_MS = 5.0
OUTBOX_TARGET = 0.10
GROUP = "bench"
AS2 = "application/activity+json"
ACTOR_PATH = f"/groups/{GROUP}"
WEBFINGER_PATH = f"/.well-known/webfinger?resource=acct:{GROUP}@{DOMAIN}"
OUTBOX_PATH = f"/groups/{GROUP}/outbox?page=true"
BARE_PATH = "/json"


# -- the server processes ---------------------------------------------------------------------


def bare_json_app(document: dict[str, Any]) -> Any:
    """A bare Starlette app: one GET route answering a constant dict as JSON."""
    from starlette.applications import Starlette
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    async def endpoint(request: Any) -> JSONResponse:
        return JSONResponse(document, media_type=AS2)

    return Starlette(routes=[Route(BARE_PATH, endpoint)])


@contextlib.asynccontextmanager
async def server_process(
    max_seconds: float, *, database_url: str = "", bare_document: str = ""
) -> AsyncIterator[Server]:
    """fedcop on `database_url`, or (with `bare_document`, a JSON file) the bare endpoint."""
    async with child_process(
        "bench.reads",
        "--serve",
        f"--database-url={database_url}",
        f"--bare-document={bare_document}",
        f"--max-seconds={max_seconds}",
        what="server",
    ) as (process, port):
        yield Server(process, port)


# -- the data -------------------------------------------------------------------------------


async def seed(database_url: str, outbox: int) -> None:
    """One open group with `outbox` public activities."""
    engine = database.create_engine(database_url)
    try:
        if not database_url.startswith("sqlite"):
            await database.upgrade(engine)
        state = await build_state(settings_for(database_url), engine)
        try:
            group = await create_group(state.db, state.urls, GROUP, name="Bench readers")
            async with state.db.begin() as session:
                actor_id = await session.scalar(select(Actor.id).where(Actor.ap_id == group.ap_id))
                activities = [note(group.ap_id, n) for n in range(outbox)]
                await session.execute(
                    insert(OutboxActivity),
                    [
                        {
                            "ap_id": a["id"],
                            "actor_id": actor_id,
                            "type": "Create",
                            "activity": a,
                            "body": orjson.dumps(a).decode(),
                            "public": True,
                        }
                        for a in activities
                    ],
                )
        finally:
            await state.client.aclose()
    finally:
        await engine.dispose()


# -- load -----------------------------------------------------------------------------------


async def get_all(
    session: aiohttp.ClientSession,
    server: Server,
    path: str,
    requests: int,
    connections: int,
    expect_body: bytes | None = None,
) -> LoadRun:
    """`requests` GETs of `path` over `connections` keep-alive connections."""
    url = f"http://127.0.0.1:{server.port}{path}"
    headers = {"Accept": AS2, "Host": DOMAIN}

    async def one(_: int) -> str:
        async with session.get(url, headers=headers) as response:
            body = await response.read()
            status = str(response.status)
            if expect_body is not None and status == "200" and body != expect_body:
                return "200 but a different body"
            return status

    return await run_load(server, requests, connections, one)


def print_run(label: str, run: LoadRun) -> None:
    server = f"{run.server_cpu_us:.0f}" if run.server_cpu_us is not None else "?"
    print(
        f"   {label}: {run.per_second:,.0f} req/s ({run.requests} in {run.seconds:.2f}s), "
        f"p50 {run.p50_ms:.2f} ms, p99 {run.p99_ms:.2f} ms, server CPU {server} µs/req, "
        f"{run.statuses}",
        flush=True,
    )


def session_for(connections: int) -> aiohttp.ClientSession:
    connector = aiohttp.TCPConnector(limit=connections, limit_per_host=connections)
    return aiohttp.ClientSession(connector=connector)


# -- the measurement ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ReadRuns:
    bare_before: LoadRun
    bare_after: LoadRun
    bare_serial: LoadRun  # one connection: the request's own latency
    actor: LoadRun
    actor_serial: LoadRun
    webfinger: LoadRun
    outbox: LoadRun
    actor_bytes: int
    outbox_items: int


async def bare_runs(document_file: str, args: argparse.Namespace, label: str) -> list[LoadRun]:
    async with (
        server_process(90, bare_document=document_file) as server,
        session_for(args.connections) as session,
    ):
        await get_all(session, server, BARE_PATH, 200, args.connections)  # warm up
        load = await get_all(session, server, BARE_PATH, args.requests, args.connections)
        print_run(f"bare Starlette JSON {label}", load)
        serial = await get_all(session, server, BARE_PATH, args.requests // 4, 1)
        print_run(f"bare Starlette JSON {label}, 1 connection", serial)
    return [load, serial]


async def measure(database_url: str, tmp: Path, args: argparse.Namespace) -> ReadRuns:
    await seed(database_url, args.outbox)
    async with (
        server_process(150, database_url=database_url) as server,
        session_for(args.connections) as session,
    ):
        url = f"http://127.0.0.1:{server.port}{ACTOR_PATH}"
        async with session.get(url, headers={"Accept": AS2, "Host": DOMAIN}) as response:
            if response.status != 200:
                raise RuntimeError(f"actor document: {response.status} {await response.text()}")
            actor_body = await response.read()
        document_file = tmp / "actor.json"
        document_file.write_bytes(actor_body)
        bare_before, _ = await bare_runs(str(document_file), args, "before")
        for path in (ACTOR_PATH, WEBFINGER_PATH, OUTBOX_PATH):  # warm up each route
            await get_all(session, server, path, 200, args.connections)
        actor = await get_all(
            session, server, ACTOR_PATH, args.requests, args.connections, actor_body
        )
        print_run("fedcop actor JSON", actor)
        actor_serial = await get_all(session, server, ACTOR_PATH, args.requests // 4, 1)
        print_run("fedcop actor JSON, 1 connection", actor_serial)
        webfinger = await get_all(session, server, WEBFINGER_PATH, args.requests, args.connections)
        print_run("fedcop WebFinger", webfinger)
        outbox = await get_all(session, server, OUTBOX_PATH, args.requests // 4, args.connections)
        print_run("fedcop outbox page", outbox)
        async with session.get(
            f"http://127.0.0.1:{server.port}{OUTBOX_PATH}",
            headers={"Accept": AS2, "Host": DOMAIN},
        ) as response:
            items = len((await response.json(content_type=None)).get("orderedItems", []))
    bare_after, bare_serial = await bare_runs(str(document_file), args, "after")
    return ReadRuns(
        bare_before=bare_before,
        bare_after=bare_after,
        bare_serial=bare_serial,
        actor=actor,
        actor_serial=actor_serial,
        webfinger=webfinger,
        outbox=outbox,
        actor_bytes=len(actor_body),
        outbox_items=items,
    )


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench reads")
    parser.add_argument("--requests", type=int, default=4000)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--outbox", type=int, default=60, help="public activities in the outbox")
    parser.add_argument("--database", choices=("sqlite", "postgresql"), default="sqlite")
    args, _ = parser.parse_known_args(argv)
    return args


async def run(argv: list[str]) -> Result:
    args = parse_args(argv)
    if args.database == "postgresql" and not await postgres_reachable():
        raise SystemExit("reads: --database postgresql but PostgreSQL is not reachable")
    with tempfile.TemporaryDirectory(prefix="fedcop-bench-reads-") as tmp:
        async with scratch_database(args.database) as url:
            runs = await measure(url, Path(tmp), args)
    return summarise(runs, args)


def _ok(run: LoadRun) -> bool:
    return run.statuses == {"200": run.requests}


def summarise(runs: ReadRuns, args: argparse.Namespace) -> Result:
    bare = (runs.bare_before.per_second + runs.bare_after.per_second) / 2
    bare_cpu = [r.server_cpu_us for r in (runs.bare_before, runs.bare_after)]
    bare_cpu_us = None if None in bare_cpu else sum(c for c in bare_cpu if c) / 2
    actor = runs.actor.per_second / bare
    webfinger = runs.webfinger.per_second / bare
    outbox = runs.outbox.per_second / bare
    clean = all(
        _ok(r) for r in (runs.actor, runs.actor_serial, runs.webfinger, runs.outbox)
    ) and all(_ok(r) for r in (runs.bare_before, runs.bare_after, runs.bare_serial))
    p99 = runs.actor_serial.p99_ms
    met = clean and actor >= ACTOR_TARGET and p99 <= ACTOR_P99_TARGET_MS and outbox >= OUTBOX_TARGET

    def cpu(run: LoadRun) -> str:
        return f"{run.server_cpu_us:.0f} µs" if run.server_cpu_us is not None else "?"

    return Result(
        scenario=f"reads over HTTP (actor JSON, WebFinger, outbox page), {args.database}",
        ratio=actor,
        absolute=(
            f"actor JSON {runs.actor.per_second:,.0f}/s vs bare Starlette {bare:,.0f}/s, p99 "
            f"{p99:.1f} ms at 1 conn ({runs.actor.p99_ms:.1f} ms at {args.connections}, bare "
            f"{runs.bare_before.p99_ms:.1f}); WebFinger {runs.webfinger.per_second:,.0f}/s "
            f"({webfinger:.2f}); outbox page of {runs.outbox_items} "
            f"{runs.outbox.per_second:,.0f}/s ({outbox:.2f}); server CPU/req actor "
            f"{cpu(runs.actor)}, bare {bare_cpu_us or 0:.0f} µs"
        ),
        target=(
            f"actor ≥ {ACTOR_TARGET:.2f}, p99 ≤ {ACTOR_P99_TARGET_MS:.0f} ms; "
            f"outbox ≥ {OUTBOX_TARGET:.2f}"
        ),
        met=met,
        details={
            "baseline": "bare Starlette JSON endpoint, same uvicorn settings, same load, same run",
            "bare_per_second": bare,
            "actor_ratio": actor,
            "webfinger_ratio": webfinger,
            "outbox_ratio": outbox,
            "cpu_time_ratio_actor": (
                bare_cpu_us / runs.actor.server_cpu_us
                if bare_cpu_us and runs.actor.server_cpu_us
                else None
            ),
            "clean": clean,
            "actor_bytes": runs.actor_bytes,
            **{name: asdict(value) for name, value in _runs(runs).items()},
            "connections": args.connections,
            "database": args.database,
            "load_generator": "same machine (2 cores shared with the server)",
        },
    )


def _runs(runs: ReadRuns) -> dict[str, LoadRun]:
    return {
        "bare_before": runs.bare_before,
        "bare_after": runs.bare_after,
        "bare_serial": runs.bare_serial,
        "actor": runs.actor,
        "actor_serial": runs.actor_serial,
        "webfinger": runs.webfinger,
        "outbox": runs.outbox,
    }


def _serve_main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.reads --serve")
    parser.add_argument("--serve", action="store_true")
    parser.add_argument("--database-url", default="")
    parser.add_argument("--bare-document", default="")
    parser.add_argument("--max-seconds", type=float, default=150)
    args = parser.parse_args(argv)
    if args.bare_document:
        app = bare_json_app(orjson.loads(Path(args.bare_document).read_bytes()))
    else:
        app = create_app(settings_for(args.database_url), freeze_after_startup=True)
    serve_app(app, args.max_seconds)
    return 0


if __name__ == "__main__":
    if "--serve" in sys.argv[1:]:
        sys.exit(_serve_main(sys.argv[1:]))
    from bench.__main__ import main

    sys.exit(main(["reads", *sys.argv[1:]]))
