"""A follower leaves: Undo{Follow} removes them, and repeats change nothing."""

from __future__ import annotations

import httpx
from sqlalchemy import func, select

from fedcop.models import Follow, InboxItem, WorkState
from fedcop.services.actors import create_group
from fedcop.web.state import AppState
from fedcop.worker import build_workers
from tests.support.network import InProcessNetwork
from tests.support.peers import FakePeer, follow_activity, post_signed

GROUP = "https://home.test/groups/frailty"


async def _follow_count(state: AppState) -> int:
    async with state.db() as session:
        return await session.scalar(select(func.count()).select_from(Follow)) or 0


async def test_follow_then_undo(home: AppState, net: InProcessNetwork, peer: FakePeer) -> None:
    await create_group(home.db, home.urls, "frailty", name="Frailty CoP")
    workers = build_workers(home)
    follow = follow_activity(peer, GROUP)
    await post_signed(net, peer, f"{GROUP}/inbox", follow)
    await workers.run_until_idle()
    assert await _follow_count(home) == 1

    undo = {
        "id": f"{peer.actor_id}#undo/1",
        "type": "Undo",
        "actor": peer.actor_id,
        "object": follow,
    }
    assert (await post_signed(net, peer, "https://home.test/inbox", undo)).status_code == 202
    await workers.run_until_idle()
    assert await _follow_count(home) == 0
    async with httpx.AsyncClient(transport=net) as client:
        root = await client.get(f"{GROUP}/followers", headers={"accept": "application/json"})
    assert root.json()["totalItems"] == 0

    # Undo of a follow that is already gone is recorded as ignored, not as an error
    undo_again = {**undo, "id": f"{peer.actor_id}#undo/2"}
    await post_signed(net, peer, "https://home.test/inbox", undo_again)
    await workers.run_until_idle()
    async with home.db() as session:
        state = await session.scalar(
            select(InboxItem.state).where(InboxItem.ap_id == undo_again["id"])
        )
    assert state == WorkState.IGNORED


async def test_undo_by_id_only(home: AppState, net: InProcessNetwork, peer: FakePeer) -> None:
    """Some servers send Undo with the Follow's id rather than the Follow itself."""
    await create_group(home.db, home.urls, "frailty", name="Frailty CoP")
    workers = build_workers(home)
    follow = follow_activity(peer, GROUP)
    await post_signed(net, peer, f"{GROUP}/inbox", follow)
    await workers.run_until_idle()
    undo = {"id": f"{peer.actor_id}#undo/1", "type": "Undo", "actor": peer.actor_id,
            "object": follow["id"]}  # fmt: skip
    await post_signed(net, peer, "https://home.test/inbox", undo)
    await workers.run_until_idle()
    assert await _follow_count(home) == 0


async def test_nobody_can_undo_someone_elses_follow(
    home: AppState, net: InProcessNetwork, peer: FakePeer
) -> None:
    await create_group(home.db, home.urls, "frailty", name="Frailty CoP")
    workers = build_workers(home)
    follow = follow_activity(peer, GROUP)
    await post_signed(net, peer, f"{GROUP}/inbox", follow)
    await workers.run_until_idle()
    other = net.add_peer(FakePeer("other.test"))
    forged = {"id": f"{other.actor_id}#undo/1", "type": "Undo", "actor": other.actor_id,
              "object": follow}  # fmt: skip
    response = await post_signed(net, other, "https://home.test/inbox", forged)
    assert response.status_code == 400  # refused at the door: not its own activity
    await workers.run_until_idle()
    assert await _follow_count(home) == 1
