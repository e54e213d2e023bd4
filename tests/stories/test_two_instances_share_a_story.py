"""Two fedcop instances: a person on B joins a group on A and tells a story there; a third
person, also on B, comments; the story and its thread are on both servers."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from sqlalchemy import select

from fedcop.models import Comment, Story
from fedcop.services import comments, stories
from fedcop.services import follows as follow_services
from fedcop.services.actors import create_group, create_person
from fedcop.web.state import AppState
from tests.support.databases import DatabaseFactory
from tests.support.network import InProcessNetwork, fedcop_instance, settle
from tests.support.stories import draft


@pytest.fixture
async def away(
    net: InProcessNetwork, database_factory: DatabaseFactory, backend: str
) -> AsyncIterator[AppState]:
    async with fedcop_instance(net, database_factory, backend, "away.test") as state:
        yield state


async def test_story_from_b_in_a_group_on_a_with_a_comment_from_b(
    home: AppState, away: AppState
) -> None:
    await create_person(home.db, home.urls, "convenor")
    await create_group(home.db, home.urls, "frailty", name="Frailty CoP", owner="convenor")
    await create_person(away.db, away.urls, "bea")
    await create_person(away.db, away.urls, "dev")
    for person in ("bea", "dev"):
        await follow_services.follow(away.db, away.remote_actors, person, "@frailty@home.test")
    await settle(home, away)

    story = await stories.publish(away.db, away.urls, "bea", "@frailty@home.test", draft(),
                                  actors=away.remote_actors)  # fmt: skip
    await settle(home, away)

    async with home.db() as session:  # A holds the story, in its group
        on_a = (await session.scalars(select(Story).where(Story.ap_id == story.ap_id))).one()
    assert on_a.title == "What we learnt from falls huddles"
    assert on_a.group_id is not None

    note = await comments.comment(away.db, away.urls, "dev", story.ap_id, "Brilliant, *thank you*.")
    await settle(home, away)

    async with home.db() as session:
        thread = (await session.scalars(select(Comment).where(Comment.ap_id == note.ap_id))).one()
        refreshed = await session.get(Story, on_a.id)
    assert thread.story_id == on_a.id
    assert "<em>thank you</em>" in thread.content
    assert refreshed is not None
    assert refreshed.comment_count == 1


async def test_an_edit_and_a_delete_on_b_reach_the_group_on_a(
    home: AppState, away: AppState
) -> None:
    """The group on A is a recipient of the member's Update and Delete, as it was of the
    Create: its followers are A's to reach, so A must hear of every change."""
    await create_person(home.db, home.urls, "convenor")
    await create_group(home.db, home.urls, "frailty", name="Frailty CoP", owner="convenor")
    await create_person(away.db, away.urls, "bea")
    await follow_services.follow(away.db, away.remote_actors, "bea", "@frailty@home.test")
    await settle(home, away)
    story = await stories.publish(away.db, away.urls, "bea", "@frailty@home.test", draft(),
                                  actors=away.remote_actors)  # fmt: skip
    await settle(home, away)

    await stories.edit(away.db, away.urls, story.ap_id, "bea", draft(title="Huddles, revisited"))
    await settle(home, away)
    async with home.db() as session:
        on_a = (await session.scalars(select(Story).where(Story.ap_id == story.ap_id))).one()
    assert on_a.title == "Huddles, revisited"

    await stories.delete(away.db, away.urls, story.ap_id, "bea")
    await settle(home, away)
    async with home.db() as session:
        left = (await session.scalars(select(Story).where(Story.ap_id == story.ap_id))).all()
    assert all(s.deleted_at is not None for s in left)
