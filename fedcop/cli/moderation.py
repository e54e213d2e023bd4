"""Moderation from the command line: remove, block, and read the audit log."""

from __future__ import annotations

import click

from fedcop.cli.base import friendly_errors, main, with_state
from fedcop.services import moderation


@main.group()
def moderate() -> None:
    """Moderate community groups (every action is kept in the audit log)."""


@moderate.command("remove")
@click.argument("url")
@click.option("--by", "moderator", required=True, help="A moderator of the post's group.")
@click.option("--reason", default="", help="Why, for the audit log.")
@friendly_errors
def moderate_remove(url: str, moderator: str, reason: str) -> None:
    """Remove a story or comment from its group."""
    with_state(lambda s: moderation.remove_post(s.db, s.urls, url, moderator, reason))
    click.echo(f"removed {url}")


@moderate.command("block")
@click.argument("group_name")
@click.argument("target")
@click.option("--by", "moderator", required=True, help="A moderator of the group.")
@click.option("--reason", default="", help="Why, for the audit log.")
@friendly_errors
def moderate_block(group_name: str, target: str, moderator: str, reason: str) -> None:
    """Block a person (@user@host or actor URL) from a group."""
    with_state(
        lambda s: moderation.block_from_group(
            s.db, s.remote_actors, group_name, target, moderator, reason
        )
    )
    click.echo(f"blocked {target} from {group_name}")


@main.command("audit")
@click.option("--limit", default=100, show_default=True, type=click.IntRange(1, 10_000))
@friendly_errors
def audit(limit: int) -> None:
    """The moderation audit log, newest first."""
    for line in with_state(lambda s: moderation.audit_log(s.db, limit)):
        who = line.moderator or "instance"
        where = f" in {line.scope}" if line.scope else ""
        click.echo(
            f"{line.when:%Y-%m-%d %H:%M} {who} {line.action} {line.target}{where} {line.reason}"
        )
