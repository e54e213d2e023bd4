"""Setting up a community with followers and stories, the way people do it."""

from __future__ import annotations

import httpx

from fedcop.models import Story
from fedcop.services import follows, stories
from fedcop.services.actors import create_group, create_person
from fedcop.services.stories import StoryDraft
from fedcop.web.state import AppState
from fedcop.worker import build_workers
from tests.support.peers import FakePeer, follow_activity, post_signed

GROUP = "https://home.test/groups/frailty"
AS2 = {"accept": "application/activity+json"}


async def community(state: AppState, visibility: str = "open") -> None:
    await create_person(state.db, state.urls, "convenor", name="Carol Convenor")
    await create_group(state.db, state.urls, "frailty", name="Frailty CoP", owner="convenor",
                       visibility=visibility)  # fmt: skip


async def follow_group(net: httpx.AsyncBaseTransport, state: AppState, peer: FakePeer) -> None:
    response = await post_signed(net, peer, f"{GROUP}/inbox", follow_activity(peer, GROUP))
    assert response.status_code == 202
    await build_workers(state).run_until_idle()


async def join_approved(net: httpx.AsyncBaseTransport, state: AppState, peer: FakePeer) -> None:
    """`peer` asks to join a group that approves its members, and the owner approves it."""
    await follow_group(net, state, peer)
    [request] = await follows.pending(state.db)
    await follows.decide(state.db, request.id, approve=True)
    await build_workers(state).run_until_idle()


def draft(**changes: object) -> StoryDraft:
    values: dict[str, object] = {
        "title": "What we learnt from falls huddles",
        "summary": "Ten minutes a day changed how our ward talks about falls.",
        "body": "## Why\n\nBecause *every* fall has a story.",
        "pii_confirmed": True,
        "tags": ["falls", "huddles"],
    }
    values.update(changes)
    return StoryDraft(**values)  # type: ignore[arg-type]


async def publish(state: AppState, **changes: object) -> Story:
    story = await stories.publish(state.db, state.urls, "convenor", "frailty", draft(**changes))
    await build_workers(state).run_until_idle()
    return story
