"""A demo community, so a newcomer's first start shows something real."""

from __future__ import annotations

import contextlib

from fedcop.ap.urls import LocalUrls
from fedcop.db import SessionMaker
from fedcop.errors import ConflictError
from fedcop.services.actors import create_group, create_person

DEMO_PERSON = "convenor"
DEMO_GROUP = "frailty_practice"


async def seed_demo(db: SessionMaker, urls: LocalUrls) -> list[str]:
    """Create the demo person and group unless they exist; return lines to show the user."""
    with contextlib.suppress(ConflictError):
        await create_person(db, urls, DEMO_PERSON, name="Demo Convenor", admin=True)
    with contextlib.suppress(ConflictError):
        await create_group(
            db,
            urls,
            DEMO_GROUP,
            name="Frailty Community of Practice",
            owner=DEMO_PERSON,
            description=(
                "People who work in and use frailty services, sharing stories, experience and "
                "practice across organisational walls."
            ),
        )
    group_url = urls.actor("Group", DEMO_GROUP)
    return [
        f"fedcop demo instance at {urls.base_url}/",
        f"  community: {urls.handle(DEMO_GROUP)}  {group_url}",
        f"  person:    {urls.handle(DEMO_PERSON)}  {urls.actor('Person', DEMO_PERSON)}",
        "  see what a fediverse server sees:",
        f"  curl -H 'Accept: application/activity+json' {group_url}",
    ]
