"""Actor documents field by field against INTEROP §2, and negotiation with real Accept headers."""

from __future__ import annotations

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import load_pem_public_key

from fedcop.web.state import AppState
from tests.conftest import TEST_DOMAIN
from tests.support.actors import make_group, make_person

MASTODON_ACCEPT = (
    "application/activity+json, "
    'application/ld+json; profile="https://www.w3.org/ns/activitystreams", '
    "text/html;q=0.1"
)
AS2_ACCEPTS = [
    MASTODON_ACCEPT,
    "application/activity+json",
    'application/ld+json; profile="https://www.w3.org/ns/activitystreams"',
    "application/json",
    "text/html;q=0.9, application/activity+json;q=0.1",
]
REQUIRED_CONTEXTS = {"https://www.w3.org/ns/activitystreams", "https://w3id.org/security/v1"}


async def _as2(
    client: httpx.AsyncClient, url: str, accept: str = MASTODON_ACCEPT
) -> httpx.Response:
    return await client.get(url, headers={"accept": accept})


def _check_common_fields(doc: dict[str, object], actor_id: str, actor_type: str) -> None:
    assert doc["id"] == actor_id
    assert doc["type"] == actor_type
    assert set(c for c in doc["@context"] if isinstance(c, str)) >= REQUIRED_CONTEXTS  # type: ignore[attr-defined]
    for field in ("inbox", "outbox", "followers", "following", "featured"):
        assert isinstance(doc[field], str)
        assert doc[field].startswith(actor_id + "/")  # type: ignore[union-attr]
    assert doc["endpoints"] == {"sharedInbox": f"https://{TEST_DOMAIN}/inbox"}
    key = doc["publicKey"]
    assert isinstance(key, dict)
    assert key["id"] == f"{actor_id}#main-key"
    assert key["owner"] == actor_id
    public_key = load_pem_public_key(key["publicKeyPem"].encode())
    assert isinstance(public_key, rsa.RSAPublicKey)
    assert public_key.key_size == 2048
    assert isinstance(doc["manuallyApprovesFollowers"], bool)
    assert doc["url"] == actor_id
    assert str(doc["published"]).endswith("Z")


@pytest.mark.parametrize("accept", AS2_ACCEPTS)
async def test_person_serves_as2_whatever_the_q_values(
    client: httpx.AsyncClient, state: AppState, accept: str
) -> None:
    person = await make_person(state, "alice", name="Alice Example")
    response = await _as2(client, person.ap_id, accept)
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/activity+json"
    assert "Accept" in response.headers["vary"]
    doc = response.json()
    _check_common_fields(doc, person.ap_id, "Person")
    assert doc["preferredUsername"] == "alice"
    assert doc["name"] == "Alice Example"
    assert doc["discoverable"] is True
    assert doc["indexable"] is True
    assert doc["attachment"] == []


@pytest.mark.parametrize(
    ("visibility", "manual", "discoverable"),
    [("open", False, True), ("approval", True, True), ("private", True, False)],
)
async def test_group_document_reflects_visibility_and_moderators(
    client: httpx.AsyncClient, state: AppState, visibility: str, manual: bool, discoverable: bool
) -> None:
    owner = await make_person(state, "convenor")
    group = await make_group(state, "frailty", owner="convenor", visibility=visibility)
    doc = (await _as2(client, group.ap_id)).json()
    _check_common_fields(doc, group.ap_id, "Group")
    assert doc["manuallyApprovesFollowers"] is manual
    assert doc["discoverable"] is discoverable
    moderators = (await _as2(client, doc["attributedTo"])).json()
    assert moderators["type"] == "OrderedCollection"
    assert moderators["totalItems"] == 1
    # A private group names its moderators to signed members only (tests/stories).
    assert moderators["orderedItems"] == ([] if visibility == "private" else [owner.ap_id])


async def test_instance_actor_is_an_application_with_its_own_key(
    client: httpx.AsyncClient, state: AppState
) -> None:
    group = await make_group(state, "frailty")
    doc = (await _as2(client, f"https://{TEST_DOMAIN}/actor")).json()
    _check_common_fields(doc, f"https://{TEST_DOMAIN}/actor", "Application")
    assert doc["preferredUsername"] == TEST_DOMAIN
    group_doc = (await _as2(client, group.ap_id)).json()
    assert doc["publicKey"]["publicKeyPem"] != group_doc["publicKey"]["publicKeyPem"]


async def test_browsers_get_an_html_profile_at_the_same_url(
    client: httpx.AsyncClient, state: AppState
) -> None:
    await make_person(state, "convenor", name="Carol Convenor")
    group = await make_group(state, "frailty", owner="convenor", name="Frailty <CoP>")
    accept = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"
    response = await client.get(group.ap_id, headers={"accept": accept})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert "Accept" in response.headers["vary"]
    assert "<h1>Frailty &lt;CoP&gt;</h1>" in response.text  # escaped, never raw
    assert f"@frailty@{TEST_DOMAIN}" in response.text
    assert 'lang="en-GB"' in response.text
    assert f'rel="alternate" type="application/activity+json" href="{group.ap_id}"' in response.text


@pytest.mark.parametrize("name", ["outbox", "followers", "following"])
async def test_collections_are_valid_empty_ordered_collections(
    client: httpx.AsyncClient, state: AppState, name: str
) -> None:
    person = await make_person(state, "alice")
    root = await _as2(client, f"{person.ap_id}/{name}")
    assert root.headers["content-type"] == "application/activity+json"
    doc = root.json()
    assert doc["id"] == f"{person.ap_id}/{name}"
    assert doc["type"] == "OrderedCollection"
    assert doc["totalItems"] == 0
    page = (await _as2(client, doc["first"])).json()
    assert page["type"] == "OrderedCollectionPage"
    assert page["partOf"] == doc["id"]
    assert page["orderedItems"] == []


async def test_featured_collection_is_inline(client: httpx.AsyncClient, state: AppState) -> None:
    person = await make_person(state, "alice")
    doc = (await _as2(client, f"{person.ap_id}/collections/featured")).json()
    assert doc == {
        "@context": "https://www.w3.org/ns/activitystreams",
        "id": f"{person.ap_id}/collections/featured",
        "type": "OrderedCollection",
        "totalItems": 0,
        "orderedItems": [],
    }


async def test_type_must_match_the_path(client: httpx.AsyncClient, state: AppState) -> None:
    await make_person(state, "alice")
    await make_group(state, "frailty")
    assert (await _as2(client, f"https://{TEST_DOMAIN}/groups/alice")).status_code == 404
    assert (await _as2(client, f"https://{TEST_DOMAIN}/users/frailty")).status_code == 404
    assert (await _as2(client, f"https://{TEST_DOMAIN}/users/{TEST_DOMAIN}")).status_code == 404
