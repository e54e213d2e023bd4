"""Federation: following, follow requests, deliveries, blocks, keys, lookups."""

from __future__ import annotations

from typing import Any

import click

from fedcop.cli.base import friendly_errors, main, with_state
from fedcop.models import BlockSeverity
from fedcop.services import deliveries as delivery_services
from fedcop.services import follows as follow_services
from fedcop.services import policy as policy_services
from fedcop.services.keys import rotate_key
from fedcop.web.state import AppState


@main.group()
def keys() -> None:
    """Manage local actors' signing keys."""


@keys.command("rotate")
@click.argument("username")
@click.option(
    "--force",
    is_flag=True,
    help="rotate even while the last rotation's Update is still queued (the servers it has "
    "not reached yet refuse this actor until they fetch it again)",
)
@friendly_errors
def keys_rotate(username: str, force: bool) -> None:
    """Replace an actor's key pair and queue an Update of the actor for its followers."""
    update_id = with_state(lambda s: rotate_key(s.db, s.urls, username, force=force))
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
@friendly_errors
def domain_block(name: str, severity: str, reason: str) -> None:
    """Block a server (and its subdomains)."""
    with_state(lambda s: policy_services.block_domain(s.db, name, severity, reason))
    click.echo(f"{severity} {name.lower()}")


@domain.command("unblock")
@click.argument("name")
@friendly_errors
def domain_unblock(name: str) -> None:
    """Lift a block."""
    with_state(lambda s: policy_services.unblock_domain(s.db, name))
    click.echo(f"unblocked {name.lower()}")


@domain.command("list")
@friendly_errors
def domain_list() -> None:
    """List blocked servers."""
    for block in with_state(lambda s: policy_services.list_blocks(s.db)):
        click.echo(f"{block.domain}\t{block.severity}\t{block.reason}")


@main.command()
@click.argument("handle_or_url")
@friendly_errors
def resolve(handle_or_url: str) -> None:
    """Look a remote actor up (WebFinger for @user@host) and store it."""

    async def run(state: AppState) -> Any:
        if handle_or_url.startswith(("http://", "https://")):
            return await state.remote_actors.get(handle_or_url, refresh=True)
        return await state.remote_actors.by_handle(handle_or_url)

    actor = with_state(run)
    click.echo(f"{actor.type} {actor.handle}\n  {actor.ap_id}\n  inbox {actor.inbox_url}")


@main.command("follow")
@click.argument("local")
@click.argument("target")
@friendly_errors
def follow_command(local: str, target: str) -> None:
    """LOCAL (a username here) follows TARGET (@user@host or an actor URL)."""
    made = with_state(lambda s: follow_services.follow(s.db, s.remote_actors, local, target))
    click.echo(f"follow {made.id}: {made.follower} -> {made.followed} ({made.state})")


@main.command("unfollow")
@click.argument("local")
@click.argument("target")
@friendly_errors
def unfollow_command(local: str, target: str) -> None:
    """LOCAL stops following TARGET (sends Undo{Follow})."""
    with_state(lambda s: follow_services.unfollow(s.db, s.remote_actors, local, target))
    click.echo(f"{local} no longer follows {target}")


@main.group()
def follows() -> None:
    """Follow requests waiting for approval."""


@follows.command("pending")
@friendly_errors
def follows_pending() -> None:
    """List follow requests to local people and groups awaiting approval."""
    for item in with_state(lambda s: follow_services.pending(s.db)):
        click.echo(f"{item.id}\t{item.follower}\t-> {item.followed}")


@follows.command("approve")
@click.argument("follow_id", type=int)
@friendly_errors
def follows_approve(follow_id: int) -> None:
    """Accept a follow request (sends Accept)."""
    made = with_state(lambda s: follow_services.decide(s.db, follow_id, approve=True))
    click.echo(f"approved {made.follower} -> {made.followed}")


@follows.command("reject")
@click.argument("follow_id", type=int)
@friendly_errors
def follows_reject(follow_id: int) -> None:
    """Refuse a follow request (sends Reject)."""
    made = with_state(lambda s: follow_services.decide(s.db, follow_id, approve=False))
    click.echo(f"rejected {made.follower} -> {made.followed}")


@main.group()
def deliveries() -> None:
    """The outbound delivery queue."""


@deliveries.command("status")
@friendly_errors
def deliveries_status() -> None:
    """Queue depth, failures by domain and unavailable instances."""
    report = with_state(lambda s: delivery_services.status(s.db))
    for line in report.lines():
        click.echo(line)


@deliveries.command("retry")
@click.argument("domain")
@friendly_errors
def deliveries_retry(domain: str) -> None:
    """Send DOMAIN's failed, skipped and waiting deliveries now; clear its unavailable mark."""
    count = with_state(lambda s: delivery_services.retry(s.db, domain))
    click.echo(f"requeued {count} deliveries to {domain.lower()}")
