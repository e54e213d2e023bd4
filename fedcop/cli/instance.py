"""Running an instance: serve, worker, migrate, and creating people and groups."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Callable
from typing import Any

import click
import uvicorn

from fedcop import db as database
from fedcop.app import create_app
from fedcop.cli.base import friendly_errors, load_settings, main, with_state
from fedcop.models import GroupVisibility
from fedcop.services import actors as actor_services
from fedcop.services.demo import seed_demo
from fedcop.web.state import AppState
from fedcop.worker import Workers, build_workers

log = logging.getLogger(__name__)
# Between restarts of the workers after the database went away: doubling, capped.
FIRST_RESTART_DELAY = 0.5
MAX_RESTART_DELAY = 10.0


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8000, show_default=True, type=click.IntRange(1, 65535))
@click.option("--demo", is_flag=True, help="Create a demo person and community if missing.")
@click.option(
    "--workers/--no-workers", default=True, show_default=True,
    help="Also run the inbox processor and delivery worker in this process. With --no-workers "
    "the web process only accepts and queues; run `fedcop worker` beside it.",
)  # fmt: skip
@friendly_errors
def serve(host: str, port: int, demo: bool, workers: bool) -> None:
    """Run the web server (and, on SQLite, migrate the database first)."""
    settings = load_settings()
    if demo:
        with_state(lambda state: _print_demo(state))
    config = uvicorn.Config(
        create_app(settings, run_workers=workers),
        host=host,
        port=port,
        log_level=settings.log_level,
        proxy_headers=True,
    )
    uvicorn.Server(config).run()


async def _print_demo(state: AppState) -> None:
    for line in await seed_demo(state.db, state.urls):
        click.echo(line)


@main.command()
@click.option("--concurrency", default=64, show_default=True, type=click.IntRange(1, 1000))
@click.option("--per-host", default=32, show_default=True, type=click.IntRange(1, 100))
@friendly_errors
def worker(concurrency: int, per_host: int) -> None:
    """Run the inbox processor and delivery worker until stopped (SIGINT/SIGTERM)."""

    async def run(state: AppState) -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stop.set)
        click.echo(f"fedcop worker: {concurrency} deliveries in flight, {per_host} per host")
        await run_workers(
            lambda: build_workers(state, concurrency=concurrency, per_host=per_host), stop
        )

    with_state(run)


async def run_workers(build: Callable[[], Workers], stop: asyncio.Event) -> None:
    """Run the inbox processor and delivery worker until `stop`, riding out database outages.

    If the database goes away (restart, failover, network), the queues' loops fail on their
    next query. Rather than exit and wait for someone to restart the process, both loops are
    stopped, and fresh ones start once the database answers again (retried with a doubling
    delay). Rows leased when it happened are claimed again when their lease runs out: work is
    done at least once, as after a crash. Any other error is a bug and ends the process.
    """
    delay = FIRST_RESTART_DELAY
    while not stop.is_set():
        round_stop = asyncio.Event()
        workers = build()
        loops = [asyncio.create_task(workers.inbox.run(round_stop)),
                 asyncio.create_task(workers.delivery.run(round_stop))]  # fmt: skip
        stopped = asyncio.create_task(stop.wait())
        await asyncio.wait([*loops, stopped], return_when=asyncio.FIRST_COMPLETED)
        round_stop.set()  # one loop failed (or we are stopping): end the other one too
        results = await asyncio.gather(*loops, return_exceptions=True)
        stopped.cancel()
        errors = [r for r in results if isinstance(r, BaseException)]
        if not errors:
            return
        if not all(database.is_database_outage(e) for e in errors):
            raise next(e for e in errors if not database.is_database_outage(e))
        log.warning("database unavailable (%s); workers restart in %.1fs", errors[0], delay)
        click.echo(f"fedcop worker: database unavailable ({errors[0]}); retrying in {delay:.1f}s")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=delay)
        delay = min(delay * 2, MAX_RESTART_DELAY)


@main.command()
@click.option("--to", "target", default="head", show_default=True, help="Upgrade to this revision.")
@click.option("--down-to", "down_target", default=None, help="Downgrade to this revision.")
@friendly_errors
def migrate(target: str, down_target: str | None) -> None:
    """Bring the database schema to the latest (or given) revision."""
    settings = load_settings()

    async def run() -> str | None:
        engine = database.create_engine(settings.database_url)
        try:
            if down_target is not None:
                await database.downgrade(engine, down_target)
            else:
                await database.upgrade(engine, target)
            return await database.current_revision(engine)
        finally:
            await engine.dispose()

    click.echo(f"database at revision {asyncio.run(run()) or 'base (empty)'}")


@main.group()
def user() -> None:
    """Manage local people."""


@user.command("create")
@click.argument("username")
@click.option("--name", default="", help="Display name.")
@click.option("--admin", is_flag=True, help="Make this person an instance administrator.")
@friendly_errors
def user_create(username: str, name: str, admin: bool) -> None:
    """Create a person."""
    made = with_state(
        lambda s: actor_services.create_person(s.db, s.urls, username, name=name, admin=admin)
    )
    click.echo(f"created person {made.handle}\n  {made.ap_id}")


@main.group()
def group() -> None:
    """Manage community groups."""


@group.command("create")
@click.argument("username")
@click.option("--name", required=True, help="The community's name.")
@click.option("--owner", default=None, help="Username of the local person who owns it.")
@click.option(
    "--visibility",
    type=click.Choice([v.value for v in GroupVisibility]),
    default=GroupVisibility.OPEN.value,
    show_default=True,
)
@click.option("--description", default="", help="A description, in Markdown.")
@click.option("--rules", default="", help="The group's rules, in Markdown.")
@click.option("--topic", "topics", multiple=True, help="A topic (repeatable).")
@click.option(
    "--posting", type=click.Choice(["members", "followers"]), default="members", show_default=True,
    help="Who may post stories.",
)  # fmt: skip
@friendly_errors
def group_create(
    username: str, name: str, owner: str | None, visibility: str, description: str,
    rules: str, topics: tuple[str, ...], posting: str,
) -> None:  # fmt: skip
    """Create a community group."""

    async def create(state: AppState) -> Any:
        return await actor_services.create_group(
            state.db,
            state.urls,
            username,
            name=name,
            owner=owner,
            visibility=visibility,
            description=description,
            rules=rules,
            topics=topics,
            posting_policy=posting,
        )

    made = with_state(create)
    click.echo(f"created {visibility} group {made.handle}\n  {made.ap_id}")
