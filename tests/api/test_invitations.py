"""Invitations through the API: a moderator invites, the invitee accepts or declines."""

from __future__ import annotations

import httpx
from sqlalchemy import select

from fedcop.models import AuditEntry
from fedcop.services import moderation
from fedcop.web.state import AppState
from tests.api.helpers import create_group, person_with_token

BASE = "https://fedcop.test"


async def _invite(
    client: httpx.AsyncClient, headers: dict[str, str], group: str, person: str
) -> httpx.Response:
    return await client.post(
        f"/api/v1/groups/{group}/invitations", json={"person": person}, headers=headers
    )


async def _audit(state: AppState) -> list[tuple[str, str]]:
    async with state.db() as session:
        rows = await session.scalars(select(AuditEntry).order_by(AuditEntry.id))
        return [(row.action, row.target) for row in rows]


async def test_an_invitee_of_a_private_group_accepts_and_is_a_member_at_once(
    client: httpx.AsyncClient, state: AppState, alice: dict[str, str], bob: dict[str, str]
) -> None:
    await create_group(client, alice, "inner", visibility="private")
    made = await _invite(client, alice, "inner", "bob")
    assert made.status_code == 201, made.text
    assert made.json()["invitee"] == f"{BASE}/users/bob"
    assert made.json()["invited_by"] == f"{BASE}/users/alice"

    listed = (await client.get("/api/v1/invitations", headers=bob)).json()["items"]
    assert [(i["group"], i["group_handle"], i["group_name"]) for i in listed] == [
        (f"{BASE}/groups/inner", "@inner@fedcop.test", "Inner")
    ]
    assert (await client.get("/api/v1/groups/inner", headers=bob)).status_code == 404

    accepted = await client.post("/api/v1/groups/inner/invitation/accept", headers=bob)
    assert accepted.status_code == 200, accepted.text
    assert accepted.json() == {"group": f"{BASE}/groups/inner", "member": f"{BASE}/users/bob",
                               "role": "member", "state": "active"}  # fmt: skip
    group = (await client.get("/api/v1/groups/inner", headers=bob)).json()
    assert group["membership"]["state"] == "active"
    assert (await client.get("/api/v1/invitations", headers=bob)).json()["items"] == []
    assert await _audit(state) == [
        ("invite", f"{BASE}/users/bob"), ("accept invitation", f"{BASE}/users/bob"),
    ]  # fmt: skip


async def test_a_declined_invitation_is_gone(
    client: httpx.AsyncClient, state: AppState, alice: dict[str, str], bob: dict[str, str]
) -> None:
    await create_group(client, alice, "frailty", visibility="approval")
    assert (await _invite(client, alice, "frailty", "bob")).status_code == 201
    declined = await client.post("/api/v1/groups/frailty/invitation/decline", headers=bob)
    assert declined.status_code == 204
    assert (await client.get("/api/v1/invitations", headers=bob)).json()["items"] == []
    members = (await client.get("/api/v1/groups/frailty/members", headers=alice)).json()
    assert [m["member"] for m in members["items"]] == [f"{BASE}/users/alice"]
    late = await client.post("/api/v1/groups/frailty/invitation/accept", headers=bob)
    assert late.status_code == 404
    assert [a for a, _ in await _audit(state)] == ["invite", "decline invitation"]


async def test_joining_where_invited_accepts_without_approval(
    client: httpx.AsyncClient, alice: dict[str, str], bob: dict[str, str]
) -> None:
    await create_group(client, alice, "frailty", visibility="approval")
    await _invite(client, alice, "frailty", "bob")
    joined = await client.post("/api/v1/groups/frailty/join", headers=bob)
    assert joined.status_code == 200, joined.text
    assert joined.json()["state"] == "active"


async def test_only_moderators_invite_and_nonsense_is_refused(
    client: httpx.AsyncClient, state: AppState, alice: dict[str, str], bob: dict[str, str]
) -> None:
    carol = await person_with_token(state, "carol")
    await create_group(client, alice, "frailty")
    assert (await _invite(client, bob, "frailty", "carol")).status_code == 403
    assert (await _invite(client, alice, "frailty", "nobody")).status_code == 404
    assert (await _invite(client, alice, "nowhere", "carol")).status_code == 404
    assert (await _invite(client, alice, "frailty", "alice")).status_code == 409  # the owner
    assert (await _invite(client, alice, "frailty", "carol")).status_code == 201
    twice = await _invite(client, alice, "frailty", "carol")
    assert twice.status_code == 409
    assert "already invited" in twice.json()["error"]
    missing = await client.post("/api/v1/groups/frailty/invitations", json={}, headers=alice)
    assert missing.status_code == 422
    assert (await client.post("/api/v1/groups/frailty/invitation/accept",
                              headers=bob)).status_code == 404  # fmt: skip
    assert (await client.get("/api/v1/invitations")).status_code == 401

    await moderation.block_from_group(
        state.db, state.remote_actors, "frailty", "@bob@fedcop.test", "alice", "spam"
    )
    blocked = await _invite(client, alice, "frailty", "bob")
    assert blocked.status_code == 422
    assert "blocked" in blocked.json()["error"]
    # blocked after being invited: the block ends the invitation too
    await moderation.block_from_group(
        state.db, state.remote_actors, "frailty", "@carol@fedcop.test", "alice", "spam"
    )
    late = await client.post("/api/v1/groups/frailty/invitation/accept", headers=carol)
    assert late.status_code == 404
    assert (await client.get("/api/v1/invitations", headers=carol)).json()["items"] == []
