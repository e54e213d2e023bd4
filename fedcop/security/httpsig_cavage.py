"""draft-cavage HTTP Signatures, the dialect every fediverse server speaks (INTEROP §3, §4).

Spec: https://datatracker.ietf.org/doc/html/draft-cavage-http-signatures-12
Import the public API from `fedcop.security.httpsig`.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from datetime import datetime

from fedcop.security.httpsig_common import (
    ParsedSignature,
    PrivateKey,
    SignatureError,
    authority_of,
    b64,
    b64decode,
    body_digest,
    digests_equal,
    from_timestamp,
    http_date,
    lower_headers,
    parse_http_date,
    scheme_for,
    sign_bytes,
)

SUPPORTED_ALGORITHMS = frozenset({"rsa-sha256", "hs2019"})

# One `name="value"` or `name=value` pair of the Signature header, anchored at the position the
# previous pair ended, so anything unparseable in between is caught instead of skipped.
_PARAM = re.compile(r'\s*([A-Za-z][A-Za-z0-9_-]*)\s*=\s*(?:"([^"]*)"|([^",\s]*))\s*(,|$)')
_NUMBER = re.compile(r"\d{1,12}(?:\.\d{1,9})?")


def sign(
    method: str,
    url: str,
    headers: Mapping[str, str],
    body: bytes | None,
    key_id: str,
    private_key: PrivateKey,
    now: datetime,
    *,
    include_query: bool = True,
) -> dict[str, str]:
    """Headers to add to an outgoing request, signed exactly as INTEROP §3 prescribes.

    `include_query=False` reproduces the old Mastodon form of `(request-target)` without the
    query string, for a retry after a 401, as GoToSocial does
    (https://github.com/superseriousbusiness/gotosocial/pull/2659; Mastodon accepts the query
    string since 4.3: https://github.com/mastodon/mastodon/pull/28476).
    """
    given = lower_headers(headers)
    _, authority, target = authority_of(url)
    if not include_query:
        target = target.split("?", 1)[0]
    added = {"Date": given.get("date") or http_date(now), "Host": given.get("host") or authority}
    lines = [f"(request-target): {method.lower()} {target}", f"host: {added['Host']}"]
    # Always sign Date: Pleroma cannot verify (created) and PeerTube insists on date
    # (https://github.com/Chocobozzz/PeerTube/issues/4963).
    lines.append(f"date: {added['Date']}")
    names = "(request-target) host date"
    if method.upper() == "POST" or body:
        added["Digest"] = "SHA-256=" + b64(hashlib.sha256(body or b"").digest())
        lines.append(f"digest: {added['Digest']}")
        names += " digest"
    scheme = scheme_for("hs2019", private_key)
    algorithm = "rsa-sha256" if scheme == "rsa-v1_5-sha256" else "hs2019"
    signature = b64(sign_bytes(private_key, "\n".join(lines).encode("utf-8"), scheme))
    added["Signature"] = (
        f'keyId="{key_id}",algorithm="{algorithm}",headers="{names}",signature="{signature}"'
    )
    return added


def parse_params(value: str) -> dict[str, str]:
    """Split a Signature header into its parameters; SignatureError if it is malformed."""
    value = value.strip()
    # Old PeerTube sent the Authorization form `Signature keyId=...` in the Signature header
    # (https://github.com/Chocobozzz/PeerTube/issues/3075); Mastodon tolerates it, so do we.
    if value[:10].lower() == "signature ":
        value = value[10:]
    params: dict[str, str] = {}
    pos = 0
    while pos < len(value):
        match = _PARAM.match(value, pos)
        if match is None or match.end() == pos:
            raise SignatureError("malformed Signature header")
        name = match.group(1)
        if name in params:
            raise SignatureError(f"malformed Signature header: {name} given twice")
        params[name] = match.group(2) if match.group(2) is not None else match.group(3)
        pos = match.end()
    for required in ("keyId", "signature"):
        if not params.get(required):
            raise SignatureError(f"Signature header has no {required}")
    return params


def parse(
    method: str, path_with_query: str, headers: Mapping[str, str], body: bytes | None
) -> ParsedSignature:
    """Parse and pre-check a cavage signature; the crypto happens later in `verify`.

    `headers` has lower-cased names (`httpsig.parse_signature` lowers them once for both
    dialects).
    """
    lowered = headers
    raw = lowered.get("signature") or _from_authorization(lowered.get("authorization", ""))
    if not raw:
        raise SignatureError("request is not signed (no Signature header)")
    params = parse_params(raw)
    algorithm = params.get("algorithm", "hs2019").lower() or "hs2019"
    if algorithm not in SUPPORTED_ALGORITHMS:
        raise SignatureError(f"unsupported signature algorithm {algorithm!r}")
    # A missing `headers` parameter means `date` for Mastodon
    # (https://github.com/mastodon/mastodon/pull/4146); the checks below then reject it.
    names = tuple(params.get("headers", "date").lower().split()) or ("date",)
    _check_required(names, method, algorithm)
    created, expires = _timestamps(names, params, lowered)
    _check_digest(names, lowered, body)
    # Every line but (request-target) is the same for both target variants: build them once.
    lines = ["" if name == "(request-target)" else _line(name, params, lowered) for name in names]
    signing_strings = tuple(
        _signing_string(names, lines, method, target)
        for target in _target_variants(path_with_query)
    )
    return ParsedSignature(
        dialect="cavage",
        key_id=params["keyId"],
        algorithm=algorithm,
        signature=b64decode(params["signature"], "signature"),
        signing_strings=signing_strings,
        created=created,
        expires=expires,
        covered=names,
    )


def _from_authorization(value: str) -> str:
    return value[10:] if value[:10].lower() == "signature " else ""


def _check_required(names: tuple[str, ...], method: str, algorithm: str) -> None:
    """INTEROP §4 minimum coverage, the same set Mastodon enforces
    (https://github.com/mastodon/mastodon/pull/14556)."""
    signed = set(names)
    if algorithm != "hs2019" and signed & {"(created)", "(expires)"}:
        # draft-cavage-12 §2.3: (created)/(expires) are an error with rsa-*/hmac-*/ecdsa-*.
        raise SignatureError(f"(created) and (expires) are not allowed with {algorithm}")
    if not signed & {"date", "(created)"}:
        raise SignatureError("neither date nor (created) is signed")
    if not signed & {"(request-target)", "digest"}:
        raise SignatureError("neither (request-target) nor digest is signed")
    verb = method.upper()
    if verb in ("GET", "HEAD") and "host" not in signed:
        raise SignatureError("host is not signed")
    if verb == "POST" and "digest" not in signed:
        raise SignatureError("digest is not signed")


def _timestamps(
    names: tuple[str, ...], params: Mapping[str, str], headers: Mapping[str, str]
) -> tuple[datetime, datetime | None]:
    """The signed creation time ((created) wins over Date, as in Mastodon) and expiry."""
    expires = None
    if "(expires)" in names:
        expires = from_timestamp(float(_number(params, "expires")))
    if "(created)" in names:
        return from_timestamp(float(_number(params, "created"))), expires
    if "date" not in headers:
        raise SignatureError("date is signed but the Date header is missing")
    return parse_http_date(headers["date"]), expires


def _number(params: Mapping[str, str], name: str) -> str:
    value = params.get(name)
    if value is None:
        raise SignatureError(f"({name}) is signed but the {name} parameter is missing")
    if not _NUMBER.fullmatch(value):
        raise SignatureError(f"the {name} parameter {value!r} is not a timestamp")
    return value


def _check_digest(names: tuple[str, ...], headers: Mapping[str, str], body: bytes | None) -> None:
    """Check `Digest` against the body; accept `SHA-256=` and bovine's `sha-256=`, and a list."""
    value = headers.get("digest")
    if value is None:
        if "digest" in names:
            raise SignatureError("digest is signed but the Digest header is missing")
        return
    checked = False
    for item in value.split(","):
        label, sep, encoded = item.strip().partition("=")
        expected = body_digest(body, label) if sep else None
        if expected is None:
            continue  # unknown digest algorithms are skipped, as RFC 3230 allows
        if not digests_equal(expected, b64decode(encoded, "Digest")):
            raise SignatureError("Digest does not match the body")
        checked = True
    if not checked:
        raise SignatureError("Digest has no SHA-256 or SHA-512 value")


def _target_variants(path_with_query: str) -> tuple[str, ...]:
    """With the query string first (the draft's :path), then without it: GoToSocial and the
    draft include it, Mastodon before 4.3 did not
    (https://github.com/superseriousbusiness/gotosocial/issues/894)."""
    path = path_with_query or "/"
    bare = path.split("?", 1)[0]
    return (path, bare) if bare != path else (path,)


def _line(name: str, params: Mapping[str, str], headers: Mapping[str, str]) -> str:
    if name in ("(created)", "(expires)"):
        return f"{name}: {params[name[1:-1]]}"
    if name.startswith("("):
        raise SignatureError(f"unknown pseudo-header {name} is signed")
    value = headers.get(name)
    if value is None:
        raise SignatureError(f"{name} is signed but the header is missing")
    return f"{name}: {value.strip()}"


def _signing_string(names: tuple[str, ...], lines: list[str], method: str, target: str) -> bytes:
    request_target = f"(request-target): {method.lower()} {target}"
    filled = [request_target if name == "(request-target)" else line
              for name, line in zip(names, lines, strict=True)]  # fmt: skip
    return "\n".join(filled).encode("utf-8")
