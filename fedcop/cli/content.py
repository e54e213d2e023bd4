"""Stories and group membership."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import click

from fedcop.cli.base import friendly_errors, main, with_state
from fedcop.cli.instance import group
from fedcop.models import utcnow
from fedcop.services import actors as actor_services
from fedcop.services import groups as group_services
from fedcop.services import stories as story_services
from fedcop.services.media import store_image
from fedcop.services.stories import ConsentRecord, StoryDraft
from fedcop.web.state import AppState


@main.group()
def story() -> None:
    """Publish and manage stories."""


@story.command("publish")
@click.option("--author", required=True, help="Username of the local person telling it.")
@click.option("--group", "group_name", required=True, help="Username of the community group.")
@click.option("--title", required=True)
@click.option("--summary", required=True, help="The teaser most of the fediverse shows.")
@click.option("--file", "body_file", type=click.File("r", encoding="utf-8"), required=True,
              help="The story, in Markdown.")  # fmt: skip
@click.option("--tag", "tags", multiple=True, help="A topic (repeatable).")
@click.option("--content-warning", default=None)
@click.option("--visibility", type=click.Choice(["public", "unlisted", "members"]),
              default="public", show_default=True)  # fmt: skip
@click.option("--image", "images", multiple=True, type=click.Path(exists=True, dir_okay=False))
@click.option("--alt", "alts", multiple=True, help="Alt text, one per --image, in order.")
@click.option("--confirm-no-pii", is_flag=True,
              help="Confirm the story contains no patient-identifiable information.")  # fmt: skip
@click.option("--consent-by", default=None, help="Who gave consent (a person who uses services).")
@click.option("--consent-scope", type=click.Choice(["group", "network", "public"]), default=None)
@friendly_errors
def story_publish(
    author: str, group_name: str, title: str, summary: str, body_file: Any, tags: tuple[str, ...],
    content_warning: str | None, visibility: str, images: tuple[str, ...], alts: tuple[str, ...],
    confirm_no_pii: bool, consent_by: str | None, consent_scope: str | None,
) -> None:  # fmt: skip
    """Publish a story to a group; prints its URL."""
    if len(images) != len(alts):
        raise click.UsageError("give one --alt for every --image")
    if (consent_by is None) != (consent_scope is None):
        raise click.UsageError("--consent-by and --consent-scope go together")
    body = body_file.read()

    async def run(state: AppState) -> str:
        image_ids = await _store_images(state, author, images, alts)
        consent = (
            ConsentRecord(consent_by, consent_scope, utcnow())
            if consent_by and consent_scope
            else None
        )
        draft = StoryDraft(
            title=title, summary=summary, body=body, pii_confirmed=confirm_no_pii,
            visibility=visibility, tags=list(tags), content_warning=content_warning,
            consent=consent, image_ids=image_ids,
        )  # fmt: skip
        published = await story_services.publish(
            state.db, state.urls, author, group_name, draft, actors=state.remote_actors
        )
        return published.ap_id

    click.echo(with_state(run))


async def _store_images(
    state: AppState, author: str, paths: tuple[str, ...], alts: tuple[str, ...]
) -> list[int]:
    owner = await actor_services.get_local_actor(state.db, author)
    stored = []
    for path, alt in zip(paths, alts, strict=True):
        data = await asyncio.to_thread(Path(path).read_bytes)
        stored.append(await store_image(state.db, state.settings.media_dir, owner.id, data, alt))
    return [media.id for media in stored]


@story.command("delete")
@click.argument("url")
@click.option("--by", "by", required=True, help="The author, or a moderator of the group.")
@friendly_errors
def story_delete(url: str, by: str) -> None:
    """Delete a story everywhere it went (its URL then answers 410)."""
    with_state(lambda s: story_services.delete(s.db, s.urls, url, by))
    click.echo(f"deleted {url}")


@story.command("withdraw-consent")
@click.argument("url")
@click.option("--by", "by", required=True, help="The author, or a moderator of the group.")
@friendly_errors
def story_withdraw_consent(url: str, by: str) -> None:
    """Record that consent was withdrawn, and delete the story everywhere it went."""
    with_state(lambda s: story_services.withdraw_consent(s.db, s.urls, url, by))
    click.echo(f"consent withdrawn; deleted {url}")


@group.command("join")
@click.argument("group_name")
@click.argument("person")
@friendly_errors
def group_join(group_name: str, person: str) -> None:
    """A local person joins a group (or asks to, if it needs approval)."""
    made = with_state(lambda s: group_services.join(s.db, group_name, person))
    click.echo(f"{made.member} in {made.group}: {made.state}")


@group.command("approve")
@click.argument("group_name")
@click.argument("person")
@click.option("--by", "moderator", required=True)
@friendly_errors
def group_approve(group_name: str, person: str, moderator: str) -> None:
    """A moderator approves a local person's request to join."""
    made = with_state(lambda s: group_services.approve(s.db, group_name, person, moderator))
    click.echo(f"{made.member} in {made.group}: {made.state}")


@group.command("members")
@click.argument("group_name")
@friendly_errors
def group_members(group_name: str) -> None:
    """List a group's members with their roles."""
    for member in with_state(lambda s: group_services.members(s.db, group_name)):
        click.echo(f"{member.member}\t{member.role}\t{member.state}")
