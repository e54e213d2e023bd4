"""Stories through the API: publish, read, edit, delete, withdraw consent, list a group's."""

from __future__ import annotations

import httpx

from fedcop.web.state import AppState
from fedcop.worker import build_workers
from tests.api.helpers import create_group, publish, story_body

AS2 = {"accept": "application/activity+json"}


async def test_published_story_is_served_as_as2_at_its_id(
    client: httpx.AsyncClient, state: AppState, alice: dict[str, str]
) -> None:
    await create_group(client, alice, "frailty")
    consent = {"given_by": "a carer", "scope": "public", "given_at": "2025-01-31T09:30:00Z"}
    story = await publish(client, alice, "frailty", consent=consent, content_warning="falls")
    assert story["author"]["handle"] == "@alice@fedcop.test"
    assert story["group"]["handle"] == "@frailty@fedcop.test"
    assert story["source"] == story_body()["body"]  # the author sees their Markdown
    assert story["counts"] == {"likes": 0, "shares": 0, "comments": 0}
    await build_workers(state).run_until_idle()

    document = await client.get(str(story["ap_id"]), headers=AS2)
    assert document.status_code == 200
    assert document.headers["content-type"] == "application/activity+json"
    assert document.json()["type"] == "Article"
    assert document.json()["name"] == story_body()["title"]
    assert document.json()["id"] == story["ap_id"]


async def test_publish_refuses_without_pii_confirmation_or_group(
    client: httpx.AsyncClient, alice: dict[str, str], bob: dict[str, str]
) -> None:
    await create_group(client, alice, "frailty")
    unconfirmed = await client.post(
        "/api/v1/groups/frailty/stories", json=story_body(pii_confirmed=False), headers=alice
    )
    assert unconfirmed.status_code == 422
    assert "pii_confirmed" in unconfirmed.json()["error"]
    nowhere = await client.post("/api/v1/groups/none/stories", json=story_body(), headers=alice)
    assert nowhere.status_code == 404
    outsider = await client.post("/api/v1/groups/frailty/stories", json=story_body(), headers=bob)
    assert outsider.status_code == 422
    assert "may not post" in outsider.json()["error"]
    naive = story_body(consent={"given_by": "x", "scope": "public", "given_at": "2025-01-31"})
    response = await client.post("/api/v1/groups/frailty/stories", json=naive, headers=alice)
    assert response.status_code == 422
    assert "time zone" in response.json()["error"]


async def test_get_story_by_id_and_hidden_ones_look_absent(
    client: httpx.AsyncClient, alice: dict[str, str], bob: dict[str, str]
) -> None:
    await create_group(client, alice, "secret_one", "private")
    story = await publish(client, alice, "secret_one", visibility="members")
    mine = await client.get(f"/api/v1/stories/{story['id']}", headers=alice)
    assert mine.status_code == 200
    assert "<em>every</em>" in mine.json()["content"]
    assert (await client.get(f"/api/v1/stories/{story['id']}", headers=bob)).status_code == 404
    assert (await client.get("/api/v1/stories/999999", headers=alice)).status_code == 404
    assert (await client.get("/api/v1/stories/abc", headers=alice)).status_code == 404


async def test_patch_keeps_what_is_left_out(
    client: httpx.AsyncClient, alice: dict[str, str], bob: dict[str, str]
) -> None:
    await create_group(client, alice, "frailty")
    story = await publish(client, alice, "frailty", summary="Ward 7 & friends <3")
    url = f"/api/v1/stories/{story['id']}"
    edited = await client.patch(url, json={"title": "Better title", "pii_confirmed": True},
                                headers=alice)  # fmt: skip
    assert edited.status_code == 200, edited.text
    assert edited.json()["title"] == "Better title"
    assert edited.json()["summary"] == story["summary"]  # unescaped and escaped again, same
    assert edited.json()["edited_at"] is not None

    unconfirmed = await client.patch(url, json={"title": "x"}, headers=alice)
    assert unconfirmed.status_code == 422
    not_theirs = await client.patch(url, json={"pii_confirmed": True}, headers=bob)
    assert not_theirs.status_code == 403
    widened = await client.patch(url, json={"pii_confirmed": True, "visibility": "unlisted"},
                                 headers=alice)  # fmt: skip
    assert widened.status_code == 422


async def test_delete_then_gone(client: httpx.AsyncClient, alice: dict[str, str]) -> None:
    await create_group(client, alice, "frailty")
    story = await publish(client, alice, "frailty")
    url = f"/api/v1/stories/{story['id']}"
    assert (await client.delete(url, headers=alice)).status_code == 204
    assert (await client.get(url, headers=alice)).status_code == 404
    assert (await client.delete(url, headers=alice)).status_code == 404
    assert (await client.get(str(story["ap_id"]), headers=AS2)).status_code == 410


async def test_withdraw_consent_deletes(
    client: httpx.AsyncClient, alice: dict[str, str], bob: dict[str, str]
) -> None:
    await create_group(client, alice, "frailty")
    consent = {"given_by": "a carer", "scope": "public"}
    story = await publish(client, alice, "frailty", consent=consent)
    url = f"/api/v1/stories/{story['id']}/withdraw-consent"
    assert (await client.post(url, headers=bob)).status_code == 403  # not the author
    assert (await client.post(url, headers=alice)).status_code == 204
    assert (await client.get(str(story["ap_id"]), headers=AS2)).status_code == 410


async def test_group_stories_page_newest_first(
    client: httpx.AsyncClient, alice: dict[str, str], bob: dict[str, str]
) -> None:
    await create_group(client, alice, "frailty")
    titles = [f"Story {n}" for n in range(5)]
    for title in titles:
        await publish(client, alice, "frailty", title=title)
    seen: list[str] = []
    url = "/api/v1/groups/frailty/stories?limit=2"
    while True:
        page = (await client.get(url, headers=bob)).json()
        seen += [item["title"] for item in page["items"]]
        if page["next_max_id"] is None:
            break
        url = f"/api/v1/groups/frailty/stories?limit=2&max_id={page['next_max_id']}"
    assert seen == titles[::-1]
    bad = await client.get("/api/v1/groups/frailty/stories?limit=many", headers=bob)
    assert bad.status_code == 422
    too_many = await client.get("/api/v1/groups/frailty/stories?limit=41", headers=bob)
    assert too_many.status_code == 422
