"""Checking HTTP signatures on requests that reach the web layer."""

from __future__ import annotations

from starlette.exceptions import HTTPException
from starlette.requests import Request

from fedcop.federation.authenticate import AuthenticationError, authenticate
from fedcop.federation.remote_actors import ActorKey
from fedcop.models import utcnow
from fedcop.web.state import app_state


def is_signed(request: Request) -> bool:
    return "signature" in request.headers or "signature-input" in request.headers


def request_target(request: Request) -> str:
    """The path and query exactly as sent, still percent-encoded: what the signer signed."""
    raw_path = request.scope.get("raw_path") or request.url.path.encode()
    query = request.scope.get("query_string", b"")
    target = raw_path.decode("latin-1")
    return f"{target}?{query.decode('latin-1')}" if query else target


def joined_headers(request: Request) -> dict[str, str]:
    """One value per header name, repeats joined with ", " as HTTP says they combine."""
    joined: dict[str, str] = {}
    for name, value in request.headers.items():
        joined[name] = f"{joined[name]}, {value}" if name in joined else value
    return joined


async def verified_signer(request: Request, body: bytes | None = None) -> ActorKey:
    """The actor that signed this request; HTTPException 401/403/503 with the reason if none."""
    state = app_state(request)
    try:
        return await authenticate(
            method=request.method,
            target=request_target(request),
            headers=joined_headers(request),
            body=body,
            scheme=state.settings.scheme,
            actors=state.remote_actors,
            policy=state.policy,
            now=utcnow(),
        )
    except AuthenticationError as exc:
        headers = {"retry-after": "60"} if exc.status == 503 else None
        raise HTTPException(exc.status, exc.reason, headers=headers) from exc
