"""The home timeline: followed groups' stories, the caller's groups, never what is hidden."""

from __future__ import annotations

import httpx

from fedcop.web.state import AppState
from fedcop.worker import build_workers
from tests.api.helpers import create_group, person_with_token, publish


async def _home(client: httpx.AsyncClient, headers: dict[str, str]) -> list[str]:
    response = await client.get("/api/v1/timelines/home", headers=headers)
    assert response.status_code == 200
    return [item["title"] for item in response.json()["items"]]


async def test_followed_group_is_shown_and_private_group_is_not(
    client: httpx.AsyncClient, state: AppState, alice: dict[str, str], bob: dict[str, str]
) -> None:
    carol = await person_with_token(state, "carol")
    await create_group(client, alice, "frailty")
    await create_group(client, carol, "secret_one", "private")
    await publish(client, alice, "frailty", title="Open story")
    await publish(client, carol, "secret_one", title="Members only", visibility="members")

    assert await _home(client, bob) == []
    followed = await client.post(
        "/api/v1/follows", json={"target": "@frailty@fedcop.test"}, headers=bob
    )
    assert followed.status_code == 201, followed.text
    await build_workers(state).run_until_idle()  # the group accepts through its inbox
    # Even following the private group by URL shows nothing until bob is a member.
    await client.post(
        "/api/v1/follows", json={"target": "https://fedcop.test/groups/secret_one"}, headers=bob
    )
    await build_workers(state).run_until_idle()

    item = (await client.get("/api/v1/timelines/home", headers=bob)).json()["items"][0]
    assert item["title"] == "Open story"
    assert item["group"]["handle"] == "@frailty@fedcop.test"
    assert item["author"]["handle"] == "@alice@fedcop.test"
    assert item["url"].startswith("https://fedcop.test/stories/")
    assert set(item["counts"]) == {"likes", "shares", "comments"}  # the group's share counts
    assert await _home(client, bob) == ["Open story"]
    assert await _home(client, carol) == ["Members only"]


async def test_members_see_their_groups_and_pages_resume(
    client: httpx.AsyncClient, alice: dict[str, str], bob: dict[str, str]
) -> None:
    await create_group(client, alice, "frailty")
    await client.post("/api/v1/groups/frailty/join", headers=bob)
    for n in range(3):
        await publish(client, alice, "frailty", title=f"Story {n}")
    first = (await client.get("/api/v1/timelines/home?limit=2", headers=bob)).json()
    assert [i["title"] for i in first["items"]] == ["Story 2", "Story 1"]
    rest = await client.get(
        f"/api/v1/timelines/home?limit=2&max_id={first['next_max_id']}", headers=bob
    )
    assert [i["title"] for i in rest.json()["items"]] == ["Story 0"]
    assert rest.json()["next_max_id"] is None
