"""Moderators remove posts and block people; reports arrive as Flags; all of it is audited."""

from __future__ import annotations

import httpx
import pytest
from sqlalchemy import select

from fedcop.errors import PermissionDeniedError
from fedcop.models import Actor, Delivery, Report, WorkState
from fedcop.services import moderation, reports, stories
from fedcop.services.actors import create_person
from fedcop.services.policy import block_domain
from fedcop.web.state import AppState
from fedcop.worker import build_workers
from tests.support.network import InProcessNetwork
from tests.support.peers import FakePeer, create_activity, follow_activity, post_signed
from tests.support.stories import AS2, GROUP, community, draft, follow_group, publish


async def test_removing_a_story_takes_back_the_group_boost(
    home: AppState, net: InProcessNetwork, peer: FakePeer
) -> None:
    await community(home)
    await follow_group(net, home, peer)
    story = await publish(home)
    await moderation.remove_post(home.db, home.urls, story.ap_id, "convenor", "off topic")
    await build_workers(home).run_until_idle()

    [undo] = [a for a in peer.inbox if a["type"] == "Undo"]
    assert undo["actor"] == GROUP
    assert undo["object"]["type"] == "Announce"
    assert undo["object"]["object"] == story.ap_id
    async with httpx.AsyncClient(transport=net) as client:
        assert (await client.get(story.ap_id, headers=AS2)).status_code == 404
        for outbox in ("https://home.test/users/convenor/outbox", f"{GROUP}/outbox"):
            first = (await client.get(outbox, headers=AS2)).json()["first"]
            assert story.ap_id not in (await client.get(first, headers=AS2)).text
    [entry] = await moderation.audit_log(home.db)
    assert (entry.action, entry.target, entry.reason) == ("remove", story.ap_id, "off topic")
    assert entry.moderator == "https://home.test/users/convenor"


async def test_only_moderators_remove(home: AppState) -> None:
    await community(home)
    story = await publish(home)
    await create_person(home.db, home.urls, "visitor")
    with pytest.raises(PermissionDeniedError, match="not a moderator"):
        await moderation.remove_post(home.db, home.urls, story.ap_id, "visitor", "")


async def test_a_blocked_person_leaves_and_cannot_return(
    home: AppState, net: InProcessNetwork, peer: FakePeer
) -> None:
    await community(home)
    await follow_group(net, home, peer)
    await moderation.block_from_group(home.db, home.remote_actors, "frailty", peer.actor_id,
                                      "convenor", "harassment")  # fmt: skip
    await build_workers(home).run_until_idle()
    assert [a["type"] for a in peer.inbox][-1] == "Block"

    await post_signed(net, peer, f"{GROUP}/inbox", follow_activity(peer, GROUP, 2))
    await build_workers(home).run_until_idle()
    assert peer.inbox[-1]["type"] == "Reject"
    async with httpx.AsyncClient(transport=net) as client:
        followers = (await client.get(f"{GROUP}/followers", headers=AS2)).json()
    assert followers["totalItems"] == 1  # only the owner
    assert [e.action for e in await moderation.audit_log(home.db)] == ["block"]


async def test_a_report_from_another_server_is_kept_for_moderators(
    home: AppState, net: InProcessNetwork, peer: FakePeer
) -> None:
    await community(home)
    story = await publish(home)
    flag = {"id": f"{peer.actor_id}#flags/1", "type": "Flag", "actor": peer.actor_id,
            "object": ["https://home.test/users/convenor", story.ap_id],
            "content": "Please check this"}  # fmt: skip
    assert (await post_signed(net, peer, "https://home.test/inbox", flag)).status_code == 202
    await build_workers(home).run_until_idle()
    async with home.db() as session:
        reports = (await session.scalars(select(Report).order_by(Report.id))).all()
    assert [r.object_ap_id for r in reports] == ["https://home.test/users/convenor", story.ap_id]
    assert all(r.comment == "Please check this" for r in reports)
    [entry] = await moderation.audit_log(home.db)
    assert entry.action == "report received"


async def test_domain_blocks_are_audited(home: AppState) -> None:
    await block_domain(home.db, "spam.example", "suspend", "spam")
    [entry] = await moderation.audit_log(home.db)
    assert (entry.action, entry.target, entry.reason) == ("domain suspend", "spam.example", "spam")


async def test_suspending_a_domain_cancels_the_deliveries_queued_for_it(
    home: AppState, net: InProcessNetwork, peer: FakePeer
) -> None:
    """Publishing skips suspended servers; what was queued before the block is not sent."""
    await community(home)
    sub = net.add_peer(FakePeer("eu.peer.test"))
    other = net.add_peer(FakePeer("other.test"))
    for follower in (peer, sub, other):
        await follow_group(net, home, follower)
    story = await stories.publish(home.db, home.urls, "convenor", "frailty", draft())
    workers = build_workers(home)
    await workers.inbox.run_once()  # the group shares the story: its deliveries are queued
    await block_domain(home.db, "peer.test", "suspend", "harassment")  # and its subdomains
    await workers.run_until_idle()

    def shared(fake: FakePeer) -> list[object]:
        return [a["object"] for a in fake.inbox if a["type"] == "Announce"]

    assert shared(other) == [story.ap_id]
    assert shared(peer) == []
    assert shared(sub) == []
    async with home.db() as session:
        cancelled = (
            await session.execute(
                select(Delivery.domain, Delivery.state, Delivery.last_error, Delivery.attempts)
                .where(Delivery.domain != "other.test", Delivery.state != WorkState.DONE)
                .order_by(Delivery.domain)
            )
        ).all()
    assert [tuple(row) for row in cancelled] == [
        ("eu.peer.test", WorkState.FAILED, "peer.test is suspended", 0),
        ("peer.test", WorkState.FAILED, "peer.test is suspended", 0),
    ]


async def test_silencing_a_domain_still_delivers_to_it(
    home: AppState, net: InProcessNetwork, peer: FakePeer
) -> None:
    await community(home)
    await follow_group(net, home, peer)
    story = await stories.publish(home.db, home.urls, "convenor", "frailty", draft())
    await block_domain(home.db, "peer.test", "silence")
    await build_workers(home).run_until_idle()
    assert [a["object"] for a in peer.inbox if a["type"] == "Announce"] == [story.ap_id]


async def test_a_local_report_is_forwarded_to_the_posts_own_server(
    home: AppState, net: InProcessNetwork, peer: FakePeer
) -> None:
    await community(home)
    await follow_group(net, home, peer)
    post = {"id": "https://peer.test/post/1", "type": "Page", "attributedTo": peer.actor_id,
            "name": "Spam", "content": "<p>buy</p>", "to": [GROUP], "audience": GROUP}  # fmt: skip
    create = create_activity(peer, post, 1)
    await post_signed(net, peer, f"{GROUP}/inbox", create)
    await build_workers(home).run_until_idle()
    async with home.db() as session:
        reporter = await session.scalar(select(Actor.id).where(Actor.username == "convenor"))
    assert reporter is not None

    made = await reports.report(home.db, reporter, post["id"], "spam", forward=True)
    await build_workers(home).run_until_idle()

    assert made.forwarded is True
    [flag] = [a for a in peer.inbox if a["type"] == "Flag"]
    assert flag["actor"] == "https://home.test/actor"  # the instance, never the reporter
    assert flag["object"] == [peer.actor_id, post["id"]]
    assert flag["content"] == "spam"
    assert "convenor" not in str(flag)


async def test_a_silenced_servers_posts_are_kept_but_not_amplified(
    home: AppState, net: InProcessNetwork, peer: FakePeer
) -> None:
    await community(home)
    other = net.add_peer(FakePeer("other.test"))
    await follow_group(net, home, peer)
    await follow_group(net, home, other)
    await block_domain(home.db, "peer.test", "silence", "noisy")
    post = {"id": "https://peer.test/post/7", "type": "Page", "attributedTo": peer.actor_id,
            "name": "Loud", "content": "<p>x</p>", "to": [GROUP], "audience": GROUP}  # fmt: skip
    create = create_activity(peer, post, 7)
    assert (await post_signed(net, peer, f"{GROUP}/inbox", create)).status_code == 202
    await build_workers(home).run_until_idle()
    assert not [a for a in other.inbox if a["type"] == "Announce"]
    async with httpx.AsyncClient(transport=net) as client:
        page = await client.get(GROUP, headers={"accept": "text/html"})
    assert "Loud" not in page.text
