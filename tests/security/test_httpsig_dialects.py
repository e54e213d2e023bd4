"""Requests shaped like each peer's dialect, signed independently, then round trips."""

from __future__ import annotations

import hashlib
from datetime import timedelta

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from fedcop.security.httpsig import (
    SignatureError,
    key_id_to_actor_id,
    parse_signature,
    sign_request,
    sign_request_rfc9421,
    verify,
)
from tests.security.support import (
    BODY,
    NOW,
    NOW_HTTP,
    NOW_TS,
    b64,
    foreign_cavage_headers,
    private_key,
    private_pem,
    public_pem,
    raw_sign,
    sha256_b64,
)

INBOX = "/users/alice/inbox"
POST_NAMES = ("(request-target)", "host", "date", "digest")


def _post_headers(digest_label: str = "SHA-256") -> dict[str, str]:
    return {
        "Host": "fedcop.test",
        "Date": NOW_HTTP,
        "Digest": f"{digest_label}={sha256_b64(BODY)}",
        "Content-Type": "application/activity+json",
    }


def test_mastodon_rsa_sha256_main_key() -> None:
    headers = foreign_cavage_headers(
        method="POST", target=INBOX, headers=_post_headers(), names=POST_NAMES
    )
    parsed = parse_signature("POST", INBOX, headers, BODY)

    assert parsed.key_id == "https://remote.example/users/bob#main-key"
    assert key_id_to_actor_id(parsed.key_id) == "https://remote.example/users/bob"
    verify(parsed, public_pem("rsa-2048"), NOW)


@pytest.mark.parametrize("quote", ["", '"'])
def test_lemmy_hs2019_created_expires_without_date(quote: str) -> None:
    # Lemmy signs (created)/(expires) instead of date; values quoted or bare both occur.
    headers = {k: v for k, v in _post_headers().items() if k != "Date"}
    expires = NOW_TS + 3600
    signed = foreign_cavage_headers(
        method="POST",
        target=INBOX,
        headers=headers,
        names=("(request-target)", "content-type", "digest", "host", "(created)", "(expires)"),
        key_id="https://lemmy.example/u/carol",
        algorithm="hs2019",
        extra_params={"created": f"{quote}{NOW_TS}{quote}", "expires": f"{quote}{expires}{quote}"},
    )
    parsed = parse_signature("POST", INBOX, signed, BODY)

    assert parsed.expires is not None
    verify(parsed, public_pem("rsa-2048"), NOW + timedelta(hours=1, minutes=59))
    with pytest.raises(SignatureError, match="expired"):
        verify(parsed, public_pem("rsa-2048"), NOW + timedelta(hours=2, seconds=1))


def test_missing_algorithm_means_hs2019() -> None:
    headers = foreign_cavage_headers(
        method="POST", target=INBOX, headers=_post_headers(), names=POST_NAMES, algorithm=None
    )
    parsed = parse_signature("POST", INBOX, headers, BODY)

    assert parsed.algorithm == "hs2019"
    verify(parsed, public_pem("rsa-2048"), NOW)


def test_bovine_lowercase_digest_label() -> None:
    headers = foreign_cavage_headers(
        method="POST", target=INBOX, headers=_post_headers("sha-256"), names=POST_NAMES
    )
    verify(parse_signature("POST", INBOX, headers, BODY), public_pem("rsa-2048"), NOW)


def test_hs2019_with_ed25519_key() -> None:
    headers = foreign_cavage_headers(
        method="POST",
        target=INBOX,
        headers=_post_headers(),
        names=POST_NAMES,
        key_name="ed25519",
        algorithm="hs2019",
    )
    verify(parse_signature("POST", INBOX, headers, BODY), public_pem("ed25519"), NOW)


def test_digest_list_with_sha512_is_accepted() -> None:
    headers = _post_headers()
    headers["Digest"] += ",SHA-512=" + b64(hashlib.sha512(BODY).digest())
    signed = foreign_cavage_headers(method="POST", target=INBOX, headers=headers, names=POST_NAMES)
    verify(parse_signature("POST", INBOX, signed, BODY), public_pem("rsa-2048"), NOW)


@pytest.mark.parametrize("signed_target", ["/users/bob/outbox?page=true", "/users/bob/outbox"])
def test_request_target_with_or_without_query_string(signed_target: str) -> None:
    # GoToSocial (and the draft) sign the query string, Mastodon < 4.3 did not:
    # https://github.com/superseriousbusiness/gotosocial/issues/894
    headers = foreign_cavage_headers(
        method="GET",
        target=signed_target,
        headers={"Host": "fedcop.test", "Date": NOW_HTTP},
        names=("(request-target)", "host", "date"),
    )
    parsed = parse_signature("GET", "/users/bob/outbox?page=true", headers, None)
    verify(parsed, public_pem("rsa-2048"), NOW)


def test_signature_in_authorization_header_and_signature_prefix() -> None:
    signed = foreign_cavage_headers(
        method="POST", target=INBOX, headers=_post_headers(), names=POST_NAMES
    )
    value = signed.pop("Signature")
    as_authorization = {**signed, "Authorization": f"Signature {value}"}
    prefixed = {**signed, "Signature": f"Signature {value}"}

    for headers in (as_authorization, prefixed):
        verify(parse_signature("POST", INBOX, headers, BODY), public_pem("rsa-2048"), NOW)


def test_header_names_are_case_insensitive() -> None:
    signed = foreign_cavage_headers(
        method="POST", target=INBOX, headers=_post_headers(), names=POST_NAMES
    )
    shouted = {name.upper(): value for name, value in signed.items()}
    verify(parse_signature("POST", INBOX, shouted, BODY), public_pem("rsa-2048"), NOW)


def test_rfc9421_foreign_rsa_request() -> None:
    # Shaped like Mastodon 4.7's double-knocking fallback, signed by hand here.
    digest = f"sha-256=:{sha256_b64(BODY)}:"
    params = (
        f'("@method" "@target-uri" "content-digest");created={NOW_TS};'
        'keyid="https://remote.example/users/bob#main-key";alg="rsa-v1_5-sha256"'
    )
    base = (
        '"@method": POST\n'
        '"@target-uri": https://fedcop.test/users/alice/inbox\n'
        f'"content-digest": {digest}\n'
        f'"@signature-params": {params}'
    )
    headers = {
        "Host": "fedcop.test",
        "Content-Digest": digest,
        "Signature-Input": f"sig1={params}",
        "Signature": f"sig1=:{raw_sign('rsa-2048', base.encode())}:",
    }
    parsed = parse_signature("POST", INBOX, headers, BODY)

    assert parsed.dialect == "rfc9421"
    assert parsed.key_id == "https://remote.example/users/bob#main-key"
    verify(parsed, public_pem("rsa-2048"), NOW)


def test_rfc9421_authority_path_query_and_headers() -> None:
    params = f'("@method" "@authority" "@path" "@query" "date");created={NOW_TS};keyid="k"'
    base = (
        '"@method": GET\n"@authority": fedcop.test\n"@path": /users/alice/outbox\n'
        f'"@query": ?page=2\n"date": {NOW_HTTP}\n"@signature-params": {params}'
    )
    headers = {
        "Host": "FEDCOP.test:443",
        "Date": NOW_HTTP,
        "Signature-Input": f"sig1={params}",
        "Signature": f"sig1=:{raw_sign('ed25519', base.encode())}:",
    }
    parsed = parse_signature("GET", "/users/alice/outbox?page=2", headers, None)
    verify(parsed, public_pem("ed25519"), NOW)


@pytest.mark.parametrize("key", ["rsa-2048", "ed25519"])
@pytest.mark.parametrize("url", ["https://fedcop.test/inbox", "https://fedcop.test/c?page=2&x=1"])
@pytest.mark.parametrize("method", ["GET", "POST"])
def test_round_trip_both_dialects(key: str, url: str, method: str) -> None:
    body = BODY if method == "POST" else None
    path = url.removeprefix("https://fedcop.test")
    cavage = sign_request(method, url, {"Accept": "x"}, body, "kid", private_pem(key), NOW)
    rfc9421 = sign_request_rfc9421(method, url, body, "kid", private_pem(key), NOW)

    for headers in (cavage, {**rfc9421, "Host": "fedcop.test"}):
        parsed = parse_signature(method, path, headers, body)
        assert parsed.key_id == "kid"
        verify(parsed, public_pem(key), NOW + timedelta(minutes=1))


def test_sign_without_query_for_old_mastodon_retry() -> None:
    url = "https://fedcop.test/users/alice/outbox?page=true"
    headers = sign_request(
        "GET", url, {}, None, "kid", private_pem("rsa-2048"), include_query=False
    )
    parsed = parse_signature("GET", "/users/alice/outbox?page=true", headers, None)

    assert parsed.signing_strings[1].startswith(b"(request-target): get /users/alice/outbox\n")
    verify(parsed, public_pem("rsa-2048"), parsed.created)


def test_sign_keeps_given_date_and_host_and_drops_default_port() -> None:
    given = {"date": NOW_HTTP, "HOST": "example.org"}
    headers = sign_request(
        "GET", "https://Example.ORG:443/a", given, None, "k", private_pem("ed25519")
    )
    assert headers["Date"] == NOW_HTTP
    assert headers["Host"] == "example.org"
    assert 'algorithm="hs2019"' in headers["Signature"]
    assert (
        sign_request(
            "GET", "http://Example.org:8080/a", {}, None, "k", private_pem("ed25519"), NOW
        )["Host"]
        == "example.org:8080"
    )


@pytest.mark.parametrize(
    ("key_id", "actor"),
    [
        ("https://m.example/users/bob#main-key", "https://m.example/users/bob"),
        ("https://gts.example/users/bob/main-key", "https://gts.example/users/bob"),
        ("https://bw.example/user/bob/#main-key", "https://bw.example/user/bob"),
        ("https://x.example/#main-key", "https://x.example/"),
        ("https://k.example/keys/123", "https://k.example/keys/123"),
    ],
)
def test_key_id_to_actor_id(key_id: str, actor: str) -> None:
    assert key_id_to_actor_id(key_id) == actor


def test_rfc9421_rsa_pss_sha512() -> None:
    # Checked once against the PyPI http-message-signatures signer too (not a dependency).
    params = f'("@method" "@target-uri");created={NOW_TS};keyid="k";alg="rsa-pss-sha512"'
    base = (
        '"@method": GET\n"@target-uri": https://fedcop.test/users/alice\n'
        f'"@signature-params": {params}'
    ).encode()
    key = private_key("rsa-2048")
    assert isinstance(key, rsa.RSAPrivateKey)
    pss = padding.PSS(mgf=padding.MGF1(hashes.SHA512()), salt_length=64)
    headers = {
        "Host": "fedcop.test",
        "Signature-Input": f"sig1={params}",
        "Signature": f"sig1=:{b64(key.sign(base, pss, hashes.SHA512()))}:",
    }
    parsed = parse_signature("GET", "/users/alice", headers, None)
    verify(parsed, public_pem("rsa-2048"), NOW)
