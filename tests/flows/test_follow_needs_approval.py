"""Approval groups: follows wait for a moderator, who approves or rejects."""

from __future__ import annotations

import pytest

from fedcop.errors import NotFoundError
from fedcop.services import follows as follow_services
from fedcop.services.actors import create_group
from fedcop.web.state import AppState
from fedcop.worker import build_workers
from tests.support.network import InProcessNetwork
from tests.support.peers import FakePeer, follow_activity, post_signed

GROUP = "https://home.test/groups/clinic"


async def test_follow_waits_then_is_approved(
    home: AppState, net: InProcessNetwork, peer: FakePeer
) -> None:
    await create_group(home.db, home.urls, "clinic", name="Clinic", visibility="approval")
    workers = build_workers(home)
    await post_signed(net, peer, f"{GROUP}/inbox", follow_activity(peer, GROUP))
    await workers.run_until_idle()
    assert peer.inbox == []  # no answer until a moderator decides

    [request] = await follow_services.pending(home.db)
    assert (request.follower, request.followed, request.state) == (peer.actor_id, GROUP, "pending")

    decided = await follow_services.decide(home.db, request.id, approve=True)
    assert decided.state == "accepted"
    await workers.run_until_idle()
    assert [a["type"] for a in peer.inbox] == ["Accept"]
    assert await follow_services.pending(home.db) == []


async def test_follow_waits_then_is_rejected(
    home: AppState, net: InProcessNetwork, peer: FakePeer
) -> None:
    await create_group(home.db, home.urls, "clinic", name="Clinic", visibility="approval")
    workers = build_workers(home)
    follow = follow_activity(peer, GROUP)
    await post_signed(net, peer, f"{GROUP}/inbox", follow)
    await workers.run_until_idle()
    [request] = await follow_services.pending(home.db)
    await follow_services.decide(home.db, request.id, approve=False)
    await workers.run_until_idle()
    [reject] = peer.inbox
    assert reject["type"] == "Reject"
    assert reject["object"]["id"] == follow["id"]
    assert await follow_services.pending(home.db) == []


async def test_deciding_twice_is_refused(
    home: AppState, net: InProcessNetwork, peer: FakePeer
) -> None:
    await create_group(home.db, home.urls, "clinic", name="Clinic", visibility="approval")
    await post_signed(net, peer, f"{GROUP}/inbox", follow_activity(peer, GROUP))
    await build_workers(home).run_until_idle()
    [request] = await follow_services.pending(home.db)
    await follow_services.decide(home.db, request.id, approve=True)
    with pytest.raises(NotFoundError):
        await follow_services.decide(home.db, request.id, approve=False)
