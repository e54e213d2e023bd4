"""Hostile input through the real app: every refusal is a 4xx (or 503) with a reason, never a
500, and leaves every table exactly as it was.

The inbox is reached over httpx's ASGI transport, as peers reach it; the signatures are real
(FakePeer signs them). Each property reuses one instance and checks every table's row count
before and after every example.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import func, select

from fedcop.ap.checks import MAX_DEPTH, InvalidActivityError, check_activity
from fedcop.app import Network, create_app
from fedcop.db import create_engine
from fedcop.federation.authenticate import AuthenticationError, authenticate
from fedcop.models import InboxItem, utcnow
from fedcop.models.base import Base
from fedcop.security.httpsig import sign_request_rfc9421
from fedcop.security.httpsig_common import http_date
from fedcop.web.state import AppState
from tests.federation.conftest import home, net, peer
from tests.security.hostile import (
    CONTEXT_TRICKS,
    THROUGH_THE_APP,
    TRICKY_URLS,
    activities,
    json_values,
    nested,
)
from tests.support.databases import DatabaseFactory
from tests.support.network import InProcessNetwork
from tests.support.peers import FakePeer, follow_activity
from tests.support.settings import make_settings

__all__ = ["home", "net", "peer"]

INBOX = "https://home.test/inbox"
GROUP = "https://home.test/groups/frailty"
REFUSALS = frozenset({400, 401, 403, 404, 413, 429, 503})
Snapshot = dict[str, int]


async def _snapshot(state: AppState) -> Snapshot:
    """Rows in every table: what "nothing stored" means."""
    tables = Base.metadata.sorted_tables
    counts = [select(func.count()).select_from(t).scalar_subquery().label(t.name) for t in tables]
    async with state.db() as session:
        row = (await session.execute(select(*counts))).one()
    return dict(zip([t.name for t in tables], row, strict=True))


async def _send(
    net: InProcessNetwork, body: bytes, headers: dict[str, str], url: str = INBOX
) -> httpx.Response:
    async with httpx.AsyncClient(transport=net) as client:
        return await client.post(url, content=body, headers=headers)


def _signed(peer: FakePeer, body: bytes, url: str = INBOX) -> dict[str, str]:
    return peer.signed_headers("POST", url, body, **{"content-type": "application/activity+json"})


async def _warm(state: AppState, net: InProcessNetwork, peer: FakePeer) -> Snapshot:
    """One good delivery first, so the peer's actor and key are already stored: after this,
    hostile requests signed by the peer may change nothing at all."""
    body = json.dumps(follow_activity(peer, GROUP, number=0)).encode()
    assert (await _send(net, body, _signed(peer, body))).status_code == 202
    return await _snapshot(state)


def _assert_refused(response: httpx.Response) -> None:
    assert response.status_code in REFUSALS, (response.status_code, response.text[:300])
    assert response.json()["error"].strip(), "a refusal must say why"
    if response.status_code in (429, 503):
        assert response.headers["retry-after"].isdigit()


async def _refused_and_unchanged(
    state: AppState, before: Snapshot, response: httpx.Response
) -> None:
    _assert_refused(response)
    assert await _snapshot(state) == before


def _legitimate(document: Any, peer: FakePeer) -> bool:
    """Would a correct inbox accept this from `peer`? (Well-formed, by the peer itself.)"""
    try:
        return check_activity(document).actor == peer.actor_id
    except InvalidActivityError:
        return False


async def _one_example(
    state: AppState, net: InProcessNetwork, peer: FakePeer, body: bytes, document: Any
) -> None:
    """Post `body` signed by the peer: 202 only for a legitimate activity (one row more),
    otherwise refused with nothing stored."""
    before = await _snapshot(state)
    response = await _send(net, body, _signed(peer, body))
    if response.status_code == 202:
        assert _legitimate(document, peer), body[:300]
        async with state.db() as session:
            ids = set(await session.scalars(select(InboxItem.ap_id)))
        assert check_activity(document).id in ids
        return
    await _refused_and_unchanged(state, before, response)


# -- properties ------------------------------------------------------------------------------
# The app runs on the test's event loop and hypothesis's @given cannot await inside it, so each
# property draws its (derandomized, bounded) examples first and then sends them one by one.
# The price: no shrinking of a failing example; the assertion message shows it whole.


def _collect(strategy: st.SearchStrategy[Any]) -> list[Any]:
    examples: list[Any] = []

    @THROUGH_THE_APP
    @given(strategy)
    def gather(example: Any) -> None:
        examples.append(example)

    gather()
    return examples


async def test_any_bytes_at_all_are_refused_cleanly(
    home: AppState, net: InProcessNetwork, peer: FakePeer
) -> None:
    before = await _warm(home, net, peer)
    bodies = _collect(
        st.binary(max_size=200)
        | st.text(max_size=200).map(str.encode)
        | st.sampled_from([b"", b"null", b"[]", b"{", b'{"a":1}{"b":2}', b"\xff\xfe{}", b"1e999"])
    )
    for body in bodies:
        await _refused_and_unchanged(home, before, await _send(net, body, _signed(peer, body)))


async def test_any_json_value_is_refused_or_is_a_real_activity(
    home: AppState, net: InProcessNetwork, peer: FakePeer
) -> None:
    await _warm(home, net, peer)
    for document in _collect(json_values()):
        await _one_example(home, net, peer, json.dumps(document).encode(), document)


async def test_wrong_types_and_tricks_in_every_field(
    home: AppState, net: InProcessNetwork, peer: FakePeer
) -> None:
    await _warm(home, net, peer)
    for document in _collect(activities()):
        await _one_example(home, net, peer, json.dumps(document).encode(), document)


async def test_one_field_of_a_good_follow_replaced_by_anything(
    home: AppState, net: InProcessNetwork, peer: FakePeer
) -> None:
    await _warm(home, net, peer)
    replacements = _collect(
        st.tuples(
            st.sampled_from(["id", "type", "actor", "object", "@context"]),
            json_values() | st.sampled_from(TRICKY_URLS),
        )
    )
    for number, (field, value) in enumerate(replacements, start=1):
        document = {**follow_activity(peer, GROUP, number), field: value}
        await _one_example(home, net, peer, json.dumps(document).encode(), document)


# -- named attacks ---------------------------------------------------------------------------
# Several attacks of one kind share an instance (the tables are checked after each), because a
# fresh database per case would cost far more than the cases.


def _malformed(peer: FakePeer) -> dict[str, bytes]:
    def follow(**fields: Any) -> bytes:
        return json.dumps({**follow_activity(peer, GROUP, 7), **fields}).encode()

    too_deep = b', "object": ' + b"[" * 2_000 + b"]" * 2_000 + b"}"
    return {
        "giant id": follow(id="https://peer.test/" + "i" * 900_000),
        "giant type": follow(type="T" * 900_000),
        "long actor": follow(actor=peer.actor_id + "x" * 5000),
        "over a megabyte": follow(pad="x" * 1_000_001),
        "nested past the JSON parser's limit": follow()[:-1] + too_deep,
        "nested past MAX_DEPTH": follow(object=nested(MAX_DEPTH)),
        "nested 300 deep (once a failed group commit)": follow(object=nested(300)),
        "nested 900 deep": follow(object=nested(900)),
        "NUL in the id (PostgreSQL refuses it in text)": follow(id=f"{peer.actor_id}#f\u0000"),
        "NUL in the type": follow(type="Follow\u0000"),
        "NUL in the object": follow(object=GROUP + "\u0000"),
        "unclosed IPv6 actor": follow(actor="https://[::1/users/a"),
        "stray bracket in the id": follow(id="https://peer.test]/a"),
        "actor object without a string id": follow(actor={"id": ["x"]}),
        "lone surrogate": follow()[:-1] + b', "name": "\\ud800"}',
        "duplicate keys": follow()[:-1] + b', "actor": "https://victim.test/users/v"}',
    }


async def test_giant_deep_and_malformed_documents_are_refused(
    home: AppState, net: InProcessNetwork, peer: FakePeer
) -> None:
    before = await _warm(home, net, peer)
    for case, body in _malformed(peer).items():
        response = await _send(net, body, _signed(peer, body))
        assert response.status_code in (400, 401, 413), (case, response.text[:200])
        await _refused_and_unchanged(home, before, response)


async def test_json_ld_context_tricks_cannot_launder_a_foreign_object(
    home: AppState, net: InProcessNetwork, peer: FakePeer
) -> None:
    before = await _warm(home, net, peer)
    for number, context in enumerate(CONTEXT_TRICKS):
        document = {"@context": context, "id": f"{peer.actor_id}#creates/{number}",
                    "type": "Create", "actor": peer.actor_id,
                    "object": {"id": "https://victim.test/notes/1", "type": "Note",
                               "attributedTo": "https://victim.test/users/v"}}  # fmt: skip
        body = json.dumps(document).encode()
        response = await _send(net, body, _signed(peer, body))
        assert response.status_code == 400, context
        await _refused_and_unchanged(home, before, response)


async def test_spoofed_actors_and_ids_and_re_signed_activities_are_refused(
    home: AppState, net: InProcessNetwork, peer: FakePeer
) -> None:
    before = await _warm(home, net, peer)
    victim = net.add_peer(FakePeer("victim.test", username="v"))
    # The peer signs an activity claiming to be the victim's: 401, the victim never asked.
    spoofed = json.dumps({"id": f"{victim.actor_id}#follows/1", "type": "Follow",
                          "actor": victim.actor_id, "object": GROUP}).encode()  # fmt: skip
    response = await _send(net, spoofed, _signed(peer, spoofed))
    assert response.status_code == 401
    assert "not by the actor" in response.json()["error"]
    assert victim.requests == []
    await _refused_and_unchanged(home, before, response)
    # The peer's activity with an id on the victim's server: 400.
    foreign_id = json.dumps({**follow_activity(peer, GROUP), "id": "https://victim.test/f/1"})
    response = await _send(net, foreign_id.encode(), _signed(peer, foreign_id.encode()))
    assert response.status_code == 400
    await _refused_and_unchanged(home, before, response)
    # The peer's own activity, re-signed by a relay: 401 (only the actor may sign it).
    relay = net.add_peer(FakePeer("relay.test", username="relay"))
    body = json.dumps(follow_activity(peer, GROUP, 50)).encode()
    response = await _send(net, body, _signed(relay, body))
    assert response.status_code == 401
    assert "not by the actor" in response.json()["error"]
    before["actors"] += 1  # the relay's actor was fetched to check its signature: a cache row
    await _refused_and_unchanged(home, before, response)


async def test_replays_are_stored_once_or_refused(
    home: AppState, net: InProcessNetwork, peer: FakePeer
) -> None:
    before = await _warm(home, net, peer)
    body = json.dumps(follow_activity(peer, GROUP, 42)).encode()
    headers = _signed(peer, body)
    # The same request again and again: 202 each time (peers retry), one row.
    assert [(await _send(net, body, headers)).status_code for _ in range(3)] == [202] * 3
    before["inbox_items"] += 1
    assert await _snapshot(home) == before
    other = json.dumps(follow_activity(peer, GROUP, 43)).encode()
    # Its signature headers on another body: the Digest no longer matches.
    response = await _send(net, other, headers)
    assert response.status_code == 401
    assert "digest" in response.json()["error"].lower()
    await _refused_and_unchanged(home, before, response)
    # ... with the Digest recomputed for the new body: the signature covers the old one.
    response = await _send(net, other, {**headers, "Digest": _signed(peer, other)["Digest"]})
    assert response.status_code == 401
    await _refused_and_unchanged(home, before, response)
    # Signed for the group's inbox, replayed to the shared inbox: (request-target) differs.
    signed_for_group = _signed(peer, other, url=f"{GROUP}/inbox")
    response = await _send(net, other, signed_for_group)
    assert response.status_code == 401
    await _refused_and_unchanged(home, before, response)


async def test_a_stale_replay_is_401_before_any_key_fetch(
    home: AppState, net: InProcessNetwork
) -> None:
    stranger = net.add_peer(FakePeer("stranger.test"))
    before = await _snapshot(home)
    body = json.dumps(follow_activity(stranger, GROUP)).encode()
    old = http_date(utcnow() - timedelta(hours=3))
    headers = stranger.signed_headers(
        "POST", INBOX, body, **{"content-type": "application/activity+json", "date": old}
    )
    response = await _send(net, body, headers)
    assert response.status_code == 401
    assert "too old" in response.json()["error"]
    assert stranger.requests == []  # stale requests cost no key fetch
    await _refused_and_unchanged(home, before, response)


async def test_signatures_made_for_another_host_are_401(
    home: AppState, net: InProcessNetwork, peer: FakePeer
) -> None:
    before = await _warm(home, net, peer)
    body = json.dumps(follow_activity(peer, GROUP, 48)).encode()
    cavage = _signed(peer, body, url="https://other.test/inbox")  # what other.test received
    del cavage["Host"]  # replayed to home.test by a client that writes its own Host
    rfc9421 = sign_request_rfc9421(
        "POST", "https://other.test/inbox", body, peer.key_id, peer.keys.private_pem
    )
    for headers in (cavage, {**rfc9421, "content-type": "application/activity+json"}):
        response = await _send(net, body, headers)
        assert response.status_code == 401
        await _refused_and_unchanged(home, before, response)


UNUSABLE_KEY_IDS = [
    "https://[::1/users/a#main-key",
    "https://peer.test:99999/users/remote#main-key",
    "https://peer.test:abc/users/remote#main-key",
    "javascript:alert(1)",
    "https:///users/remote#main-key",
    "acct:remote@peer.test",
    "https://peer.test/" + "k" * 3000,
]


async def test_an_unusable_key_id_is_401_without_a_fetch(
    home: AppState, net: InProcessNetwork
) -> None:
    before = await _snapshot(home)
    impostor = FakePeer("peer.test")
    body = json.dumps(follow_activity(impostor, GROUP, 51)).encode()
    for key_id in UNUSABLE_KEY_IDS:
        headers = _signed(impostor, body)
        headers["Signature"] = headers["Signature"].replace(impostor.key_id, key_id)
        response = await _send(net, body, headers)
        assert response.status_code == 401, key_id
        await _refused_and_unchanged(home, before, response)
    assert net.requests_to("peer.test") == []


async def test_giant_signature_headers_are_401_without_parsing_them(
    home: AppState, net: InProcessNetwork, peer: FakePeer
) -> None:
    before = await _warm(home, net, peer)
    body = json.dumps(follow_activity(peer, GROUP, 52)).encode()
    pairs = ",".join(f'k{i}="v"' for i in range(20_000))  # once ~0.5 s of parsing
    giants = {
        "Signature": pairs,
        "Signature-Input": "sig1=(" + '"a" ' * 50_000 + ")",
        "Date": "Sun, 05 Jan 2025 10:00:00 GMT" + " " * 10_000,
        "Digest": "SHA-256=" + "A" * 10_000,
    }
    for name, value in giants.items():
        response = await _send(net, body, {**_signed(peer, body), name: value})
        assert response.status_code == 401, name
        assert "longer than" in response.json()["error"]
        await _refused_and_unchanged(home, before, response)


# -- the key fetch behind the inbox: redirects to private addresses --------------------------


@pytest.fixture
async def guarded_home(
    net: InProcessNetwork, database_factory: DatabaseFactory, backend: str
) -> AsyncIterator[AppState]:
    """home.test with the SSRF guard on (private addresses refused), names resolved by a table."""

    async def resolve(host: str, port: int) -> list[str]:
        # Every test peer "is" on a public address; internal.test is on a private one.
        return ["10.0.0.5" if host == "internal.test" else "93.184.216.34"]

    url = await factory_url(database_factory, backend)
    engine = create_engine(url)
    settings = make_settings(url, domain="home.test", allow_private_addresses=False)
    app = create_app(settings, engine=engine, network=Network(transport=net, resolve=resolve))
    try:
        async with app.router.lifespan_context(app):
            net.add_app("home.test", app)
            yield app.state.fedcop
    finally:
        await engine.dispose()
        await database_factory.drop_async(url)


async def factory_url(factory: DatabaseFactory, backend: str) -> str:
    return await factory.create_async(backend, migrated=True)


PRIVATE_REDIRECTS = [
    "http://169.254.169.254/latest/meta-data/",
    "http://127.0.0.1:5432/",
    "http://[::1]/admin",
    "http://[::ffff:127.0.0.1]/",
    "https://internal.test/users/remote",
    "gopher://peer.test/x",
]


async def test_a_key_that_redirects_to_a_private_address_is_never_fetched(
    guarded_home: AppState, net: InProcessNetwork
) -> None:
    before = await _snapshot(guarded_home)
    for number, location in enumerate(PRIVATE_REDIRECTS):
        peer = FakePeer(f"peer{number}.test")

        def redirecting(
            request: httpx.Request, peer: FakePeer = peer, to: str = location
        ) -> httpx.Response:
            if request.method == "GET":
                return httpx.Response(302, headers={"location": to})
            return peer.handler(request)

        net.add_handler(peer.host, redirecting)
        body = json.dumps(follow_activity(peer, GROUP)).encode()
        response = await _send(net, body, _signed(peer, body))
        _assert_refused(response)
        assert response.status_code in (401, 503), location
        assert await _snapshot(guarded_home) == before
    contacted = {request.url.host for request in net.sent}
    assert contacted == {"home.test"} | {f"peer{n}.test" for n in range(len(PRIVATE_REDIRECTS))}


# -- own_host: a signature made for another server's Host ------------------------------------


async def test_authenticate_refuses_a_host_header_that_is_not_ours(
    home: AppState, peer: FakePeer
) -> None:
    body = b'{"type":"Like"}'
    headers = peer.signed_headers("POST", "https://other.test/inbox", body)
    # The attacker replays what other.test received, Host header and all: the signature
    # verifies, but it was made for other.test.
    with pytest.raises(AuthenticationError) as caught:
        await authenticate(
            method="POST", target="/inbox", headers=headers, body=body, scheme="https",
            actors=home.remote_actors, policy=home.policy, now=utcnow(), own_host="home.test",
        )  # fmt: skip
    assert caught.value.status == 401
    assert "other.test" in caught.value.reason
    assert peer.requests == []  # refused before any key fetch
    own = peer.signed_headers("POST", "https://home.test/inbox", body, host="HOME.test:443")
    key = await authenticate(
        method="POST", target="/inbox", headers=own, body=body,
        scheme="https", actors=home.remote_actors, policy=home.policy, now=utcnow(),
        own_host="home.test",
    )  # fmt: skip
    assert key.ap_id == peer.actor_id
