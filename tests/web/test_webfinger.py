"""WebFinger as Mastodon, Lemmy and GoToSocial ask it (INTEROP §1)."""

from __future__ import annotations

import httpx
import pytest
from sqlalchemy import update

from fedcop.models import Actor, utcnow
from fedcop.web.state import AppState
from tests.conftest import TEST_DOMAIN
from tests.support.actors import make_group, make_person


async def _finger(client: httpx.AsyncClient, resource: str) -> httpx.Response:
    return await client.get("/.well-known/webfinger", params={"resource": resource})


async def test_person_self_link_is_the_actor_id_byte_for_byte(
    client: httpx.AsyncClient, state: AppState
) -> None:
    person = await make_person(state, "alice")
    response = await _finger(client, f"acct:alice@{TEST_DOMAIN}")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/jrd+json"
    body = response.json()
    assert body["subject"] == f"acct:alice@{TEST_DOMAIN}"
    assert person.ap_id in body["aliases"]
    self_links = [link for link in body["links"] if link["rel"] == "self"]
    assert self_links == [
        {"rel": "self", "type": "application/activity+json", "href": person.ap_id}
    ]
    profile = [x for x in body["links"] if x["rel"] == "http://webfinger.net/rel/profile-page"]
    assert profile == [{"rel": profile[0]["rel"], "type": "text/html", "href": person.ap_id}]
    # and the actor the link names loops back to the same id
    actor = await client.get(person.ap_id, headers={"accept": "application/activity+json"})
    assert actor.json()["id"] == self_links[0]["href"]


async def test_group_self_link_carries_the_group_type_property(
    client: httpx.AsyncClient, state: AppState
) -> None:
    group = await make_group(state, "frailty")
    body = (await _finger(client, f"acct:frailty@{TEST_DOMAIN}")).json()
    self_link = next(link for link in body["links"] if link["rel"] == "self")
    assert self_link["href"] == group.ap_id
    assert self_link["properties"] == {"https://www.w3.org/ns/activitystreams#type": "Group"}


@pytest.mark.parametrize(
    "resource",
    [f"acct:Alice@{TEST_DOMAIN}", f"alice@{TEST_DOMAIN}", f"acct:ALICE@{TEST_DOMAIN.upper()}"],
)
async def test_lookup_is_case_insensitive_and_tolerates_missing_scheme(
    client: httpx.AsyncClient, state: AppState, resource: str
) -> None:
    await make_person(state, "alice")
    response = await _finger(client, resource)
    assert response.status_code == 200
    assert response.json()["subject"] == f"acct:alice@{TEST_DOMAIN}"


async def test_actor_url_as_resource(client: httpx.AsyncClient, state: AppState) -> None:
    person = await make_person(state, "alice")
    response = await _finger(client, person.ap_id)
    assert response.status_code == 200
    assert response.json()["subject"] == f"acct:alice@{TEST_DOMAIN}"


async def test_instance_actor_is_discoverable(client: httpx.AsyncClient) -> None:
    response = await _finger(client, f"acct:{TEST_DOMAIN}@{TEST_DOMAIN}")
    assert response.status_code == 200
    self_link = next(x for x in response.json()["links"] if x["rel"] == "self")
    assert self_link["href"] == f"https://{TEST_DOMAIN}/actor"


@pytest.mark.parametrize(
    ("resource", "status"),
    [
        (f"acct:nobody@{TEST_DOMAIN}", 404),
        ("acct:alice@elsewhere.example", 404),
        ("https://elsewhere.example/users/alice", 404),
        (f"https://{TEST_DOMAIN}/users/alice/outbox", 404),  # not the actor's own URL
        (f"https://{TEST_DOMAIN}/users/nobody/alice", 404),
        (f"https://{TEST_DOMAIN}/groups/alice", 404),  # alice is a person
        (f"https://{TEST_DOMAIN}/stories/alice", 404),
        ("acct:no-at-sign", 400),
        ("acct:@", 400),
        ("", 400),
    ],
)
async def test_unknown_and_malformed_resources(
    client: httpx.AsyncClient, state: AppState, resource: str, status: int
) -> None:
    await make_person(state, "alice")
    response = await _finger(client, resource)
    assert response.status_code == status
    assert response.headers["content-type"].startswith("application/json")
    assert response.json()["error"]


async def test_missing_resource_parameter_is_400(client: httpx.AsyncClient) -> None:
    response = await client.get("/.well-known/webfinger")
    assert response.status_code == 400


async def test_deleted_account_is_410(client: httpx.AsyncClient, state: AppState) -> None:
    await make_person(state, "alice")
    async with state.db.begin() as session:
        await session.execute(
            update(Actor).where(Actor.username == "alice").values(deleted_at=utcnow())
        )
    assert (await _finger(client, f"acct:alice@{TEST_DOMAIN}")).status_code == 410


async def test_host_meta_points_at_webfinger(client: httpx.AsyncClient) -> None:
    response = await client.get("/.well-known/host-meta")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/xrd+xml")
    assert (
        f'template="https://{TEST_DOMAIN}/.well-known/webfinger?resource={{uri}}"' in response.text
    )
    assert 'rel="lrdd"' in response.text
