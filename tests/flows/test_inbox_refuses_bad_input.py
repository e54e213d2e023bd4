"""The inbox's door: every refusal has its status and reason, and leaves nothing behind."""

from __future__ import annotations

import json

import httpx
import pytest
from sqlalchemy import func, select, text

from fedcop.models import InboxItem
from fedcop.services.actors import create_group
from fedcop.services.policy import block_domain
from fedcop.web.state import AppState
from fedcop.worker import build_workers
from tests.support.network import InProcessNetwork
from tests.support.peers import FakePeer, follow_activity, post_signed

INBOX = "https://home.test/inbox"
GROUP = "https://home.test/groups/frailty"


async def _stored(state: AppState) -> int:
    async with state.db() as session:
        return await session.scalar(select(func.count()).select_from(InboxItem)) or 0


async def _post_raw(
    net: InProcessNetwork, peer: FakePeer, body: bytes, **headers: str
) -> httpx.Response:
    signed = peer.signed_headers(
        "POST", INBOX, body, **{"content-type": "application/activity+json"}
    )
    async with httpx.AsyncClient(transport=net) as client:
        return await client.post(INBOX, content=body, headers={**signed, **headers})


async def test_a_good_follow_is_stored_once(
    home: AppState, net: InProcessNetwork, peer: FakePeer
) -> None:
    follow = follow_activity(peer, GROUP)
    for _ in range(3):
        assert (await post_signed(net, peer, INBOX, follow)).status_code == 202
    assert await _stored(home) == 1


async def test_over_a_megabyte_is_413(
    home: AppState, net: InProcessNetwork, peer: FakePeer
) -> None:
    body = json.dumps({**follow_activity(peer, GROUP), "pad": "x" * 1_000_001}).encode()
    response = await _post_raw(net, peer, body)
    assert response.status_code == 413
    assert await _stored(home) == 0


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"{not json", "not JSON"),
        (b"[1, 2]", "JSON object"),
        (b'{"type": "Follow", "actor": "https://peer.test/users/remote"}', "'id'"),
        (b'{"id": "https://peer.test/a/1", "actor": "https://peer.test/users/remote"}', "type"),
        (b'{"id": "https://peer.test/a/1", "type": "Follow"}', "actor"),
        (
            b'{"id": "https://elsewhere.test/a/1", "type": "Follow", "actor": "https://peer.test/users/remote"}',
            "not on its actor's server",
        ),
        (
            b'{"id": "https://peer.test/a/1", "type": "Create", "actor": "https://peer.test/users/remote",'
            b' "object": {"id": "https://victim.test/notes/1", "type": "Note"}}',
            "another server",
        ),
        (
            b'{"id": "https://peer.test/a/1", "type": "Create", "actor": "https://peer.test/users/remote",'
            b' "object": {"id": "https://peer.test/notes/1", "type": "Note",'
            b' "attributedTo": "https://victim.test/users/v"}}',
            "attributed",
        ),
    ],
)
async def test_malformed_or_cross_origin_is_400_with_reason(
    home: AppState, net: InProcessNetwork, peer: FakePeer, body: bytes, reason: str
) -> None:
    response = await _post_raw(net, peer, body)
    assert response.status_code == 400
    assert reason in response.json()["error"]
    assert await _stored(home) == 0


async def test_unsigned_is_401(home: AppState, net: InProcessNetwork, peer: FakePeer) -> None:
    async with httpx.AsyncClient(transport=net) as client:
        response = await client.post(INBOX, json=follow_activity(peer, GROUP))
    assert response.status_code == 401
    assert "signature" in response.json()["error"].lower()
    assert await _stored(home) == 0


async def test_signed_by_someone_other_than_the_actor_is_401(
    home: AppState, net: InProcessNetwork, peer: FakePeer
) -> None:
    other = FakePeer("peer.test", username="other")
    net.add_handler(
        "peer.test", lambda r: other.handler(r) if "other" in r.url.path else peer.handler(r)
    )
    activity = follow_activity(peer, GROUP)  # claims to be by `remote`
    response = await post_signed(net, other, INBOX, activity)
    assert response.status_code == 401
    assert "not by the actor" in response.json()["error"]
    assert await _stored(home) == 0


async def test_blocked_server_is_403(home: AppState, net: InProcessNetwork, peer: FakePeer) -> None:
    await block_domain(home.db, "peer.test", "suspend")
    await home.policy.reload()
    response = await post_signed(net, peer, INBOX, follow_activity(peer, GROUP))
    assert response.status_code == 403
    assert await _stored(home) == 0


async def test_key_server_unreachable_is_503_with_retry_after(
    home: AppState, net: InProcessNetwork, peer: FakePeer
) -> None:
    def down(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused")

    net.add_handler("peer.test", down)
    response = await post_signed(net, peer, INBOX, follow_activity(peer, GROUP))
    assert response.status_code == 503
    assert response.headers["retry-after"]
    assert await _stored(home) == 0


async def test_delete_of_an_actor_never_seen_is_202_without_fetching(
    home: AppState, net: InProcessNetwork, peer: FakePeer
) -> None:
    delete = {"id": f"{peer.actor_id}#delete", "type": "Delete", "actor": peer.actor_id,
              "object": peer.actor_id}  # fmt: skip
    response = await post_signed(net, peer, INBOX, delete)
    assert response.status_code == 202
    assert peer.requests == []
    assert await _stored(home) == 0


async def test_delete_of_a_known_actor_removes_its_follows(
    home: AppState, net: InProcessNetwork, peer: FakePeer
) -> None:
    await create_group(home.db, home.urls, "frailty", name="Frailty CoP")
    await post_signed(net, peer, INBOX, follow_activity(peer, GROUP))
    await build_workers(home).run_until_idle()
    delete = {"id": f"{peer.actor_id}#delete", "type": "Delete", "actor": peer.actor_id,
              "object": peer.actor_id}  # fmt: skip
    assert (await post_signed(net, peer, INBOX, delete)).status_code == 202
    await build_workers(home).run_until_idle()
    async with httpx.AsyncClient(transport=net) as client:
        root = await client.get(f"{GROUP}/followers", headers={"accept": "application/json"})
    assert root.json()["totalItems"] == 0


async def test_a_database_that_cannot_store_is_503_with_retry_after_not_500(
    home: AppState, net: InProcessNetwork, peer: FakePeer
) -> None:
    """A temporary problem must not read as final: Mastodon drops deliveries on most 4xx."""
    async with home.db.begin() as session:  # every insert now fails
        await session.execute(text("DROP TABLE inbox_items"))
    response = await post_signed(net, peer, INBOX, follow_activity(peer, GROUP))
    assert response.status_code == 503
    assert response.headers["retry-after"] == "30"
    assert "retry later" in response.json()["error"]
