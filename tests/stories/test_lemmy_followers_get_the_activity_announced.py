"""FEP-1b12: Lemmy-family followers get the member's activity announced; Mastodon the post's id.

One group, three followers' servers: one reporting "lemmy" in NodeInfo, one "mastodon", one
with no NodeInfo at all. Each server must get exactly the form it reads.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from fedcop.federation import software
from fedcop.models import InstanceSoftware, OutboxActivity
from fedcop.services import comments, group_roles, groups, moderation
from fedcop.services.actors import create_person
from fedcop.web.state import AppState
from fedcop.worker import build_workers
from tests.support.network import InProcessNetwork
from tests.support.peers import FakePeer, create_activity, post_signed
from tests.support.stories import GROUP, community, follow_group, publish

PUBLIC = "https://www.w3.org/ns/activitystreams#Public"


def _announced(peer: FakePeer) -> list[Any]:
    return [a["object"] for a in peer.inbox if a["type"] == "Announce"]


def _page(member: FakePeer, n: int = 1) -> dict[str, Any]:
    return {
        "id": f"https://{member.host}/post/{n}", "type": "Page",
        "attributedTo": member.actor_id, "name": "Our discharge checklist",
        "content": "<p>It works.</p>", "to": [GROUP, PUBLIC], "cc": [], "audience": GROUP,
    }  # fmt: skip


@pytest.fixture
def followers(net: InProcessNetwork) -> dict[str, FakePeer]:
    servers = {
        "lemmy": FakePeer("lemmy.test", software="lemmy"),
        "mastodon": FakePeer("mastodon.test", software="mastodon"),
        "silent": FakePeer("silent.test"),  # answers 404 for NodeInfo
    }
    for fake in servers.values():
        net.add_handler(fake.host, fake.handler)
    return servers


async def _community_with_a_lemmy_member(
    net: InProcessNetwork, home: AppState, followers: dict[str, FakePeer]
) -> FakePeer:
    """The group, a member on a Lemmy server, and the Lemmy and Mastodon followers."""
    await community(home)
    member = net.add_peer(FakePeer("member.test", software="lemmy"))
    await _join(net, home, member, followers["lemmy"], followers["mastodon"])
    return member


async def _listed_in_outboxes(home: AppState, activity_id: str) -> list[str]:
    """The public outbox rows that carry `activity_id` (wrapped or not)."""
    async with home.db() as session:
        bodies = await session.scalars(select(OutboxActivity.body).where(OutboxActivity.public))
    return [body for body in bodies.all() if activity_id in body]


async def _join(net: InProcessNetwork, home: AppState, *peers: FakePeer) -> None:
    for fake in peers:
        await follow_group(net, home, fake)


async def test_a_lemmy_members_post_is_announced_as_its_create_to_lemmy_and_as_an_id_to_others(
    home: AppState, net: InProcessNetwork, followers: dict[str, FakePeer]
) -> None:
    await community(home)
    member = net.add_peer(FakePeer("member.test", software="lemmy"))
    await _join(net, home, member, *followers.values())

    create = create_activity(member, _page(member))
    assert (await post_signed(net, member, f"{GROUP}/inbox", create)).status_code == 202
    await build_workers(home).run_until_idle()

    page_id = create["object"]["id"]
    assert _announced(followers["lemmy"]) == [create]  # the activity, exactly as sent
    assert _announced(member) == [create]
    assert _announced(followers["mastodon"]) == [page_id]
    assert _announced(followers["silent"]) == [page_id]  # unknown software: Mastodon's form
    lemmy_announce = next(a for a in followers["lemmy"].inbox if a["type"] == "Announce")
    assert lemmy_announce["actor"] == GROUP
    assert lemmy_announce["to"] == [PUBLIC]
    assert lemmy_announce["cc"] == [f"{GROUP}/followers"]

    async with home.db() as session:
        learnt = {r.domain: r.software for r in await session.scalars(select(InstanceSoftware))}
    assert learnt == {
        "lemmy.test": "lemmy", "member.test": "lemmy", "mastodon.test": "mastodon",
        "silent.test": None,
    }  # fmt: skip


async def test_a_local_story_reaches_lemmy_as_the_authors_create(
    home: AppState, net: InProcessNetwork, followers: dict[str, FakePeer]
) -> None:
    await community(home)
    await _join(net, home, followers["lemmy"], followers["mastodon"])
    story = await publish(home)

    [wrapped] = _announced(followers["lemmy"])
    assert wrapped["type"] == "Create"
    assert wrapped["actor"] == "https://home.test/users/convenor"
    assert wrapped["object"]["id"] == story.ap_id
    assert wrapped["object"]["type"] == "Article"
    assert wrapped["object"]["audience"] == GROUP
    assert _announced(followers["mastodon"]) == [story.ap_id]


async def test_nodeinfo_is_asked_once_and_remembered(
    home: AppState, net: InProcessNetwork, followers: dict[str, FakePeer]
) -> None:
    await community(home)
    await _join(net, home, followers["lemmy"], followers["silent"])
    await publish(home, title="First")
    await publish(home, title="Second")

    for fake in (followers["lemmy"], followers["silent"]):
        asked = [r for r in fake.requests if r.url.path == "/.well-known/nodeinfo"]
        assert len(asked) == 1, fake.host
    assert [a["type"] for a in _announced(followers["lemmy"])] == ["Create", "Create"]
    assert all(isinstance(o, str) for o in _announced(followers["silent"]))


async def test_edits_likes_replies_and_deletion_reach_lemmy_wrapped_and_mastodon_sees_no_flood(
    home: AppState, net: InProcessNetwork, followers: dict[str, FakePeer]
) -> None:
    member = await _community_with_a_lemmy_member(net, home, followers)
    lemmy, mastodon = followers["lemmy"], followers["mastodon"]
    page = _page(member)
    await post_signed(net, member, f"{GROUP}/inbox", create_activity(member, page))
    await build_workers(home).run_until_idle()

    update = {
        "id": f"{member.actor_id}#update/1",
        "type": "Update",
        "actor": member.actor_id,
        "to": [GROUP, PUBLIC],
        "object": {**page, "name": "Our discharge checklist v2"},
    }
    like = {
        "id": f"{member.actor_id}#like/1",
        "type": "Like",
        "actor": member.actor_id,
        "object": page["id"],
        "audience": GROUP,
    }
    reply = {
        "id": f"https://{member.host}/comment/1",
        "type": "Note",
        "attributedTo": member.actor_id,
        "inReplyTo": page["id"],
        "audience": GROUP,
        "content": "<p>And the pharmacy check?</p>",
        "to": [PUBLIC],
        "cc": [GROUP],
    }
    delete = {"id": f"{member.actor_id}#delete/1", "type": "Delete", "actor": member.actor_id,
              "to": [PUBLIC], "cc": [GROUP], "object": page["id"]}  # fmt: skip
    like_again = {**like, "id": f"{member.actor_id}#like/2"}  # counted once, shared once
    for activity in (update, like, like_again, create_activity(member, reply, 2), delete):
        response = await post_signed(net, member, "https://home.test/inbox", activity)
        assert response.status_code == 202
        await build_workers(home).run_until_idle()

    wrapped = _announced(lemmy)
    assert [w["type"] for w in wrapped] == ["Create", "Update", "Like", "Create", "Delete"]
    assert wrapped[1] == update  # each exactly as the member sent it
    assert wrapped[2] == like
    assert wrapped[4] == delete
    assert wrapped[3]["object"]["inReplyTo"] == page["id"]
    # Mastodon: the boost, then only its Undo when the post is deleted — no replies, no likes
    assert _announced(mastodon) == [page["id"]]
    [undo] = [a for a in mastodon.inbox if a["type"] == "Undo"]
    assert undo["object"]["type"] == "Announce"
    assert undo["object"]["object"] == page["id"]
    assert not [a for a in lemmy.inbox if a["type"] == "Undo"]


async def test_a_blocked_members_like_is_not_shared(
    home: AppState, net: InProcessNetwork, followers: dict[str, FakePeer]
) -> None:
    await community(home)
    member = FakePeer("member.test", software="lemmy")
    liker = FakePeer("member.test", username="troll")
    net.add_handler(
        member.host, lambda r: liker.handler(r) if "troll" in r.url.path else member.handler(r)
    )
    await _join(net, home, member, followers["lemmy"])
    await post_signed(net, member, f"{GROUP}/inbox", create_activity(member, _page(member)))
    await build_workers(home).run_until_idle()
    await moderation.block_from_group(
        home.db, home.remote_actors, "frailty", liker.actor_id, "convenor", "spam"
    )
    like = {"id": f"{liker.actor_id}#like/1", "type": "Like", "actor": liker.actor_id,
            "object": _page(member)["id"]}  # fmt: skip
    await post_signed(net, liker, "https://home.test/inbox", like)
    await build_workers(home).run_until_idle()
    # the post and the ban (Lemmy's form), never the banned member's like
    assert [w["type"] for w in _announced(followers["lemmy"])] == ["Create", "Block"]


async def test_a_local_comment_reaches_lemmy_followers_through_the_group(
    home: AppState, net: InProcessNetwork, followers: dict[str, FakePeer]
) -> None:
    await community(home)
    await _join(net, home, followers["lemmy"], followers["mastodon"])
    story = await publish(home)
    made = await comments.comment(
        home.db, home.urls, "convenor", story.ap_id, "Thanks all, more next week.", None
    )
    await build_workers(home).run_until_idle()

    wrapped = [w for w in _announced(followers["lemmy"]) if w["object"]["type"] == "Note"]
    assert [w["object"]["id"] for w in wrapped] == [made.ap_id]
    assert wrapped[0]["object"]["inReplyTo"] == story.ap_id
    assert _announced(followers["mastodon"]) == [story.ap_id]  # the story only, never replies


async def test_a_new_moderator_is_announced_to_lemmy_as_the_owners_add(
    home: AppState, net: InProcessNetwork, followers: dict[str, FakePeer]
) -> None:
    await community(home)
    await _join(net, home, followers["lemmy"], followers["mastodon"])
    story = await publish(home)  # the group learns what its followers run when it announces
    await create_person(home.db, home.urls, "dave")
    await groups.join(home.db, "frailty", "dave")
    await group_roles.set_role(home.db, "frailty", "dave", "moderator", "convenor")
    await build_workers(home).run_until_idle()

    create, add = _announced(followers["lemmy"])
    assert create["object"]["id"] == story.ap_id
    assert add["type"] == "Add"
    assert add["actor"] == "https://home.test/users/convenor"
    assert add["object"] == "https://home.test/users/dave"
    assert add["target"] == f"{GROUP}/moderators"
    assert _announced(followers["mastodon"]) == [story.ap_id]  # no Add: Mastodon has no use


async def test_a_moderators_removal_reaches_lemmy_as_a_delete_without_the_reason(
    home: AppState, net: InProcessNetwork, followers: dict[str, FakePeer]
) -> None:
    member = await _community_with_a_lemmy_member(net, home, followers)
    lemmy, mastodon = followers["lemmy"], followers["mastodon"]
    page = _page(member)
    await post_signed(net, member, f"{GROUP}/inbox", create_activity(member, page))
    await build_workers(home).run_until_idle()

    await moderation.remove_post(home.db, home.urls, page["id"], "convenor", "off topic")
    await build_workers(home).run_until_idle()

    removal = _announced(lemmy)[-1]
    assert removal["type"] == "Delete"
    assert removal["actor"] == "https://home.test/users/convenor"
    assert removal["object"] == page["id"]
    assert removal["summary"] == ""  # Lemmy: a Delete with a summary is a removal
    assert "off topic" not in str(lemmy.inbox)  # the reason stays in the audit log
    assert await _listed_in_outboxes(home, removal["id"]) == []
    assert [a["type"] for a in mastodon.inbox if a["type"] != "Accept"] == ["Announce", "Undo"]
    # Lemmy got the Create announced, never the boost: nothing to undo there
    assert not [a for a in lemmy.inbox if a["type"] == "Undo"]


async def test_a_ban_reaches_lemmy_as_the_moderators_block_and_others_as_the_groups(
    home: AppState, net: InProcessNetwork, followers: dict[str, FakePeer]
) -> None:
    member = await _community_with_a_lemmy_member(net, home, followers)
    lemmy, mastodon = followers["lemmy"], followers["mastodon"]
    await publish(home)  # the group learns what its followers run when it announces

    await moderation.block_from_group(
        home.db, home.remote_actors, "frailty", member.actor_id, "convenor", "spam"
    )
    await build_workers(home).run_until_idle()

    # Lemmy (https://github.com/LemmyNet/lemmy/blob/main/crates/apub/activities/src/block/block_user.rs):
    # the moderator blocks, the community is the target, announced by the community
    ban = _announced(lemmy)[-1]
    assert (ban["type"], ban["actor"], ban["object"], ban["target"]) == (
        "Block", "https://home.test/users/convenor", member.actor_id, GROUP,
    )  # fmt: skip
    assert "spam" not in str(ban)  # the reason stays in the audit log
    assert await _listed_in_outboxes(home, ban["id"]) == []
    # the banned member's own Lemmy server gets the same Block straight from the moderator
    [direct] = [a for a in member.inbox if a["type"] == "Block"]
    assert direct == {**ban, "@context": direct["@context"]}
    assert not [a for a in mastodon.inbox if a["type"] == "Block"]
    assert [a for a in _announced(mastodon) if isinstance(a, dict)] == []


async def test_a_ban_of_someone_on_mastodon_is_the_groups_own_block(
    home: AppState, net: InProcessNetwork, followers: dict[str, FakePeer]
) -> None:
    await community(home)
    mastodon = followers["mastodon"]
    await _join(net, home, followers["lemmy"], mastodon)
    await publish(home)
    await moderation.block_from_group(
        home.db, home.remote_actors, "frailty", mastodon.actor_id, "convenor", "spam"
    )
    await build_workers(home).run_until_idle()
    [block] = [a for a in mastodon.inbox if a["type"] == "Block"]
    assert (block["actor"], block["object"]) == (GROUP, mastodon.actor_id)
    # Lemmy followers still learn of the ban, in their form
    assert _announced(followers["lemmy"])[-1]["actor"] == "https://home.test/users/convenor"


async def test_a_reply_alone_teaches_the_group_what_a_new_follower_runs(
    home: AppState, net: InProcessNetwork, peer: FakePeer, followers: dict[str, FakePeer]
) -> None:
    await community(home)
    story = await publish(home)  # before anyone followed: nothing learnt yet
    await _join(net, home, peer, followers["lemmy"])
    note = {"id": "https://peer.test/statuses/7", "type": "Note", "attributedTo": peer.actor_id,
            "inReplyTo": story.ap_id, "content": "<p>Good read</p>", "to": [PUBLIC]}  # fmt: skip
    await post_signed(net, peer, "https://home.test/inbox", create_activity(peer, note))
    await build_workers(home).run_until_idle()
    [wrapped] = _announced(followers["lemmy"])
    assert wrapped["object"] == note


async def test_a_server_slow_to_answer_nodeinfo_holds_nothing_up(
    home: AppState, net: InProcessNetwork, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(software, "LOOKUP_BUDGET_SECONDS", 0.2)
    slow = FakePeer("slow.test", software="lemmy")

    async def answer_late(request: httpx.Request) -> httpx.Response:
        if "nodeinfo" in request.url.path:
            await asyncio.sleep(30)
        return slow.handler(request)

    net.add_handler(slow.host, answer_late)
    await community(home)
    await _join(net, home, slow)
    started = time.monotonic()
    story = await publish(home)
    assert time.monotonic() - started < 5
    assert _announced(slow) == [story.ap_id]  # not known in time: Mastodon's form
    async with home.db() as session:
        row = await session.get(InstanceSoftware, "slow.test")
    assert row is not None
    assert row.software is None  # asked again a day later, not at every post
