"""The actor document cache (fedcop/web/actor_cache.py): reused while the row is unchanged,
rebuilt after any change to it, however the change was made, and never served stale."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
from sqlalchemy import text, update
from starlette.applications import Starlette

from fedcop.models import Actor, utcnow
from fedcop.services.keys import rotate_key
from fedcop.web.actor_cache import ActorDocuments, ActorRow, LocalActorRows
from fedcop.web.state import AppState
from tests.conftest import TEST_DOMAIN
from tests.support.actors import make_group, make_person

AS2 = {"accept": "application/activity+json"}


def _documents(app: Starlette) -> ActorDocuments:
    documents: ActorDocuments = app.state.actor_documents
    return documents


async def _set(state: AppState, username: str, **values: Any) -> None:
    async with state.db.begin() as session:
        await session.execute(update(Actor).where(Actor.username == username).values(**values))


async def test_unchanged_row_reuses_the_bytes(
    client: httpx.AsyncClient, app: Starlette, state: AppState
) -> None:
    group = await make_group(state, "readers", name="Readers")
    first = await client.get(group.ap_id, headers=AS2)
    builds = _documents(app).builds
    second = await client.get(group.ap_id, headers=AS2)
    assert first.status_code == second.status_code == 200
    assert second.content == first.content
    assert _documents(app).builds == builds  # served from the cache, not rebuilt
    assert second.json()["name"] == "Readers"
    assert second.headers["content-type"] == "application/activity+json"
    assert second.headers["vary"] == "Accept"


async def test_every_change_to_the_row_shows_at_once(
    client: httpx.AsyncClient, app: Starlette, state: AppState
) -> None:
    person = await make_person(state, "alice", name="Alice")
    before = (await client.get(person.ap_id, headers=AS2)).json()
    assert "icon" not in before

    await _set(state, "alice", name="Alice B.", icon_url="https://media.example/a.png")
    after = (await client.get(person.ap_id, headers=AS2)).json()
    assert after["name"] == "Alice B."
    assert after["icon"] == {"type": "Image", "url": "https://media.example/a.png"}

    await _set(state, "alice", image_url="https://media.example/header.png")
    header = (await client.get(person.ap_id, headers=AS2)).json()
    assert header["image"] == {"type": "Image", "url": "https://media.example/header.png"}

    await rotate_key(state.db, state.urls, "alice")
    rotated = (await client.get(person.ap_id, headers=AS2)).json()
    assert rotated["publicKey"]["publicKeyPem"] != before["publicKey"]["publicKeyPem"]


async def test_a_change_that_leaves_updated_at_alone_is_still_seen(
    client: httpx.AsyncClient, state: AppState
) -> None:
    # Raw SQL (another tool, a migration, a hand fix) does not run the ORM's onupdate; the
    # cache is keyed on the whole row, so it does not depend on updated_at moving.
    person = await make_person(state, "bob", name="Bob")
    assert (await client.get(person.ap_id, headers=AS2)).json()["summary"] == ""
    async with state.db.begin() as session:
        await session.execute(text("UPDATE actors SET summary = '<p>hi</p>' WHERE username='bob'"))
    assert (await client.get(person.ap_id, headers=AS2)).json()["summary"] == "<p>hi</p>"


async def test_deleted_actor_is_gone_from_actor_json_and_webfinger(
    client: httpx.AsyncClient, state: AppState
) -> None:
    group = await make_group(state, "leaving")
    webfinger = f"/.well-known/webfinger?resource=acct:leaving@{TEST_DOMAIN}"
    assert (await client.get(group.ap_id, headers=AS2)).status_code == 200
    assert (await client.get(webfinger)).status_code == 200
    await _set(state, "leaving", deleted_at=utcnow())
    gone = await client.get(group.ap_id, headers=AS2)
    assert gone.status_code == 410
    assert (await client.get(webfinger)).status_code == 410


async def test_webfinger_served_from_the_cache_matches_the_row(
    client: httpx.AsyncClient, app: Starlette, state: AppState
) -> None:
    group = await make_group(state, "finders")
    url = f"/.well-known/webfinger?resource=acct:finders@{TEST_DOMAIN}"
    first = await client.get(url)
    builds = _documents(app).builds
    second = await client.get(url)
    assert second.content == first.content
    assert _documents(app).builds == builds
    assert second.headers["content-type"] == "application/jrd+json"
    assert second.headers["access-control-allow-origin"] == "*"
    self_link = [link for link in second.json()["links"] if link["rel"] == "self"]
    assert self_link[0]["href"] == group.ap_id
    assert self_link[0]["properties"] == {"https://www.w3.org/ns/activitystreams#type": "Group"}


async def test_concurrent_lookups_share_queries(
    client: httpx.AsyncClient, app: Starlette, state: AppState
) -> None:
    people = [await make_person(state, f"p{n}") for n in range(4)]
    await client.get(people[0].ap_id, headers=AS2)  # creates the cache
    queries = _documents(app).rows.queries
    responses = await asyncio.gather(
        *(client.get(people[n % 4].ap_id, headers=AS2) for n in range(40))
    )
    assert [r.status_code for r in responses] == [200] * 40
    assert [r.json()["id"] for r in responses] == [people[n % 4].ap_id for n in range(40)]
    assert _documents(app).rows.queries - queries < 40


async def test_a_lookup_never_joins_a_query_already_running(state: AppState) -> None:
    """A request arriving after a change commits must see it, even while an older query runs."""
    await make_person(state, "carol", name="Carol")
    rows = LocalActorRows(state.engine)
    release, has_read = asyncio.Event(), asyncio.Event()
    read = rows._read

    async def read_then_wait(names: list[str]) -> dict[str, ActorRow]:
        result = await read(names)
        has_read.set()
        await release.wait()  # the query has read the row; hold its answer back
        return result

    rows._read = read_then_wait  # type: ignore[method-assign]
    early = asyncio.create_task(rows.get("carol"))
    await asyncio.wait_for(has_read.wait(), 10)
    await _set(state, "carol", name="Carol C.")
    late = asyncio.create_task(rows.get("Carol"))  # usernames are case-insensitive
    await asyncio.sleep(0.01)
    release.set()
    early_row, late_row = await early, await late
    assert early_row is not None
    assert late_row is not None
    assert early_row.name == "Carol"  # read before the change
    assert late_row.name == "Carol C."  # its own, later query
    assert rows.queries == 2


async def test_documents_are_bounded(state: AppState) -> None:
    documents = ActorDocuments(state.engine, max_documents=2)
    for name in ("d1", "d2", "d3"):
        await make_person(state, name)
    for name in ("d1", "d2", "d3"):
        row = await documents.rows.get(name)
        assert row is not None
        assert documents.serialised(row, "full", lambda actor: {"id": actor.ap_id}) == (
            b'{"id":"%s"}' % row.ap_id.encode()
        )
    assert len(documents._documents) == 2
    assert documents.builds == 3


async def test_unknown_username_is_none(state: AppState) -> None:
    assert await LocalActorRows(state.engine).get("nobody") is None
