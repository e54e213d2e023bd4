"""Checking HTTP signatures on requests that reach the web layer."""

from __future__ import annotations

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.types import Scope

from fedcop.federation.authenticate import AuthenticationError, authenticate
from fedcop.federation.remote_actors import ActorKey
from fedcop.models import utcnow
from fedcop.security.httpsig_common import LowerCaseHeaders
from fedcop.web.state import AppState, app_state


def is_signed(request: Request) -> bool:
    return "signature" in request.headers or "signature-input" in request.headers


def scope_target(scope: Scope) -> str:
    """The path and query exactly as sent, still percent-encoded: what the signer signed."""
    raw_path = scope.get("raw_path") or scope["path"].encode("utf-8")
    query = scope.get("query_string", b"")
    target = raw_path.decode("latin-1")
    return f"{target}?{query.decode('latin-1')}" if query else target


def joined_headers(scope: Scope) -> LowerCaseHeaders:
    """One value per header name, repeats joined with ", " as HTTP says they combine.

    ASGI gives names already lower-cased; values are decoded as Latin-1, as Starlette does.
    """
    joined = LowerCaseHeaders()
    for raw_name, raw_value in scope["headers"]:
        name = raw_name.decode("latin-1")
        value = raw_value.decode("latin-1")
        joined[name] = f"{joined[name]}, {value}" if name in joined else value
    return joined


async def verified_signer(request: Request, body: bytes | None = None) -> ActorKey:
    """The actor that signed this request; HTTPException 401/403/503 with the reason if none."""
    return await verified_scope_signer(request.scope, app_state(request), body)


async def verified_scope_signer(scope: Scope, state: AppState, body: bytes | None) -> ActorKey:
    """`verified_signer` for endpoints working on the ASGI scope directly."""
    try:
        return await authenticate(
            method=scope["method"],
            target=scope_target(scope),
            headers=joined_headers(scope),
            body=body,
            scheme=state.settings.scheme,
            actors=state.remote_actors,
            policy=state.policy,
            now=utcnow(),
            own_host=state.settings.domain,  # a signature made for another server is a replay
        )
    except AuthenticationError as exc:
        headers = {"retry-after": "60"} if exc.status == 503 else None
        raise HTTPException(exc.status, exc.reason, headers=headers) from exc
