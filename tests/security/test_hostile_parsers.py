"""Property tests: every parser of inbound data either returns a checked value or raises its
own error type with a reason. Nothing else may escape (that would be a 500 on the inbox or a
failed row in a queue)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from fedcop.ap.checks import MAX_DEPTH, InvalidActivityError, check_activity
from fedcop.ap.remote import InvalidDocumentError, host_of, parse_actor, parse_key_document
from fedcop.ap.remote_content import parse_content
from fedcop.security.httpsig import (
    SignatureError,
    check_freshness,
    key_id_to_actor_id,
    parse_signature,
)
from fedcop.security.ssrf import AddressGuard, BlockedAddressError
from tests.security.hostile import (
    CONTEXT_TRICKS,
    PARSER,
    TRICKY_URLS,
    activities,
    field_values,
    json_values,
    nested,
    outcome,
    urls,
)

NOW = datetime(2025, 1, 5, 10, 0, 0, tzinfo=UTC)
BODY = b'{"type":"Follow"}'


# -- activities --------------------------------------------------------------------------------


def _accepted_or_refused(document: Any) -> None:
    activity = outcome(InvalidActivityError, lambda: check_activity(document))
    if activity is None:
        return
    # Whatever passes is what the inbox relies on: http(s) ids on one server.
    assert activity.id.startswith(("https://", "http://"))
    assert activity.actor.startswith(("https://", "http://"))
    assert host_of(activity.id) == host_of(activity.actor) != ""
    if activity.type in ("Create", "Update", "Delete"):
        assert activity.object_id is not None
        assert host_of(activity.object_id) == host_of(activity.actor)


@PARSER
@given(activities())
def test_check_activity_accepts_or_refuses_every_activity_shape(document: dict[str, Any]) -> None:
    _accepted_or_refused(document)


@PARSER
@given(json_values())
def test_check_activity_refuses_any_json_that_is_not_an_activity(document: Any) -> None:
    _accepted_or_refused(document)


@PARSER
@given(
    st.sampled_from(["id", "actor"]),
    urls(),
    st.sampled_from(["Follow", "Create", "Delete", "Undo", "Like"]),
)
def test_tricky_ids_and_actors_never_pass_as_same_origin_by_accident(
    field: str, url: str, kind: str
) -> None:
    document = {
        "id": "https://peer.test/a/1",
        "type": kind,
        "actor": "https://peer.test/users/remote",
        "object": {"id": "https://peer.test/notes/1", "type": "Note"},
        field: url,
    }
    _accepted_or_refused(document)


@pytest.mark.parametrize("url", TRICKY_URLS)
@pytest.mark.parametrize("field", ["id", "actor"])
def test_every_tricky_url_is_refused_or_same_origin(field: str, url: str) -> None:
    document = {
        "id": "https://peer.test/a/1",
        "type": "Follow",
        "actor": "https://peer.test/users/remote",
        "object": "https://home.test/g",
        field: url,
    }
    _accepted_or_refused(document)


def test_spoofed_actor_on_another_server_is_refused() -> None:
    document = {
        "id": "https://peer.test/a/1",
        "type": "Follow",
        "actor": "https://victim.test/users/v",
        "object": "https://home.test/g",
    }
    with pytest.raises(InvalidActivityError, match="not on its actor's server"):
        check_activity(document)


def test_userinfo_cannot_smuggle_another_host() -> None:
    document = {
        "id": "https://victim.test@peer.test/a/1",
        "type": "Follow",
        "actor": "https://victim.test/users/v",
        "object": "https://home.test/g",
    }
    with pytest.raises(InvalidActivityError):
        check_activity(document)


def _announce_of(obj: Any) -> dict[str, Any]:
    return {
        "id": "https://peer.test/a/1",
        "type": "Announce",
        "actor": "https://peer.test/users/remote",
        "object": obj,
    }


def test_nesting_up_to_the_limit_is_accepted() -> None:
    # The activity is level 1, so MAX_DEPTH - 1 levels below it reach the limit exactly.
    assert check_activity(_announce_of(nested(MAX_DEPTH - 1))).type == "Announce"
    assert check_activity(_announce_of([[[[["wide"] * 50] * 3]]])).type == "Announce"


def test_an_integer_past_64_bits_is_not_mistaken_for_nesting() -> None:
    # orjson cannot serialise it (TypeError, as for nesting past its limit); the walk decides.
    # Found by the fuzz run: a stored row read back with json.loads keeps such integers.
    assert check_activity({**_announce_of("https://peer.test/n/1"), "n": 2**70}).type


@pytest.mark.parametrize("depth", [MAX_DEPTH, 100, 300, 5_000])
def test_nesting_past_the_limit_is_refused(depth: int) -> None:
    with pytest.raises(InvalidActivityError, match="nested deeper"):
        check_activity(_announce_of(nested(depth)))


@pytest.mark.parametrize("field", ["id", "type", "actor", "object"])
@pytest.mark.parametrize("control", ["\x00", "\n", "\x7f", "\u2028"])
def test_control_characters_in_stored_fields_are_refused(field: str, control: str) -> None:
    # PostgreSQL text cannot hold NUL at all; the others have no place in an id either.
    document = {
        "id": "https://peer.test/a/1",
        "type": "Like",
        "actor": "https://peer.test/users/remote",
        "object": "https://home.test/stories/1",
    }
    document[field] = document[field] + control
    with pytest.raises(InvalidActivityError):
        check_activity(document)


def test_json_nested_past_the_parsers_limit_is_a_decode_error() -> None:
    # What the inbox hands to check_activity comes from orjson, which refuses deep nesting
    # (1024 levels) with JSONDecodeError: the inbox's 400, never a RecursionError.
    with pytest.raises(orjson.JSONDecodeError):
        orjson.loads(b'{"object":' * 2_000 + b"1" + b"}" * 2_000)


@pytest.mark.parametrize("context", CONTEXT_TRICKS)
def test_json_ld_context_tricks_change_nothing_that_is_read(context: Any) -> None:
    # An @context that aliases `actor` to `object` (or anything else) is not expanded: the
    # same-origin checks read the compacted keys, as Mastodon does for its inbox checks.
    document = {"@context": context, "id": "https://peer.test/a/1", "type": "Create",
                "actor": "https://peer.test/users/remote",
                "object": {"id": "https://victim.test/notes/1", "type": "Note"}}  # fmt: skip
    with pytest.raises(InvalidActivityError, match="another server"):
        check_activity(document)


# -- signatures --------------------------------------------------------------------------------

_param_names = st.sampled_from(
    ["keyId", "algorithm", "headers", "signature", "created", "expires", "keyid", "x"]
)
_param_values = (
    st.text(max_size=40)
    | st.sampled_from(TRICKY_URLS)
    | st.sampled_from(["rsa-sha256", "hs2019", "ed25519", "(request-target) host date digest"])
    | st.sampled_from(["(created) (expires) digest", "AAAA", "99999999999", "1e300", "-1"])
    | st.integers(min_value=-(10**13), max_value=10**13).map(str)
)


def _cavage_header(pairs: list[tuple[str, str]], quoted: bool) -> str:
    return ",".join(f'{name}="{value}"' if quoted else f"{name}={value}" for name, value in pairs)


_cavage = st.builds(
    _cavage_header, st.lists(st.tuples(_param_names, _param_values), max_size=6), st.booleans()
)
_header_values = st.text(max_size=60) | st.sampled_from(
    [
        "Sun, 05 Jan 2025 10:00:00 GMT",
        "Fri, 31 Dec 9999 23:59:59 GMT",
        "Mon, 01 Jan 0001 00:00:00 GMT",
        "Sun, 05 Jan 2025 10:00:00 +9999",
        "SHA-256=",
        "SHA-256=not base64!",
        "sha-512=:AAAA:, sha-256=:AAAA:",
        'sig1=("@method" "@target-uri" "content-digest");created=1736071200;keyid="k"',
        'sig1=("@method");created=99999999999999;keyid="k"',
        'sig1=("@method" "@target-uri" "content-digest");created=-1;expires=1e3;keyid="k"',
        "sig1=:AAAA:",
        "sig1=(",
    ]
)


@PARSER
@given(
    st.sampled_from(["POST", "GET", "post", "PUT"]),
    st.sampled_from(["/inbox", "/inbox?x=1", "", "/users/a/inbox?" + "q" * 100]),
    st.dictionaries(
        st.sampled_from(
            [
                "signature",
                "Signature",
                "signature-input",
                "date",
                "digest",
                "content-digest",
                "host",
                "authorization",
            ]
        ),
        _header_values | _cavage,
        max_size=6,
    ),
    st.none() | st.binary(max_size=40),
)
def test_parse_signature_parses_or_refuses_any_headers(
    method: str, target: str, headers: dict[str, str], body: bytes | None
) -> None:
    parsed = outcome(SignatureError, lambda: parse_signature(method, target, headers, body))
    if parsed is not None:
        assert parsed.key_id
        outcome(SignatureError, lambda: check_freshness(parsed, NOW))


@PARSER
@given(_cavage, st.text(max_size=40))
def test_cavage_headers_of_any_shape_parse_or_refuse(signature: str, date: str) -> None:
    headers = {"signature": signature, "date": date, "host": "home.test", "digest": "SHA-256=x"}
    parsed = outcome(SignatureError, lambda: parse_signature("POST", "/inbox", headers, BODY))
    if parsed is not None:
        outcome(SignatureError, lambda: check_freshness(parsed, NOW))


@PARSER
@given(urls())
def test_key_id_to_actor_id_never_raises(key_id: str) -> None:
    assert isinstance(key_id_to_actor_id(key_id), str)


# -- remote documents --------------------------------------------------------------------------


def _actor_shaped() -> st.SearchStrategy[dict[str, Any]]:
    key = st.fixed_dictionaries(
        {},
        optional={"id": field_values(), "owner": field_values(), "publicKeyPem": json_values(2)},
    )
    fields = st.sampled_from(
        [
            "id",
            "type",
            "inbox",
            "outbox",
            "preferredUsername",
            "name",
            "summary",
            "endpoints",
            "followers",
            "url",
            "icon",
            "image",
            "manuallyApprovesFollowers",
            "publicKey",
        ]
    )
    value = (
        field_values()
        | st.sampled_from(["Person", "Group", ["Person"], {"Person": 1}])
        | key
        | st.lists(key, max_size=3)
    )
    return st.dictionaries(fields, value, max_size=10)


@PARSER
@given(_actor_shaped())
def test_parse_actor_returns_an_actor_or_says_why_not(document: dict[str, Any]) -> None:
    actor = outcome(InvalidDocumentError, lambda: parse_actor(document))
    if actor is not None:
        assert host_of(actor.public_key_id) == host_of(actor.ap_id) == actor.domain


@PARSER
@given(
    st.dictionaries(
        st.sampled_from(["id", "owner", "publicKeyPem", "publicKey", "type"]),
        field_values()
        | st.dictionaries(st.sampled_from(["id", "owner", "publicKeyPem"]), field_values()),
    )
)
def test_parse_key_document_returns_a_key_or_says_why_not(document: dict[str, Any]) -> None:
    key = outcome(InvalidDocumentError, lambda: parse_key_document(document))
    if key is not None:
        assert all(isinstance(v, str) for v in (key.key_id, key.owner, key.public_key_pem))


def _content_shaped() -> st.SearchStrategy[dict[str, Any]]:
    fields = st.sampled_from(
        [
            "id",
            "type",
            "attributedTo",
            "to",
            "cc",
            "audience",
            "inReplyTo",
            "name",
            "summary",
            "content",
            "contentMap",
            "mediaType",
            "url",
            "tag",
            "attachment",
            "published",
            "sensitive",
        ]
    )
    value = field_values() | st.sampled_from(
        [
            "Note",
            ["Article", "Note"],
            "0001-01-01T00:00:00+01:00",
            "9999-12-31T23:59:59-01:00",
            "2025-01-05T10:00:00Z",
            "text/plain",
            "<script>x</script>",
        ]
    )
    return st.dictionaries(fields, value, max_size=12)


@PARSER
@given(_content_shaped())
def test_parse_content_returns_a_post_or_says_why_not(document: dict[str, Any]) -> None:
    post = outcome(InvalidDocumentError, lambda: parse_content(document))
    if post is not None:
        assert host_of(post.author) == host_of(post.ap_id)
        assert "<script" not in post.content


@pytest.mark.parametrize("published", ["0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00"])
def test_dates_at_the_edge_of_the_calendar_are_dropped_not_a_crash(published: str) -> None:
    post = parse_content(
        {
            "id": "https://peer.test/n/1",
            "type": "Note",
            "attributedTo": "https://peer.test/users/a",
            "published": published,
        }
    )
    assert post.published is None


# -- the SSRF guard ----------------------------------------------------------------------------


@PARSER
@given(
    st.text(min_size=1, max_size=30) | st.sampled_from(["a..b", "xn--", "é" * 70, "[::1", "::1"]),
    st.lists(st.text(max_size=20) | st.sampled_from(["127.0.0.1", "10.0.0.1", "::1"]), max_size=3),
)
def test_the_address_guard_returns_addresses_or_blocks(host: str, answers: list[str]) -> None:
    async def resolve(name: str, port: int) -> list[str]:
        return answers

    guard = AddressGuard(resolve=resolve)
    found = outcome(BlockedAddressError, lambda: asyncio.run(guard.addresses(host, 443)))
    assert found is None or all(isinstance(address, str) for address in found)


async def _offline_resolve(host: str, port: int) -> list[str]:
    """Encodes the name as the system resolver does first (no query is sent), then fails."""
    host.encode("idna")
    raise OSError("offline")


@pytest.mark.parametrize("host", ["a..b", "é" * 70, ".", "a" * 300, "ok.test"])
async def test_names_the_resolver_cannot_encode_are_blocked(host: str) -> None:
    with pytest.raises(BlockedAddressError, match="does not resolve"):
        await AddressGuard(resolve=_offline_resolve).addresses(host, 443)
