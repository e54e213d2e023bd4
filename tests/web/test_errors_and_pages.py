"""Errors speak the client's language and never leak a stack trace."""

from __future__ import annotations

import time

import httpx
import pytest
from starlette.applications import Starlette
from starlette.routing import Route

from fedcop.services import comments
from fedcop.services import stories as story_services
from fedcop.web import wellknown
from fedcop.web.state import AppState
from tests.conftest import TEST_DOMAIN
from tests.support.actors import make_group, make_person
from tests.support.stories import community, publish


async def test_unknown_actor_is_json_404_for_servers(client: httpx.AsyncClient) -> None:
    response = await client.get("/users/nobody", headers={"accept": "application/activity+json"})
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/json"
    assert response.json() == {"error": "There is no such person or group here."}


async def test_unknown_path_is_a_readable_page_for_browsers(client: httpx.AsyncClient) -> None:
    response = await client.get("/no/such/page", headers={"accept": "text/html"})
    assert response.status_code == 404
    assert response.headers["content-type"].startswith("text/html")
    assert "<h1>Not Found</h1>" in response.text


async def test_wrong_method_is_405_not_500(client: httpx.AsyncClient) -> None:
    response = await client.delete("/users/alice", headers={"accept": "application/json"})
    assert response.status_code == 405


async def test_unexpected_error_is_a_plain_500_without_trace(app: Starlette) -> None:
    async def explode(_: object) -> None:
        raise RuntimeError("secret internals")

    app.router.routes.append(Route("/explode", explode))
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url=f"https://{TEST_DOMAIN}") as c:
        for accept in ("application/activity+json", "text/html"):
            response = await c.get("/explode", headers={"accept": accept})
            assert response.status_code == 500
            assert "secret internals" not in response.text
            assert "Traceback" not in response.text
            assert "RuntimeError" not in response.text


async def test_home_lists_public_groups_only(client: httpx.AsyncClient, state: AppState) -> None:
    await make_person(state, "convenor")
    await make_group(state, "open_cop", name="Open CoP")
    await make_group(state, "secret_cop", name="Secret CoP", visibility="private")
    response = await client.get("/", headers={"accept": "text/html"})
    assert response.status_code == 200
    assert "Open CoP" in response.text
    assert "Secret CoP" not in response.text
    assert "1 person on this server" in response.text


@pytest.mark.parametrize("version", ["2.0", "2.1"])
async def test_nodeinfo_has_real_counts(
    client: httpx.AsyncClient, state: AppState, version: str
) -> None:
    await make_person(state, "alice")
    await make_person(state, "bob")
    await make_group(state, "frailty")
    links = (await client.get("/.well-known/nodeinfo")).json()["links"]
    link = next(x for x in links if x["rel"].endswith(f"/schema/{version}"))
    assert link["href"] == f"https://{TEST_DOMAIN}/nodeinfo/{version}"
    response = await client.get(link["href"])
    assert response.status_code == 200
    assert f"schema/{version}#" in response.headers["content-type"]
    doc = response.json()
    assert doc["version"] == version
    assert doc["software"]["name"] == "fedcop"
    assert doc["protocols"] == ["activitypub"]
    assert doc["usage"]["users"] == {"total": 2, "activeMonth": 2, "activeHalfyear": 2}
    assert doc["usage"]["localPosts"] == 0
    assert doc["openRegistrations"] is False
    assert doc["metadata"]["nodeName"] == "fedcop"


async def test_nodeinfo_unknown_version_is_404(client: httpx.AsyncClient) -> None:
    assert (await client.get("/nodeinfo/1.0")).status_code == 404


async def test_nodeinfo_counts_the_posts_written_here(
    client: httpx.AsyncClient, state: AppState
) -> None:
    """Stories and replies, as Mastodon counts statuses; deleted ones no longer."""
    await community(state)
    kept = await publish(state)
    gone = await publish(state, title="Withdrawn")
    await comments.comment(state.db, state.urls, "convenor", kept.ap_id, "A note to self")
    await story_services.delete(state.db, state.urls, gone.ap_id, by="convenor")
    doc = (await client.get("/nodeinfo/2.1")).json()
    assert doc["usage"]["localPosts"] == 2


async def test_nodeinfo_counts_are_reused_for_a_minute(
    client: httpx.AsyncClient, state: AppState, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Crawlers fetch NodeInfo over and over; each fetch must not count every row again."""
    await make_person(state, "alice")
    assert (await client.get("/nodeinfo/2.1")).json()["usage"]["users"]["total"] == 1
    await make_person(state, "bob")
    assert (await client.get("/nodeinfo/2.1")).json()["usage"]["users"]["total"] == 1
    later = time.monotonic() + 61
    monkeypatch.setattr(wellknown.time, "monotonic", lambda: later)
    assert (await client.get("/nodeinfo/2.1")).json()["usage"]["users"]["total"] == 2
