"""RFC 9421 HTTP Message Signatures: the subset the fediverse uses (INTEROP §4).

Mastodon verifies these since 4.5 and, since 4.7, signs with them as a "double knocking"
fallback after a 400/401 to a draft-cavage request. Covered components we understand:
`@method @target-uri @authority @scheme @path @query @request-target` and plain header names
(no component parameters); signature parameters `created keyid alg expires` (others ignored).
Algorithms: rsa-v1_5-sha256, rsa-pss-sha512, ed25519.

Spec: https://www.rfc-editor.org/rfc/rfc9421
Content-Digest: https://www.rfc-editor.org/rfc/rfc9530
Import the public API from `fedcop.security.httpsig`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from datetime import datetime

from fedcop.security.httpsig_common import (
    ParsedSignature,
    PrivateKey,
    Scheme,
    SignatureError,
    as_utc,
    authority_of,
    b64,
    body_digest,
    digests_equal,
    from_timestamp,
    lower_headers,
    scheme_for,
    sign_bytes,
)
from fedcop.security.httpsig_sf import (
    Member,
    Params,
    Token,
    parse_dictionary,
    serialize_inner_list,
)

SUPPORTED_ALGORITHMS = frozenset({"rsa-v1_5-sha256", "rsa-pss-sha512", "ed25519"})
DERIVED = frozenset(
    {"@method", "@target-uri", "@authority", "@scheme", "@path", "@query", "@request-target"}
)
_DEFAULT_PORTS = {"http": "80", "https": "443"}


def sign(
    method: str,
    url: str,
    body: bytes | None,
    key_id: str,
    private_key: PrivateKey,
    now: datetime,
    *,
    label: str = "sig1",
    include_alg: bool = False,
) -> dict[str, str]:
    """Headers to add for an RFC 9421 signature over `@method @target-uri [content-digest]`."""
    scheme, authority, target = authority_of(url)
    values = {"@method": method.upper(), "@target-uri": f"{scheme}://{authority}{target}"}
    added: dict[str, str] = {}
    if method.upper() == "POST" or body:
        added["Content-Digest"] = f"sha-256=:{b64(hashlib.sha256(body or b'').digest())}:"
        values["content-digest"] = added["Content-Digest"]
    algorithm: Scheme = scheme_for("", private_key)
    params: Params = {"created": int(as_utc(now).timestamp()), "keyid": key_id}
    if include_alg:
        params["alg"] = algorithm
    signature_params = serialize_inner_list(list(values), params)
    base = _signature_base(values, signature_params)
    added["Signature-Input"] = f"{label}={signature_params}"
    added["Signature"] = f"{label}=:{b64(sign_bytes(private_key, base, algorithm))}:"
    return added


def parse(
    method: str,
    path_with_query: str,
    headers: Mapping[str, str],
    body: bytes | None,
    *,
    scheme: str = "https",
) -> ParsedSignature:
    """Parse and pre-check an RFC 9421 signature; the crypto happens later in `verify`."""
    lowered = lower_headers(headers)
    inputs = parse_dictionary(lowered.get("signature-input", ""), "Signature-Input")
    signatures = parse_dictionary(lowered.get("signature", ""), "Signature")
    label = next((name for name in inputs if name in signatures), None)
    if label is None:
        raise SignatureError("no Signature-Input label has a matching Signature")
    components, params = _inner_list(inputs[label])
    signature = signatures[label][0]
    if not isinstance(signature, bytes) or not signature:
        raise SignatureError(f"Signature {label} is not a byte sequence")
    key_id, algorithm, created, expires = _signature_params(params)
    _check_coverage(components, method, path_with_query)
    _check_content_digest(components, lowered, body)
    context = _Request(method, scheme, path_with_query, lowered)
    values = {name: context.value(name) for name in components}
    base = _signature_base(values, serialize_inner_list(components, params))
    return ParsedSignature(
        dialect="rfc9421",
        key_id=key_id,
        algorithm=algorithm,
        signature=signature,
        signing_strings=(base,),
        created=created,
        expires=expires,
        covered=tuple(components),
    )


def _inner_list(member: Member) -> tuple[list[str], Params]:
    items, params = member
    if not isinstance(items, list):
        raise SignatureError("Signature-Input member is not an inner list")
    names: list[str] = []
    for value, item_params in items:
        if not isinstance(value, str) or isinstance(value, Token):
            raise SignatureError("Signature-Input components must be strings")
        if item_params:
            raise SignatureError(f"component parameters are not supported ({value!r})")
        if value in names:
            raise SignatureError(f"component {value!r} is covered twice")
        if value.startswith("@") and value not in DERIVED:
            raise SignatureError(f"unsupported derived component {value!r}")
        names.append(value)
    return names, params


def _signature_params(params: Params) -> tuple[str, str, datetime, datetime | None]:
    key_id = params.get("keyid")
    if not isinstance(key_id, str) or not key_id:
        raise SignatureError("Signature-Input has no keyid parameter")
    algorithm = params.get("alg", "")
    if not isinstance(algorithm, str) or (algorithm and algorithm not in SUPPORTED_ALGORITHMS):
        raise SignatureError(f"unsupported signature algorithm {algorithm!r}")
    created = _int_param(params, "created")
    if created is None:
        raise SignatureError("Signature-Input has no created parameter")
    expires = _int_param(params, "expires")
    return (
        key_id,
        algorithm,
        from_timestamp(created),
        None if expires is None else from_timestamp(expires),
    )


def _int_param(params: Params, name: str) -> int | None:
    value = params.get(name)
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool):
        raise SignatureError(f"the {name} parameter is not an integer")
    return value


def _check_coverage(names: list[str], method: str, path_with_query: str) -> None:
    """What must be signed so the signature cannot be replayed elsewhere: the method, the full
    target (authority, path and any query) and, on POST, the body through content-digest."""
    covered = set(names)
    if "@method" not in covered:
        raise SignatureError("@method is not signed")
    if "@target-uri" not in covered:
        if not covered & {"@authority", "host"}:
            raise SignatureError("neither @target-uri nor @authority is signed")
        path_covered = "@path" in covered and ("?" not in path_with_query or "@query" in covered)
        if "@request-target" not in covered and not path_covered:
            raise SignatureError("neither @target-uri nor @path/@query is signed")
    if method.upper() == "POST" and "content-digest" not in covered:
        raise SignatureError("content-digest is not signed")


def _check_content_digest(names: list[str], headers: Mapping[str, str], body: bytes | None) -> None:
    value = headers.get("content-digest")
    if value is None:
        if "content-digest" in names:
            raise SignatureError("content-digest is signed but the header is missing")
        return
    checked = False
    for algorithm, (digest, _) in parse_dictionary(value, "Content-Digest").items():
        expected = body_digest(body, algorithm)
        if expected is None or not isinstance(digest, bytes):
            continue  # RFC 9530 §2: unknown algorithms are ignored
        if not digests_equal(expected, digest):
            raise SignatureError("Content-Digest does not match the body")
        checked = True
    if not checked:
        raise SignatureError("Content-Digest has no sha-256 or sha-512 value")


class _Request:
    """Derives component values (RFC 9421 §2.2) from what the server saw."""

    def __init__(self, method: str, scheme: str, target: str, headers: Mapping[str, str]) -> None:
        self.method = method.upper()
        self.scheme = scheme.lower()
        self.target = target or "/"
        self.headers = headers

    def value(self, name: str) -> str:
        path, _, query = self.target.partition("?")
        match name:
            case "@method":
                return self.method
            case "@scheme":
                return self.scheme
            case "@authority":
                return self.authority()
            case "@target-uri":
                return f"{self.scheme}://{self.authority()}{self.target}"
            case "@request-target":
                return self.target
            case "@path":
                return path or "/"
            case "@query":
                return f"?{query}"  # RFC 9421 §2.2.7: "?" alone when there is no query
        header = self.headers.get(name)
        if header is None:
            raise SignatureError(f"{name} is signed but the header is missing")
        return header.strip()

    def authority(self) -> str:
        host = self.headers.get("host")
        if not host:
            raise SignatureError("the request has no Host header")
        host = host.strip().lower()
        name, sep, port = host.rpartition(":")
        # The port is dropped when it is the scheme's default, as the sender's client does when
        # writing the URL; `[::1]` has colons but no port.
        if sep and not host.endswith("]") and port == _DEFAULT_PORTS.get(self.scheme):
            return name
        return host


def _signature_base(values: Mapping[str, str], signature_params: str) -> bytes:
    lines = [f'"{name}": {value}' for name, value in values.items()]
    lines.append(f'"@signature-params": {signature_params}')
    return "\n".join(lines).encode("utf-8")
