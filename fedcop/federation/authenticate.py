"""Who sent this request? Signature checks with key lookup, refetch-on-failure and policy.

Statuses follow INTEROP §5: 401 for anything wrong with the signature or its key, 403 for a
blocked server, 503 when the key could not be fetched for a passing reason (the peer retries;
a 4xx would make Mastodon drop the delivery for good).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from fedcop.ap.remote import host_of
from fedcop.federation.policy import FederationPolicy
from fedcop.federation.remote_actors import ActorKey, RemoteActors, ResolveError
from fedcop.security.httpsig import (
    ParsedSignature,
    SignatureError,
    check_freshness,
    parse_signature,
    verify,
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
) -> ActorKey:
    """The actor whose key signed the request, or AuthenticationError saying why not."""
    try:
        parsed = parse_signature(method, target, headers, body, scheme=scheme)
        check_freshness(parsed, now)  # before any key fetch: stale requests cost nothing
    except SignatureError as exc:
        raise AuthenticationError(401, exc.reason) from exc
    if await policy.is_suspended(host_of(parsed.key_id)):
        raise AuthenticationError(403, f"{host_of(parsed.key_id)} is blocked by this server")
    key = await _key(actors, parsed.key_id, refresh=False)
    try:
        verify(parsed, key.public_key_pem, now)
    except SignatureError as first_failure:
        if key.local:
            raise AuthenticationError(401, first_failure.reason) from first_failure
        # The sender may have rotated its key since we cached it: fetch it once more.
        key = await _key(actors, parsed.key_id, refresh=True)
        _verify_or_401(parsed, key, now)
    return key


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
