"""One refusal per INTEROP §4 rule, each with its specific reason."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from datetime import timedelta

import pytest

from fedcop.security.httpsig import (
    SignatureError,
    check_freshness,
    load_public_key,
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
    private_pem,
    public_pem,
    raw_sign,
    sha256_b64,
)

INBOX = "/users/alice/inbox"
POST_NAMES = ("(request-target)", "host", "date", "digest")
KEY = "rsa-2048"


def _signed_post(names: tuple[str, ...] = POST_NAMES, **overrides: str) -> dict[str, str]:
    headers = {
        "Host": "fedcop.test",
        "Date": NOW_HTTP,
        "Digest": f"SHA-256={sha256_b64(BODY)}",
        "Content-Type": "application/activity+json",
        **overrides,
    }
    return foreign_cavage_headers(method="POST", target=INBOX, headers=headers, names=names)


def _refused(
    headers: Mapping[str, str],
    match: str,
    *,
    method: str = "POST",
    path: str = INBOX,
    body: bytes | None = BODY,
    key: str = KEY,
) -> None:
    with pytest.raises(SignatureError, match=match) as caught:
        verify(parse_signature(method, path, headers, body), public_pem(key), NOW)
    assert caught.value.reason == str(caught.value)


# --- tampering -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("header", "value"),
    [
        ("Host", "evil.example"),
        ("Date", "Sun, 05 Jan 2025 10:00:01 GMT"),
        ("Content-Type", "text/plain"),
    ],
)
def test_tampered_signed_header(header: str, value: str) -> None:
    names = (*POST_NAMES, "content-type")
    headers = {**_signed_post(names), header: value}
    _refused(headers, "signature does not verify")


def test_tampered_request_target() -> None:
    _refused(_signed_post(), "signature does not verify", path="/users/mallory/inbox")


def test_tampered_body_with_matching_digest() -> None:
    body = b'{"type":"Block"}'
    headers = {**_signed_post(), "Digest": f"SHA-256={sha256_b64(body)}"}
    _refused(headers, "signature does not verify", body=body)


def test_tampered_body_digest_mismatch() -> None:
    _refused(_signed_post(), "Digest does not match the body", body=b'{"type":"Block"}')


def test_wrong_key() -> None:
    _refused(_signed_post(), "signature does not verify", key="rsa-2048-other")


def test_key_type_does_not_match_algorithm() -> None:
    _refused(_signed_post(), "does not match an Ed25519 key", key="ed25519")


# --- clock window ----------------------------------------------------------------------------


def test_stale_date() -> None:
    parsed = parse_signature("POST", INBOX, _signed_post(), BODY)
    check_freshness(parsed, NOW + timedelta(minutes=65))
    with pytest.raises(SignatureError, match="signature date is too old"):
        verify(parsed, public_pem(KEY), NOW + timedelta(minutes=65, seconds=1))


def test_future_date() -> None:
    parsed = parse_signature("POST", INBOX, _signed_post(), BODY)
    check_freshness(parsed, NOW - timedelta(hours=1))
    with pytest.raises(SignatureError, match="more than 1 hour in the future"):
        verify(parsed, public_pem(KEY), NOW - timedelta(hours=1, seconds=1))


def _hs2019(names: tuple[str, ...], params: dict[str, str]) -> dict[str, str]:
    headers = {"Host": "fedcop.test", "Digest": f"SHA-256={sha256_b64(BODY)}"}
    return foreign_cavage_headers(
        method="POST",
        target=INBOX,
        headers=headers,
        names=names,
        algorithm="hs2019",
        extra_params=params,
    )


def test_expired_expires() -> None:
    headers = _hs2019(
        ("(request-target)", "host", "digest", "(created)", "(expires)"),
        {"created": str(NOW_TS), "expires": str(NOW_TS + 10)},
    )
    parsed = parse_signature("POST", INBOX, headers, BODY)
    verify(parsed, public_pem(KEY), NOW + timedelta(hours=1, seconds=10))
    with pytest.raises(SignatureError, match="signature has expired"):
        verify(parsed, public_pem(KEY), NOW + timedelta(hours=1, seconds=11))


def test_expires_is_capped_at_12_hours() -> None:
    headers = _hs2019(
        ("(request-target)", "host", "digest", "(created)", "(expires)"),
        {"created": str(NOW_TS), "expires": str(NOW_TS + 86400)},
    )
    parsed = parse_signature("POST", INBOX, headers, BODY)
    verify(parsed, public_pem(KEY), NOW + timedelta(hours=13))
    with pytest.raises(SignatureError, match="too old"):
        verify(parsed, public_pem(KEY), NOW + timedelta(hours=13, seconds=1))


def test_created_in_the_future() -> None:
    headers = _hs2019(
        ("(request-target)", "host", "digest", "(created)"), {"created": str(NOW_TS + 7201)}
    )
    _refused(headers, "in the future")


# --- algorithm rules -------------------------------------------------------------------------


@pytest.mark.parametrize("pseudo", ["(created)", "(expires)"])
def test_created_or_expires_with_rsa_sha256(pseudo: str) -> None:
    headers = foreign_cavage_headers(
        method="POST",
        target=INBOX,
        headers={"Host": "fedcop.test", "Date": NOW_HTTP, "Digest": f"SHA-256={sha256_b64(BODY)}"},
        names=(*POST_NAMES, pseudo),
        algorithm="rsa-sha256",
        extra_params={pseudo[1:-1]: str(NOW_TS)},
    )
    _refused(headers, r"\(created\) and \(expires\) are not allowed with rsa-sha256")


@pytest.mark.parametrize("algorithm", ["rsa-sha512", "hmac-sha256", "ecdsa-sha256", "x"])
def test_unknown_algorithm(algorithm: str) -> None:
    headers = foreign_cavage_headers(
        method="POST",
        target=INBOX,
        headers={"Host": "fedcop.test", "Date": NOW_HTTP, "Digest": f"SHA-256={sha256_b64(BODY)}"},
        names=POST_NAMES,
        algorithm=algorithm,
    )
    _refused(headers, "unsupported signature algorithm")


# --- required coverage -----------------------------------------------------------------------


def test_post_without_signed_digest() -> None:
    _refused(_signed_post(("(request-target)", "host", "date")), "digest is not signed")


def test_get_without_signed_host() -> None:
    headers = foreign_cavage_headers(
        method="GET",
        target="/users/alice",
        headers={"Host": "fedcop.test", "Date": NOW_HTTP},
        names=("(request-target)", "date"),
    )
    _refused(headers, "host is not signed", method="GET", path="/users/alice", body=None)


def test_neither_date_nor_created_signed() -> None:
    _refused(_signed_post(("(request-target)", "host", "digest")), "neither date nor \\(created\\)")


def test_neither_request_target_nor_digest_signed() -> None:
    headers = foreign_cavage_headers(
        method="GET",
        target="/users/alice",
        headers={"Host": "fedcop.test", "Date": NOW_HTTP},
        names=("host", "date"),
    )
    _refused(headers, "neither \\(request-target\\) nor digest", method="GET", path="/users/alice")


def test_missing_headers_parameter_means_date_only() -> None:
    headers = _signed_post()
    headers["Signature"] = headers["Signature"].replace(
        'headers="(request-target) host date digest",', ""
    )
    _refused(headers, "neither \\(request-target\\) nor digest")


def test_signed_date_header_missing() -> None:
    headers = _signed_post()
    del headers["Date"]
    _refused(headers, "date is signed but the Date header is missing")


def test_signed_digest_header_missing() -> None:
    headers = _signed_post()
    del headers["Digest"]
    _refused(headers, "digest is signed but the Digest header is missing")


def test_signed_header_missing() -> None:
    headers = _signed_post((*POST_NAMES, "content-type"))
    del headers["Content-Type"]
    _refused(headers, "content-type is signed but the header is missing")


def test_unparseable_date() -> None:
    _refused(_signed_post(Date="yesterday"), "is not a valid HTTP date")


def test_digest_without_known_algorithm() -> None:
    headers = _signed_post(Digest="MD5=" + b64(hashlib.md5(BODY).digest()))  # noqa: S324
    _refused(headers, "Digest has no SHA-256")


def test_created_parameter_missing() -> None:
    headers = _hs2019(("(request-target)", "host", "digest", "(created)"), {})
    _refused(headers, "the created parameter is missing")


# --- malformed headers -----------------------------------------------------------------------


def test_unsigned_request() -> None:
    _refused({"Host": "fedcop.test", "Date": NOW_HTTP}, "not signed")


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("garbage", "malformed Signature header"),
        ('keyId="a" signature="b"', "malformed Signature header"),
        ('keyId="a",keyId="b",signature="c"', "keyId given twice"),
        ('keyId="a",headers="date"', "Signature header has no signature"),
        ('signature="AAAA",headers="date"', "Signature header has no keyId"),
        (
            'keyId="a",headers="(request-target) host date digest",signature="!!!"',
            "not valid base64",
        ),
    ],
)
def test_malformed_signature_header(value: str, reason: str) -> None:
    headers = {**_signed_post(), "Signature": value}
    _refused(headers, reason)


def test_bad_public_key_pem() -> None:
    with pytest.raises(SignatureError, match="not a valid PEM key"):
        load_public_key("-----BEGIN PUBLIC KEY-----\nnope\n-----END PUBLIC KEY-----\n")


# --- RFC 9421 --------------------------------------------------------------------------------


def _rfc9421(body: bytes | None = BODY, **overrides: str) -> dict[str, str]:
    method = "POST" if body is not None else "GET"
    url = "https://fedcop.test/users/alice/inbox"
    headers = sign_request_rfc9421(method, url, body, "kid", private_pem(KEY), NOW)
    return {"Host": "fedcop.test", **headers, **overrides}


def _hand_signed(params: str, lines: str, key: str = KEY, **extra: str) -> dict[str, str]:
    base = f'{lines}"@signature-params": {params}'
    return {
        "Host": "fedcop.test",
        **extra,
        "Signature-Input": f"sig1={params}",
        "Signature": f"sig1=:{raw_sign(key, base.encode())}:",
    }


def test_rfc9421_tampered_target() -> None:
    _refused(_rfc9421(), "signature does not verify", path="/users/mallory/inbox")


def test_rfc9421_tampered_host() -> None:
    _refused(_rfc9421(Host="evil.example"), "signature does not verify")


def test_rfc9421_tampered_method() -> None:
    headers = _rfc9421(None)
    _refused(headers, "signature does not verify", method="DELETE", body=None)


def test_rfc9421_content_digest_mismatch() -> None:
    _refused(_rfc9421(), "Content-Digest does not match the body", body=b"{}")


def test_rfc9421_wrong_key() -> None:
    _refused(_rfc9421(), "signature does not verify", key="rsa-2048-other")


def test_rfc9421_stale_and_future() -> None:
    parsed = parse_signature("POST", INBOX, _rfc9421(), BODY)
    with pytest.raises(SignatureError, match="too old"):
        verify(parsed, public_pem(KEY), NOW + timedelta(minutes=66))
    with pytest.raises(SignatureError, match="future"):
        verify(parsed, public_pem(KEY), NOW - timedelta(minutes=61))


def test_rfc9421_expired() -> None:
    params = f'("@method" "@target-uri");created={NOW_TS};expires={NOW_TS + 60};keyid="k"'
    lines = '"@method": GET\n"@target-uri": https://fedcop.test/users/alice\n'
    headers = _hand_signed(params, lines)
    parsed = parse_signature("GET", "/users/alice", headers, None)
    verify(parsed, public_pem(KEY), NOW + timedelta(minutes=61))
    with pytest.raises(SignatureError, match="signature has expired"):
        verify(parsed, public_pem(KEY), NOW + timedelta(minutes=61, seconds=1))


def test_rfc9421_post_must_cover_content_digest() -> None:
    params = f'("@method" "@target-uri");created={NOW_TS};keyid="k"'
    lines = '"@method": POST\n"@target-uri": https://fedcop.test/users/alice/inbox\n'
    _refused(_hand_signed(params, lines), "content-digest is not signed")


def test_rfc9421_must_cover_method() -> None:
    params = f'("@target-uri");created={NOW_TS};keyid="k"'
    lines = '"@target-uri": https://fedcop.test/users/alice\n'
    _refused(
        _hand_signed(params, lines), "@method is not signed", method="GET", path="/users/alice"
    )


@pytest.mark.parametrize(
    ("components", "reason"),
    [
        ('"@method" "@path"', "neither @target-uri nor @authority is signed"),
        ('"@method" "@authority" "@path"', "neither @target-uri nor @path/@query is signed"),
    ],
)
def test_rfc9421_must_cover_the_target(components: str, reason: str) -> None:
    params = f'({components});created={NOW_TS};keyid="k"'
    headers = _hand_signed(params, "")
    _refused(headers, reason, method="GET", path="/users/alice?page=2", body=None)


def test_rfc9421_missing_content_digest_header() -> None:
    headers = _rfc9421()
    del headers["Content-Digest"]
    _refused(headers, "content-digest is signed but the header is missing")


@pytest.mark.parametrize(
    ("params", "reason"),
    [
        ('("@method" "@target-uri");keyid="k"', "no created parameter"),
        (f'("@method" "@target-uri");created={NOW_TS}', "no keyid parameter"),
        (
            f'("@method" "@target-uri");created="{NOW_TS}";keyid="k"',
            "created parameter is not an integer",
        ),
        (
            f'("@method" "@target-uri");created={NOW_TS};keyid="k";alg="hmac-sha256"',
            "unsupported signature algorithm",
        ),
        (
            f'("@method" "@target-uri" "@status");created={NOW_TS};keyid="k"',
            "unsupported derived component",
        ),
        (
            f'("@method" "@target-uri" "x";sf);created={NOW_TS};keyid="k"',
            "component parameters are not supported",
        ),
        (f'("@method" "@method" "@target-uri");created={NOW_TS};keyid="k"', "covered twice"),
        (f'"@method";created={NOW_TS};keyid="k"', "not an inner list"),
        (f'("@method" "@target-uri";created={NOW_TS};keyid="k"', "malformed Signature-Input"),
        (f'("@method" target);created={NOW_TS};keyid="k"', "components must be strings"),
    ],
)
def test_rfc9421_bad_signature_input(params: str, reason: str) -> None:
    headers = {
        "Host": "fedcop.test",
        "Signature-Input": f"sig1={params}",
        "Signature": "sig1=:AAAA:",
    }
    _refused(headers, reason, method="GET", path="/users/alice", body=None)


@pytest.mark.parametrize(
    ("signature", "reason"),
    [
        ("sig2=:AAAA:", "no Signature-Input label has a matching Signature"),
        ('sig1="AAAA"', "not a byte sequence"),
        ("sig1=:!!:", "malformed Signature header"),
        ("", "no Signature-Input label has a matching Signature"),
    ],
)
def test_rfc9421_bad_signature(signature: str, reason: str) -> None:
    headers = {**_rfc9421(), "Signature": signature}
    _refused(headers, reason)


def test_rfc9421_alg_does_not_match_key() -> None:
    params = f'("@method" "@target-uri");created={NOW_TS};keyid="k";alg="ed25519"'
    lines = '"@method": GET\n"@target-uri": https://fedcop.test/users/alice\n'
    headers = _hand_signed(params, lines)
    _refused(headers, "does not match an RSA key", method="GET", path="/users/alice", body=None)


def test_cavage_signature_ignored_when_signature_input_present() -> None:
    # A request carrying Signature-Input is RFC 9421, whatever else it carries.
    headers = {**sign_request("GET", "https://fedcop.test/a", {}, None, "k", private_pem(KEY), NOW)}
    headers["Signature-Input"] = f'sig1=("@method" "@target-uri");created={NOW_TS};keyid="k"'
    _refused(headers, "malformed Signature header", method="GET", path="/a", body=None)
