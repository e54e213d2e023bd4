"""Groups through the API: create, list, read, join, approve, members."""

from __future__ import annotations

import httpx

from tests.api.helpers import create_group

BASE = "https://fedcop.test"


async def test_create_group_owned_by_the_caller(
    client: httpx.AsyncClient, alice: dict[str, str]
) -> None:
    response = await client.post(
        "/api/v1/groups",
        json={"username": "Frailty", "name": "Frailty CoP", "description": "We *meet* weekly."},
        headers=alice,
    )
    assert response.status_code == 201, response.text
    group = response.json()
    assert group["handle"] == "@frailty@fedcop.test"
    assert group["ap_id"] == f"{BASE}/groups/frailty"
    assert group["visibility"] == "open"
    assert "<em>meet</em>" in group["summary"]
    assert group["member_count"] == 1
    assert group["membership"] == {
        "group": f"{BASE}/groups/frailty",
        "member": f"{BASE}/users/alice",
        "role": "owner",
        "state": "active",
    }


async def test_create_group_refuses_taken_names_and_bad_input(
    client: httpx.AsyncClient, alice: dict[str, str]
) -> None:
    taken = await client.post(
        "/api/v1/groups", json={"username": "alice", "name": "Clash"}, headers=alice
    )
    assert taken.status_code == 409
    assert taken.json() == {"error": "the name 'alice' is already taken"}

    for body, reason in [
        ({"username": "x", "name": "X", "visibility": "secret"}, "body.visibility"),
        ({"username": "x"}, "body.name: is required"),
        ({"username": "x", "name": "X", "colour": "red"}, "body.colour: is not a known field"),
        ({"username": "bad name", "name": "X"}, "may use only letters"),
    ]:
        response = await client.post("/api/v1/groups", json=body, headers=alice)
        assert response.status_code == 422, body
        assert reason in response.json()["error"]
    not_json = await client.post("/api/v1/groups", content=b"{", headers=alice)
    assert not_json.status_code == 422


async def test_list_hides_private_groups_from_non_members(
    client: httpx.AsyncClient, alice: dict[str, str], bob: dict[str, str]
) -> None:
    await create_group(client, alice, "open_one")
    await create_group(client, alice, "secret_one", "private")
    mine = (await client.get("/api/v1/groups", headers=alice)).json()["items"]
    theirs = (await client.get("/api/v1/groups", headers=bob)).json()["items"]
    assert [g["username"] for g in mine] == ["open_one", "secret_one"]
    assert [g["username"] for g in theirs] == ["open_one"]
    assert theirs[0]["membership"] is None


async def test_get_group_and_private_ones_look_absent(
    client: httpx.AsyncClient, alice: dict[str, str], bob: dict[str, str]
) -> None:
    await create_group(client, alice, "secret_one", "private")
    assert (await client.get("/api/v1/groups/secret_one", headers=alice)).status_code == 200
    hidden = await client.get("/api/v1/groups/secret_one", headers=bob)
    missing = await client.get("/api/v1/groups/nothing", headers=bob)
    assert hidden.status_code == missing.status_code == 404
    assert hidden.json()["error"] == "no community group named 'secret_one' here"


async def test_join_open_group_at_once_and_not_twice(
    client: httpx.AsyncClient, alice: dict[str, str], bob: dict[str, str]
) -> None:
    await create_group(client, alice, "frailty")
    joined = await client.post("/api/v1/groups/frailty/join", headers=bob)
    assert joined.status_code == 200
    assert joined.json()["state"] == "active"
    again = await client.post("/api/v1/groups/frailty/join", headers=bob)
    assert again.status_code == 409


async def test_approval_by_a_moderator_only(
    client: httpx.AsyncClient, alice: dict[str, str], bob: dict[str, str]
) -> None:
    await create_group(client, alice, "clinic", "approval")
    asked = await client.post("/api/v1/groups/clinic/join", headers=bob)
    assert asked.json()["state"] == "pending"

    refused = await client.post("/api/v1/groups/clinic/members/bob/approve", headers=bob)
    assert refused.status_code == 403
    assert "is not a moderator" in refused.json()["error"]

    approved = await client.post("/api/v1/groups/clinic/members/bob/approve", headers=alice)
    assert approved.status_code == 200
    assert approved.json()["state"] == "active"
    twice = await client.post("/api/v1/groups/clinic/members/bob/approve", headers=alice)
    assert twice.status_code == 404


async def test_members_of_private_groups_only_for_members(
    client: httpx.AsyncClient, alice: dict[str, str], bob: dict[str, str]
) -> None:
    await create_group(client, alice, "open_one")
    await create_group(client, alice, "secret_one", "private")
    members = await client.get("/api/v1/groups/open_one/members", headers=bob)
    assert members.status_code == 200
    assert [(m["member"], m["role"]) for m in members.json()["items"]] == [
        (f"{BASE}/users/alice", "owner")
    ]
    assert (await client.get("/api/v1/groups/secret_one/members", headers=bob)).status_code == 404
    assert (await client.get("/api/v1/groups/secret_one/members", headers=alice)).status_code == 200
