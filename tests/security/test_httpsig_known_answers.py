"""Known-answer vectors: fixed key (data/rsa-2048.pem, data/ed25519.pem), Date and body.

The expected signatures were computed once and checked independently of fedcop with OpenSSL
(signing strings written to files without a trailing newline):

    openssl dgst -sha256 -sign data/rsa-2048.pem signing-string.txt | base64 -w0
    openssl pkeyutl -sign -inkey data/ed25519.pem -rawin -in signature-base.txt | base64 -w0

RSASSA-PKCS1-v1_5 and Ed25519 are deterministic, so the values must never change.
"""

from __future__ import annotations

from fedcop.security.httpsig import parse_signature, sign_request, sign_request_rfc9421, verify
from tests.security.support import BODY, NOW, NOW_HTTP, private_pem, public_pem

ALICE = "https://fedcop.test/users/alice#main-key"
INBOX = "https://remote.example/users/bob/inbox"
BODY_SHA256 = "GYwYnH3BiO6aICFt0ThC5bUIJ4byvqdpWtR8m5fNkww="

POST_SIGNING_STRING = (
    "(request-target): post /users/bob/inbox\n"
    "host: remote.example\n"
    "date: Sun, 05 Jan 2025 10:00:00 GMT\n"
    f"digest: SHA-256={BODY_SHA256}"
)
POST_SIGNATURE = (
    "wfG8HjYSedD6tiab8BTJLy41tEYzrKGf4qcDXkgprXSuQ2f4I9S6l1EhfHYJGqebqemcVsVA28WS0HIglyvT6BYNcCMT"
    "5B0WV2MitsdQtDZBPNWYQPIC2Zyl6fUEKrQDA4dortisZVeQpf5dDa+z9NVCUb6ZORGdz83LKJbqyk9HGjBQOhCzzw6F"
    "JsTLQSs93/bUqNXeSzvI9IGPADmIPLfsXhVtw6MHCZ5aReV3Oeu7HX+XGM1aGwP03PxzLGcYCYODWa1aljOguMcwYxhR"
    "vWPhd45JaW404pEA5pbloUviRpgmkTgpgNTsseZvPJbHgIG3G6e3moY6LznauxnI9Q=="
)
GET_SIGNING_STRING = (
    "(request-target): get /users/bob/outbox?page=true\n"
    "host: remote.example\n"
    "date: Sun, 05 Jan 2025 10:00:00 GMT"
)
GET_SIGNATURE = (
    "mBCr4arEKGV/yB8zkypR60g8GYxPOfgoX5yCLpzz7kE5DRcL8AdMLmrTWkgSePqlGjEV49o8APwQCKGFcUoXeOAClt1T"
    "/gpIUq59e98VvNIkwCbL2GUzMhNcXmLiKAUZjNJoxUKo04dzYs69AcrwFvWLA7oKP0jDEVPLHmAyY0HYNaesms623nPO"
    "SwyHLzcpu6By6Yia5yfNGo3NWXjVy7BtHNJys+/WOJbVx5LtjZSxxeltzhu13flvFbg5cTOlCWBellih58XRmCQR5bdL"
    "qtx6rA1xPOIM+Qb2HOGHdmxG+b2THDVR8YI1Mi1IB0y/PsAnMnsPT5CQAJDMwDR5Qw=="
)
RFC9421_SIGNATURE_INPUT = (
    'sig1=("@method" "@target-uri" "content-digest");created=1736071200;'
    'keyid="https://fedcop.test/users/alice#main-key"'
)
RFC9421_BASE = (
    '"@method": POST\n'
    '"@target-uri": https://remote.example/users/bob/inbox\n'
    f'"content-digest": sha-256=:{BODY_SHA256}:\n'
    '"@signature-params": ("@method" "@target-uri" "content-digest");created=1736071200;'
    'keyid="https://fedcop.test/users/alice#main-key"'
)
RFC9421_SIGNATURE = (
    "ykcEtqTXuZy8vLuPOtNjNegTBfb8jbbQBYRdeUxEfA0rNnYBAciJvNW728qunwyhPKezXaqEX9l7AuqDfd8qDbnR1zVb"
    "4ganm58LbhfOiJ3NqPVvJQ17v/57voknB1drA9PYgbcJeU13oG2y2tPQGFIvUez3XRh52jUn8YxKJDLcyoE/8ydiqNwn"
    "fncYEnwr9QiT7dr7t1TblmucPcylzyOtjO74WklG2Mtdy/GRHy+0Kg93IzD+73rvnD40t7I/ga2W+Jvg7E85WtMxUT31"
    "J6kyWOfh9txIDt2nWk7p7J1rQHKOTArq3dZ8tiHEWmIBkLuwntSxNZ0VbDJPfRF3vg=="
)
ED25519_SIGNATURE = (
    "y5vxzzEJn4LReVyXa3NZxssy+oYGBdBzOFYuSGCXL1s44zFg1IZTW794pMyXZui6Fi2MYuo3aJrsopr/uWEUBA=="
)


def test_cavage_post_known_answer() -> None:
    headers = sign_request("POST", INBOX, {}, BODY, ALICE, private_pem("rsa-2048"), NOW)

    assert headers == {
        "Date": NOW_HTTP,
        "Host": "remote.example",
        "Digest": f"SHA-256={BODY_SHA256}",
        "Signature": f'keyId="{ALICE}",algorithm="rsa-sha256",'
        f'headers="(request-target) host date digest",signature="{POST_SIGNATURE}"',
    }
    parsed = parse_signature("POST", "/users/bob/inbox", headers, BODY)
    assert parsed.signing_strings == (POST_SIGNING_STRING.encode(),)
    verify(parsed, public_pem("rsa-2048"), NOW)


def test_cavage_get_known_answer_signs_the_query_string() -> None:
    url = "https://remote.example/users/bob/outbox?page=true"
    headers = sign_request("GET", url, {}, None, ALICE, private_pem("rsa-2048"), NOW)

    assert "Digest" not in headers
    assert headers["Signature"] == (
        f'keyId="{ALICE}",algorithm="rsa-sha256",'
        f'headers="(request-target) host date",signature="{GET_SIGNATURE}"'
    )
    parsed = parse_signature("GET", "/users/bob/outbox?page=true", headers, None)
    assert parsed.signing_strings[0] == GET_SIGNING_STRING.encode()
    verify(parsed, public_pem("rsa-2048"), NOW)


def test_rfc9421_rsa_known_answer() -> None:
    headers = sign_request_rfc9421("POST", INBOX, BODY, ALICE, private_pem("rsa-2048"), NOW)

    assert headers == {
        "Content-Digest": f"sha-256=:{BODY_SHA256}:",
        "Signature-Input": RFC9421_SIGNATURE_INPUT,
        "Signature": f"sig1=:{RFC9421_SIGNATURE}:",
    }
    parsed = parse_signature(
        "POST", "/users/bob/inbox", {**headers, "Host": "remote.example"}, BODY
    )
    assert parsed.signing_strings == (RFC9421_BASE.encode(),)
    verify(parsed, public_pem("rsa-2048"), NOW)


def test_rfc9421_ed25519_known_answer() -> None:
    headers = sign_request_rfc9421(
        "POST", INBOX, BODY, ALICE, private_pem("ed25519"), NOW, include_alg=True
    )

    assert headers["Signature-Input"] == RFC9421_SIGNATURE_INPUT + ';alg="ed25519"'
    assert headers["Signature"] == f"sig1=:{ED25519_SIGNATURE}:"
    parsed = parse_signature(
        "POST", "/users/bob/inbox", {**headers, "Host": "remote.example"}, BODY
    )
    verify(parsed, public_pem("ed25519"), NOW)
