"""Authorized fetch: signed GETs only, except what verifying signatures needs."""

from __future__ import annotations

import httpx
import pytest

from fedcop.services.actors import create_group
from fedcop.services.keys import local_signer, rotate_key
from fedcop.services.policy import block_domain
from fedcop.web.state import AppState
from tests.support.databases import DatabaseFactory
from tests.support.network import InProcessNetwork, fedcop_instance
from tests.support.peers import FakePeer

AS2 = "application/activity+json"


@pytest.fixture
async def strict(
    net: InProcessNetwork, database_factory: DatabaseFactory, backend: str
) -> AppState:
    async with fedcop_instance(
        net, database_factory, backend, "strict.test", authorized_fetch=True
    ) as state:
        await create_group(state.db, state.urls, "frailty", name="Frailty CoP")
        yield state  # type: ignore[misc]


def _client(net: InProcessNetwork) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=net, base_url="https://strict.test")


async def test_unsigned_actor_fetch_gets_only_the_key_parts(
    strict: AppState, net: InProcessNetwork
) -> None:
    async with _client(net) as client:
        response = await client.get("/groups/frailty", headers={"accept": AS2})
    assert response.status_code == 200
    document = response.json()
    assert document["publicKey"]["id"] == "https://strict.test/groups/frailty#main-key"
    assert document["inbox"] == "https://strict.test/groups/frailty/inbox"
    assert "summary" not in document
    assert "followers" not in document
    assert "Signature" in response.headers["vary"]


async def test_unsigned_collection_fetch_is_401(strict: AppState, net: InProcessNetwork) -> None:
    async with _client(net) as client:
        for path in ("outbox", "followers", "following", "collections/featured", "moderators"):
            response = await client.get(f"/groups/frailty/{path}", headers={"accept": AS2})
            assert response.status_code == 401, path
            assert response.headers["vary"] == "Signature"


async def test_instance_actor_is_served_whole_unsigned(
    strict: AppState, net: InProcessNetwork
) -> None:
    async with _client(net) as client:
        response = await client.get("/actor", headers={"accept": AS2})
    assert response.status_code == 200
    assert response.json()["followers"] == "https://strict.test/actor/followers"


async def test_signed_fetch_gets_everything(
    strict: AppState, net: InProcessNetwork, peer: FakePeer
) -> None:
    url = "https://strict.test/groups/frailty"
    async with _client(net) as client:
        response = await client.get(url, headers=peer.signed_headers("GET", url))
        assert response.status_code == 200
        assert response.json()["followers"] == f"{url}/followers"
        outbox = f"{url}/outbox"
        response = await client.get(outbox, headers=peer.signed_headers("GET", outbox))
        assert response.status_code == 200
        assert response.json()["type"] == "OrderedCollection"


async def test_badly_signed_fetch_is_401_with_reason(
    strict: AppState, net: InProcessNetwork, peer: FakePeer
) -> None:
    url = "https://strict.test/groups/frailty"
    headers = peer.signed_headers("GET", url)
    async with _client(net) as client:
        response = await client.get(url + "/followers", headers=headers)  # signed another path
    assert response.status_code == 401
    assert "does not verify" in response.json()["error"]


async def test_fetch_signed_by_a_blocked_server_is_403(
    strict: AppState, net: InProcessNetwork, peer: FakePeer
) -> None:
    await block_domain(strict.db, "peer.test", "suspend")
    await strict.policy.reload()
    url = "https://strict.test/groups/frailty/outbox"
    async with _client(net) as client:
        response = await client.get(url, headers=peer.signed_headers("GET", url))
    assert response.status_code == 403
    assert peer.requests == []  # refused without fetching its key


async def test_two_instances_survive_a_key_rotation(
    strict: AppState, home: AppState, net: InProcessNetwork
) -> None:
    """home's group signs fetches to strict; home rotates; strict refetches once and accepts."""
    await create_group(home.db, home.urls, "nurses", name="Nurses")
    group = await home.remote_actors.by_handle("@nurses@home.test")
    outbox = "https://strict.test/groups/frailty/outbox"
    collection = await home.client.fetch_json(outbox, await local_signer(home.db, group))
    assert collection["type"] == "OrderedCollection"
    before = len(net.requests_to("home.test"))

    await rotate_key(home.db, home.urls, "nurses")
    group = await home.remote_actors.by_handle("@nurses@home.test")
    collection = await home.client.fetch_json(outbox, await local_signer(home.db, group))
    assert collection["type"] == "OrderedCollection"
    refetches = [r for r in net.requests_to("home.test")[before:] if r.method == "GET"]
    assert [r.url.path for r in refetches] == ["/groups/nurses"]
