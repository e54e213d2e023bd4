"""Owners appoint moderators; moderators then moderate; Lemmy followers hear of it (FEP-1b12)."""

from __future__ import annotations

import httpx
from sqlalchemy import select

from fedcop.models import AuditEntry, OutboxActivity
from fedcop.web.state import AppState
from tests.api.helpers import create_group, person_with_token

BASE = "https://fedcop.test"


async def test_an_owner_makes_a_member_a_moderator_and_back(
    client: httpx.AsyncClient, state: AppState, alice: dict[str, str], bob: dict[str, str]
) -> None:
    await create_group(client, alice, "frailty")
    assert (await client.post("/api/v1/groups/frailty/join", headers=bob)).status_code == 200
    made = await client.post("/api/v1/groups/frailty/members/bob/role",
                             json={"role": "moderator"}, headers=alice)  # fmt: skip
    assert made.status_code == 200, made.text
    assert made.json()["role"] == "moderator"
    as2 = {"accept": "application/activity+json"}
    moderators = (await client.get("/groups/frailty/moderators", headers=as2)).json()
    assert f"{BASE}/users/bob" in moderators["orderedItems"]
    # bob may now invite, as moderators do
    invited = await client.post("/api/v1/groups/frailty/invitations", json={"person": "alice"},
                                headers=bob)  # fmt: skip
    assert invited.status_code == 409  # alice is the owner already: bob was allowed to ask

    back = await client.post("/api/v1/groups/frailty/members/bob/role", json={"role": "member"},
                             headers=alice)  # fmt: skip
    assert back.json()["role"] == "member"
    async with state.db() as session:
        audit = [(e.action, e.target) for e in await session.scalars(select(AuditEntry))]
        # no Lemmy-family follower: the Add/Remove went nowhere, so nothing was stored
        changes = (await session.scalars(select(OutboxActivity.type))).all()
    assert audit == [("make moderator", f"{BASE}/users/bob"), ("make member", f"{BASE}/users/bob")]
    assert "Add" not in changes


async def test_only_owners_change_roles_of_active_members(
    client: httpx.AsyncClient, state: AppState, alice: dict[str, str], bob: dict[str, str]
) -> None:
    carol = await person_with_token(state, "carol")
    await create_group(client, alice, "frailty", visibility="approval")
    await client.post("/api/v1/groups/frailty/join", headers=bob)  # pending
    await client.post("/api/v1/groups/frailty/join", headers=carol)
    await client.post("/api/v1/groups/frailty/members/carol/approve", headers=alice)

    role = "/api/v1/groups/frailty/members/{}/role"
    moderator = {"role": "moderator"}
    assert (await client.post(role.format("bob"), json=moderator, headers=alice)).status_code == 404
    assert (await client.post(role.format("bob"), json=moderator, headers=carol)).status_code == 403
    owner = await client.post(role.format("alice"), json={"role": "member"}, headers=alice)
    assert owner.status_code == 422
    bad = await client.post(role.format("carol"), json={"role": "owner"}, headers=alice)
    assert bad.status_code == 422
    ok = await client.post(role.format("carol"), json=moderator, headers=alice)
    assert ok.status_code == 200
    # a moderator is not an owner: cannot appoint others
    assert (
        await client.post(role.format("carol"), json=moderator, headers=carol)
    ).status_code == 403


async def test_group_create_takes_rules_topics_and_posting_policy(
    client: httpx.AsyncClient, alice: dict[str, str]
) -> None:
    response = await client.post(
        "/api/v1/groups",
        json={"username": "falls", "name": "Falls", "rules": "Be *kind*.",
              "topics": ["Falls", "#huddles"], "posting": "followers"},
        headers=alice,
    )  # fmt: skip
    assert response.status_code == 201, response.text
    group = response.json()
    assert "<em>kind</em>" in group["rules"]
    assert group["topics"] == ["falls", "huddles"]
    assert group["posting"] == "followers"
    actor = (await client.get("/groups/falls", headers={"accept": "application/ld+json"})).json()
    assert [t["name"] for t in actor["tag"]] == ["#falls", "#huddles"]
    assert {"Hashtag": "as:Hashtag"} in actor["@context"]
    page = await client.get("/groups/falls", headers={"accept": "text/html"})
    assert "#huddles" in page.text
    assert "<em>kind</em>" in page.text  # the rules, on the group's page
    anyone = {"username": "x", "name": "X", "posting": "anyone"}
    bad = await client.post("/api/v1/groups", json=anyone, headers=alice)
    assert bad.status_code == 422
