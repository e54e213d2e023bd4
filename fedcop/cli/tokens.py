"""Bearer tokens for the JSON API (`/api/v1/`)."""

from __future__ import annotations

from datetime import datetime

import click

from fedcop.cli.base import friendly_errors, main, with_state
from fedcop.services import tokens as token_services


@main.group()
def token() -> None:
    """Make, list and revoke API tokens."""


@token.command("create")
@click.argument("username")
@click.option("--name", default="", help="A label, e.g. the app or script that will use it.")
@friendly_errors
def token_create(username: str, name: str) -> None:
    """Make a token for a local person; it is printed once and cannot be shown again."""
    made = with_state(lambda s: token_services.create_token(s.db, username, name))
    click.echo(made.token)
    # On stderr, so `TOKEN=$(fedcop token create ...)` captures the token alone.
    click.echo(f"token {made.id} for {username}: keep it secret, it is not shown again", err=True)


@token.command("list")
@click.argument("username")
@friendly_errors
def token_list(username: str) -> None:
    """List a person's tokens: id, name, created, last used, revoked."""
    for info in with_state(lambda s: token_services.list_tokens(s.db, username)):
        fields = (info.created_at, info.last_used_at, info.revoked_at)
        click.echo("\t".join([str(info.id), info.name or "-", *map(_when, fields)]))


@token.command("revoke")
@click.argument("token_id", type=int)
@friendly_errors
def token_revoke(token_id: int) -> None:
    """Revoke a token at once."""
    info = with_state(lambda s: token_services.revoke_token(s.db, token_id))
    click.echo(f"revoked token {info.id} ({info.name or 'unnamed'})")


def _when(moment: datetime | None) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ") if moment else "-"
