"""Who sent this request? Signature checks with key lookup, refetch-on-failure and policy.

Statuses follow INTEROP §5: 401 for anything wrong with the signature or its key, 403 for a
blocked server, 503 when the key could not be fetched for a passing reason (the peer retries;
a 4xx would make Mastodon drop the delivery for good).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from functools import lru_cache
from urllib.parse import urlsplit

from fedcop.federation.policy import FederationPolicy
from fedcop.federation.remote_actors import ActorKey, RemoteActors, ResolveError
from fedcop.security.httpsig import (
    ParsedSignature,
    SignatureError,
    check_freshness,
    parse_signature,
    verify,
    verify_fresh,
)

# Real signature headers are well under 2 KB (an RSA-4096 signature is ~700 base64 characters).
# The limits keep a single request from buying seconds of parsing: a 140 KB Signature-Input
# took ~0.5 s to refuse, and the HTTP server itself sets no limit on header size.
MAX_SIGNATURE_HEADER = 8192
MAX_KEY_ID = 2048
_SIGNATURE_HEADERS = frozenset(
    {"signature", "signature-input", "authorization", "digest", "content-digest", "date", "host"}
)


class AuthenticationError(Exception):
    def __init__(self, status: int, reason: str) -> None:
        self.status = status
        self.reason = reason
        super().__init__(f"{status}: {reason}")


async def authenticate(
    *,
    method: str,
    target: str,
    headers: Mapping[str, str],
    body: bytes | None,
    scheme: str,
    actors: RemoteActors,
    policy: FederationPolicy,
    now: datetime,
    own_host: str | None = None,
) -> ActorKey:
    """The actor whose key signed the request, or AuthenticationError saying why not.

    `own_host` (this server's domain) refuses a signature made for another server's Host,
    so a request one server received cannot be replayed to this one within the clock window.
    """
    _check_header_sizes(headers)
    try:
        parsed = parse_signature(method, target, headers, body, scheme=scheme)
        check_freshness(parsed, now)  # before any key fetch: stale requests cost nothing
    except SignatureError as exc:
        raise AuthenticationError(401, exc.reason) from exc
    if own_host is not None:
        _check_signed_for_us(parsed, headers, scheme, own_host)
    key_host = _key_host(parsed.key_id)
    # The usual case (block list fresh, key in memory) takes no await: each costs a coroutine.
    suspended = policy.cached_verdict(key_host)
    if suspended is None:
        suspended = await policy.is_suspended(key_host)
    if suspended:
        raise AuthenticationError(403, f"{key_host} is blocked by this server")
    key = actors.cached_key(parsed.key_id) or await _key(actors, parsed.key_id, refresh=False)
    try:
        verify_fresh(parsed, key.public_key_pem)  # freshness was checked above
    except SignatureError as first_failure:
        if key.local:
            raise AuthenticationError(401, first_failure.reason) from first_failure
        # The sender may have rotated its key since we cached it: fetch it once more.
        key = await _key(actors, parsed.key_id, refresh=True)
        _verify_or_401(parsed, key, now)
    return key


def _check_header_sizes(headers: Mapping[str, str]) -> None:
    for name, value in headers.items():
        if len(value) > MAX_SIGNATURE_HEADER and name.lower() in _SIGNATURE_HEADERS:
            raise AuthenticationError(
                401, f"the {name} header is longer than {MAX_SIGNATURE_HEADER} characters"
            )


@lru_cache(maxsize=1024)  # a server signs everything with a handful of key ids
def _key_host(key_id: str) -> str:
    """The server a key id names; 401 unless it is an http(s) URL that can be fetched at all.

    Checked here, before any look-up, because urlsplit raises ValueError on an unclosed IPv6
    bracket and `.port` on a port that is not a number in 0-65535: a 500, not a refusal.
    """
    if len(key_id) > MAX_KEY_ID:
        raise AuthenticationError(401, f"keyId is longer than {MAX_KEY_ID} characters")
    try:
        parts = urlsplit(key_id)
        parts.port  # noqa: B018 - raises ValueError on a malformed port
    except ValueError as exc:
        raise AuthenticationError(401, f"keyId {key_id[:200]!r} is not a valid URL") from exc
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise AuthenticationError(401, f"keyId {key_id[:200]!r} is not an http(s) URL")
    return parts.netloc.lower()


def _check_signed_for_us(
    parsed: ParsedSignature, headers: Mapping[str, str], scheme: str, own_host: str
) -> None:
    """When the signature covers the host, it must be this server's: the Host header is what
    both dialects sign (`host`, `@authority`, `@target-uri`), so that is what is compared."""
    if not {"host", "@authority", "@target-uri"} & set(parsed.covered):
        return
    host = headers.get("host")
    if host is None:  # a mapping with names as sent, not lower-cased
        host = next((value for name, value in headers.items() if name.lower() == "host"), "")
    if _authority(host, scheme) != _authority(own_host, scheme):
        raise AuthenticationError(401, f"signed for {host[:200]!r}, not for this server")


def _authority(host: str, scheme: str) -> str:
    host = host.strip().lower()
    default_port = ":443" if scheme == "https" else ":80"
    return host.removesuffix(default_port)


def _verify_or_401(parsed: ParsedSignature, key: ActorKey, now: datetime) -> None:
    try:
        verify(parsed, key.public_key_pem, now)
    except SignatureError as exc:
        raise AuthenticationError(401, exc.reason) from exc


async def _key(actors: RemoteActors, key_id: str, *, refresh: bool) -> ActorKey:
    try:
        return await actors.key(key_id, refresh=refresh)
    except ResolveError as exc:
        status = 503 if exc.temporary else 401
        raise AuthenticationError(status, f"key {key_id} not usable: {exc.reason}") from exc
