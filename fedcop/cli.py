"""The `fedcop` command line."""

from __future__ import annotations

import asyncio
import functools
import signal
import sys
from collections.abc import Awaitable, Callable
from typing import Any, ParamSpec, TypeVar

import click
import uvicorn
from sqlalchemy.exc import DBAPIError, OperationalError

from fedcop import db as database
from fedcop.app import build_state, create_app
from fedcop.errors import FedcopError, SettingsError
from fedcop.federation.remote_actors import ResolveError
from fedcop.models import BlockSeverity, GroupVisibility
from fedcop.services import actors as actor_services
from fedcop.services import deliveries as delivery_services
from fedcop.services import follows as follow_services
from fedcop.services import policy as policy_services
from fedcop.services.demo import seed_demo
from fedcop.services.keys import rotate_key
from fedcop.settings import Settings
from fedcop.web.state import AppState
from fedcop.worker import build_workers

P = ParamSpec("P")
T = TypeVar("T")


def _load_settings() -> Settings:
    try:
        return Settings.from_env()
    except SettingsError as exc:
        click.echo(f"fedcop: {exc}", err=True)
        sys.exit(2)


def _friendly_errors(func: Callable[P, T]) -> Callable[P, T]:
    """Turn expected failures into one line on stderr and a non-zero exit, never a traceback."""

    @functools.wraps(func)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> T:
        try:
            return func(*args, **kwargs)
        except FedcopError as exc:
            raise click.ClickException(str(exc)) from exc
        except (OperationalError, DBAPIError, OSError) as exc:
            reason = str(getattr(exc, "orig", None) or exc).splitlines()[0]
            raise click.ClickException(f"database unreachable: {reason}") from exc

    return wrapper


def _with_state(action: Callable[[AppState], Awaitable[T]]) -> T:
    settings = _load_settings()

    async def run() -> T:
        engine = database.create_engine(settings.database_url)
        try:
            state = await build_state(settings, engine)
            try:
                return await action(state)
            finally:
                await state.client.aclose()
        finally:
            await engine.dispose()

    return asyncio.run(run())


@click.group()
@click.version_option(package_name="fedcop")
def main() -> None:
    """fedcop: a federated server for communities of practice."""


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8000, show_default=True, type=click.IntRange(1, 65535))
@click.option("--demo", is_flag=True, help="Create a demo person and community if missing.")
@_friendly_errors
def serve(host: str, port: int, demo: bool) -> None:
    """Run the web server (and, on SQLite, migrate the database first)."""
    settings = _load_settings()
    if demo:
        _with_state(lambda state: _print_demo(state))
    config = uvicorn.Config(
        create_app(settings, run_workers=True),
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
@click.option("--per-host", default=8, show_default=True, type=click.IntRange(1, 100))
@_friendly_errors
def worker(concurrency: int, per_host: int) -> None:
    """Run the inbox processor and delivery worker until stopped (SIGINT/SIGTERM)."""

    async def run(state: AppState) -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stop.set)
        click.echo(f"fedcop worker: {concurrency} deliveries in flight, {per_host} per host")
        await build_workers(state, concurrency=concurrency, per_host=per_host).run(stop)

    _with_state(run)


@main.command()
@click.option("--to", "target", default="head", show_default=True, help="Upgrade to this revision.")
@click.option("--down-to", "down_target", default=None, help="Downgrade to this revision.")
@_friendly_errors
def migrate(target: str, down_target: str | None) -> None:
    """Bring the database schema to the latest (or given) revision."""
    settings = _load_settings()

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
@_friendly_errors
def user_create(username: str, name: str, admin: bool) -> None:
    """Create a person."""
    made = _with_state(
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
@_friendly_errors
def group_create(
    username: str, name: str, owner: str | None, visibility: str, description: str
) -> None:
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
        )

    made = _with_state(create)
    click.echo(f"created {visibility} group {made.handle}\n  {made.ap_id}")


@main.group()
def keys() -> None:
    """Manage local actors' signing keys."""


@keys.command("rotate")
@click.argument("username")
@_friendly_errors
def keys_rotate(username: str) -> None:
    """Replace an actor's key pair and queue an Update of the actor for its followers."""
    update_id = _with_state(lambda s: rotate_key(s.db, s.urls, username))
    click.echo(f"rotated the key of {username}; queued {update_id}")


@main.group()
def domain() -> None:
    """Decide which servers this instance federates with."""


@domain.command("block")
@click.argument("name")
@click.option(
    "--severity",
    type=click.Choice([s.value for s in BlockSeverity]),
    default=BlockSeverity.SUSPEND.value,
    show_default=True,
)
@click.option("--reason", default="", help="Why, for the audit trail.")
@_friendly_errors
def domain_block(name: str, severity: str, reason: str) -> None:
    """Block a server (and its subdomains)."""
    _with_state(lambda s: policy_services.block_domain(s.db, name, severity, reason))
    click.echo(f"{severity} {name.lower()}")


@domain.command("unblock")
@click.argument("name")
@_friendly_errors
def domain_unblock(name: str) -> None:
    """Lift a block."""
    _with_state(lambda s: policy_services.unblock_domain(s.db, name))
    click.echo(f"unblocked {name.lower()}")


@domain.command("list")
@_friendly_errors
def domain_list() -> None:
    """List blocked servers."""
    for block in _with_state(lambda s: policy_services.list_blocks(s.db)):
        click.echo(f"{block.domain}\t{block.severity}\t{block.reason}")


@main.command()
@click.argument("handle_or_url")
@_friendly_errors
def resolve(handle_or_url: str) -> None:
    """Look a remote actor up (WebFinger for @user@host) and store it."""

    async def run(state: AppState) -> Any:
        if handle_or_url.startswith(("http://", "https://")):
            return await state.remote_actors.get(handle_or_url, refresh=True)
        return await state.remote_actors.by_handle(handle_or_url)

    try:
        actor = _with_state(run)
    except ResolveError as exc:
        raise click.ClickException(exc.reason) from exc
    click.echo(f"{actor.type} {actor.handle}\n  {actor.ap_id}\n  inbox {actor.inbox_url}")


@main.command("follow")
@click.argument("local")
@click.argument("target")
@_friendly_errors
def follow_command(local: str, target: str) -> None:
    """LOCAL (a username here) follows TARGET (@user@host or an actor URL)."""
    made = _with_state(lambda s: follow_services.follow(s.db, s.remote_actors, local, target))
    click.echo(f"follow {made.id}: {made.follower} -> {made.followed} ({made.state})")


@main.command("unfollow")
@click.argument("local")
@click.argument("target")
@_friendly_errors
def unfollow_command(local: str, target: str) -> None:
    """LOCAL stops following TARGET (sends Undo{Follow})."""
    _with_state(lambda s: follow_services.unfollow(s.db, s.remote_actors, local, target))
    click.echo(f"{local} no longer follows {target}")


@main.group()
def follows() -> None:
    """Follow requests waiting for approval."""


@follows.command("pending")
@_friendly_errors
def follows_pending() -> None:
    """List follow requests to local people and groups awaiting approval."""
    for item in _with_state(lambda s: follow_services.pending(s.db)):
        click.echo(f"{item.id}\t{item.follower}\t-> {item.followed}")


@follows.command("approve")
@click.argument("follow_id", type=int)
@_friendly_errors
def follows_approve(follow_id: int) -> None:
    """Accept a follow request (sends Accept)."""
    made = _with_state(lambda s: follow_services.decide(s.db, follow_id, approve=True))
    click.echo(f"approved {made.follower} -> {made.followed}")


@follows.command("reject")
@click.argument("follow_id", type=int)
@_friendly_errors
def follows_reject(follow_id: int) -> None:
    """Refuse a follow request (sends Reject)."""
    made = _with_state(lambda s: follow_services.decide(s.db, follow_id, approve=False))
    click.echo(f"rejected {made.follower} -> {made.followed}")


@main.group()
def deliveries() -> None:
    """The outbound delivery queue."""


@deliveries.command("status")
@_friendly_errors
def deliveries_status() -> None:
    """Queue depth, failures by domain and unavailable instances."""
    report = _with_state(lambda s: delivery_services.status(s.db))
    for line in report.lines():
        click.echo(line)


@deliveries.command("retry")
@click.argument("domain")
@_friendly_errors
def deliveries_retry(domain: str) -> None:
    """Requeue failed and skipped deliveries to DOMAIN now, and clear its unavailable mark."""
    count = _with_state(lambda s: delivery_services.retry(s.db, domain))
    click.echo(f"requeued {count} deliveries to {domain.lower()}")
