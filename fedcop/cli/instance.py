"""Running an instance: serve, worker, migrate, and creating people and groups."""

from __future__ import annotations

import asyncio
import signal
from typing import Any

import click
import uvicorn

from fedcop import db as database
from fedcop import logs
from fedcop.app import create_app, served_app_with_workers, served_web_app
from fedcop.cli.base import friendly_errors, load_settings, main, with_state
from fedcop.models import GroupVisibility
from fedcop.services import actors as actor_services
from fedcop.services.demo import seed_demo
from fedcop.web.state import AppState
from fedcop.worker import serve_workers


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8000, show_default=True, type=click.IntRange(1, 65535))
@click.option("--demo", is_flag=True, help="Create a demo person and community if missing.")
@click.option(
    "--workers/--no-workers", default=True, show_default=True,
    help="Also run the inbox processor and delivery worker in this process. With --no-workers "
    "the web process only accepts and queues; run `fedcop worker` beside it.",
)  # fmt: skip
@click.option(
    "--processes", default=1, show_default=True, type=click.IntRange(1, 64),
    help="Web processes sharing the port, to use more than one core (a Python process runs on "
    "one). With workers, every process runs them on PostgreSQL; on a SQLite file one at a time.",
)  # fmt: skip
@friendly_errors
def serve(host: str, port: int, demo: bool, workers: bool, processes: int) -> None:
    """Run the web server (and, on SQLite, migrate the database first)."""
    settings = load_settings()
    if demo:
        with_state(lambda state: _print_demo(state))
    common: dict[str, Any] = {
        "host": host,
        "port": port,
        "log_level": settings.log_level,
        "log_config": logs.log_config(settings.log_level),
        "access_log": settings.access_log,
        "proxy_headers": True,
    }
    if processes == 1:
        app = create_app(settings, run_workers=workers, freeze_after_startup=True)
        uvicorn.Server(uvicorn.Config(app, **common)).run()
        return
    if settings.is_sqlite and database.sqlite_url_file(settings.database_url) is None:
        raise click.UsageError("--processes needs a database file: in-memory SQLite is per process")
    # Migrate (SQLite) or check the schema, and create the instance actor, once, before the
    # processes start together. Each then builds its app from the same FEDCOP_* environment.
    with_state(_nothing)
    factory = served_app_with_workers if workers else served_web_app
    uvicorn.run(f"{factory.__module__}:{factory.__name__}", factory=True, workers=processes,
                **common)  # fmt: skip


async def _nothing(state: AppState) -> None:
    return None


async def _print_demo(state: AppState) -> None:
    for line in await seed_demo(state.db, state.urls):
        click.echo(line)


@main.command()
@click.option("--concurrency", default=64, show_default=True, type=click.IntRange(1, 1000))
@click.option("--per-host", default=32, show_default=True, type=click.IntRange(1, 100))
@friendly_errors
def worker(concurrency: int, per_host: int) -> None:
    """Run the inbox processor and delivery worker until stopped (SIGINT/SIGTERM)."""
    logs.configure(load_settings().log_level)

    async def run(state: AppState) -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stop.set)
        click.echo(f"fedcop worker: {concurrency} deliveries in flight, {per_host} per host")
        await serve_workers(state, stop, concurrency=concurrency, per_host=per_host)

    with_state(run)


@main.command()
@click.option("--to", "target", default="head", show_default=True, help="Upgrade to this revision.")
@click.option("--down-to", "down_target", default=None, help="Downgrade to this revision.")
@friendly_errors
def migrate(target: str, down_target: str | None) -> None:
    """Bring the database schema to the latest (or given) revision."""
    settings = load_settings()

    async def run() -> str | None:
        engine = database.engine_for(settings)
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
