"""Group commands: avatar and header images; invitations; moderators."""

from __future__ import annotations

from pathlib import Path

import click

from fedcop.cli.base import friendly_errors, with_state
from fedcop.cli.instance import group
from fedcop.services import group_images, group_roles, invitations
from fedcop.services.group_images import GroupImage

_KINDS = {"avatar": GroupImage.ICON, "header": GroupImage.IMAGE}


@group.command("image")
@click.argument("group_name")
@click.argument("kind", type=click.Choice(sorted(_KINDS)))
@click.argument(
    "path", required=False, type=click.Path(exists=True, dir_okay=False, path_type=Path)
)
@click.option("--by", "moderator", required=True, help="An owner or moderator of the group.")
@click.option("--alt", default=None, help="What the picture shows, for people who cannot see it.")
@click.option("--remove", is_flag=True, help="Remove the image instead of setting one.")
@friendly_errors
def group_image(
    group_name: str, kind: str, path: Path | None, moderator: str, alt: str | None, remove: bool
) -> None:
    """Set (from PATH) or --remove a group's avatar or header image; prints its URL."""
    which = _KINDS[kind]
    if remove == (path is not None):
        raise click.UsageError("give either PATH or --remove")
    if remove:
        with_state(lambda s: group_images.remove_image(s.db, s.urls, group_name, moderator, which))
        click.echo(f"removed the {which.description} of {group_name}")
        return
    assert path is not None
    data = path.read_bytes()
    made = with_state(
        lambda s: group_images.set_image(
            s.db, s.urls, s.settings.media_dir, group_name, moderator, which, data, alt
        )
    )
    click.echo(made.icon_url if which is GroupImage.ICON else made.image_url)


@group.command("invite")
@click.argument("group_name")
@click.argument("person")
@click.option("--by", "moderator", required=True, help="An owner or moderator of the group.")
@friendly_errors
def group_invite(group_name: str, person: str, moderator: str) -> None:
    """Invite a local person to a group; they accept or decline."""
    made = with_state(lambda s: invitations.invite(s.db, group_name, person, moderator))
    click.echo(f"invited {made.invitee} to {made.group}")


@group.command("invitations")
@click.argument("person")
@friendly_errors
def group_invitations(person: str) -> None:
    """A local person's open invitations: group, who invited, when."""
    for made in with_state(lambda s: invitations.invitations_for(s.db, person)):
        when = made.created_at.strftime("%Y-%m-%d %H:%M")
        click.echo(f"{made.group_username}\t{made.group}\t{made.invited_by or '-'}\t{when}")


@group.command("accept")
@click.argument("group_name")
@click.argument("person")
@friendly_errors
def group_accept(group_name: str, person: str) -> None:
    """A local person accepts an invitation: a member at once."""
    made = with_state(lambda s: invitations.accept(s.db, group_name, person))
    click.echo(f"{made.member} in {made.group}: {made.state}")


@group.command("decline")
@click.argument("group_name")
@click.argument("person")
@friendly_errors
def group_decline(group_name: str, person: str) -> None:
    """A local person declines an invitation."""
    with_state(lambda s: invitations.decline(s.db, group_name, person))
    click.echo(f"declined the invitation to {group_name}")


@group.command("role")
@click.argument("group_name")
@click.argument("person")
@click.argument("role", type=click.Choice(["moderator", "member"]))
@click.option("--by", "owner", required=True, help="An owner of the group.")
@friendly_errors
def group_role(group_name: str, person: str, role: str, owner: str) -> None:
    """An owner makes a member a moderator, or a moderator a member again."""
    made = with_state(lambda s: group_roles.set_role(s.db, group_name, person, role, owner))
    click.echo(f"{made.member} in {made.group}: {made.role}")
