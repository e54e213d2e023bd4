"""A demo community with a first story, so a newcomer's first start shows something real."""

from __future__ import annotations

import contextlib

from sqlalchemy import select

from fedcop.ap.urls import LocalUrls
from fedcop.db import SessionMaker
from fedcop.errors import ConflictError
from fedcop.models import Story
from fedcop.services import stories
from fedcop.services.actors import create_group, create_person

DEMO_PERSON = "convenor"
DEMO_GROUP = "frailty_practice"
DEMO_STORY = stories.StoryDraft(
    title="What is a community of practice?",
    summary=(
        "People who work in and use services, sharing stories, experience and practice "
        "across organisational walls."
    ),
    body=(
        "A community of practice is a centre of sharing. People who work in services and "
        "people who use them meet as equals, tell the stories of what happened and what "
        "helped, and learn together.\n\n"
        "## How this space works\n\n"
        "- Anyone on the fediverse can follow this community from the account they already have.\n"
        "- Members publish stories; the community shares them with every follower.\n"
        "- Nothing here identifies a patient, and stories about people who use services are "
        "told with their consent.\n"
    ),
    pii_confirmed=True,
    tags=["communitiesofpractice"],
)


async def seed_demo(db: SessionMaker, urls: LocalUrls) -> list[str]:
    """Create the demo person, group and story unless they exist; return lines to show."""
    with contextlib.suppress(ConflictError):
        await create_person(db, urls, DEMO_PERSON, name="Demo Convenor", admin=True)
    with contextlib.suppress(ConflictError):
        await create_group(
            db, urls, DEMO_GROUP, name="Frailty Community of Practice", owner=DEMO_PERSON,
            description=(
                "People who work in and use frailty services, sharing stories, experience and "
                "practice across organisational walls."
            ),
            topics=["frailty"],
        )  # fmt: skip
    async with db() as session:
        has_story = await session.scalar(select(Story.id).where(Story.local).limit(1))
    if has_story is None:
        await stories.publish(db, urls, DEMO_PERSON, DEMO_GROUP, DEMO_STORY)
    group_url = urls.actor("Group", DEMO_GROUP)
    return [
        f"fedcop demo instance at {urls.base_url}/",
        f"  community: {urls.handle(DEMO_GROUP)}  {group_url}",
        f"  person:    {urls.handle(DEMO_PERSON)}  {urls.actor('Person', DEMO_PERSON)}",
        "  see what a fediverse server sees:",
        f"  curl -H 'Accept: application/activity+json' {group_url}",
    ]
