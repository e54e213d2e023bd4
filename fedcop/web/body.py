"""Reading request bodies without ever buffering more than a limit."""

from __future__ import annotations

from collections.abc import Callable

from starlette.requests import ClientDisconnect, Request
from starlette.types import Receive, Scope


async def read_capped(request: Request, limit: int, too_large: Callable[[str], Exception]) -> bytes:
    """The body, refused (with `too_large(reason)`) as soon as it passes `limit` bytes."""
    reason = f"the body may be at most {limit} bytes"
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise too_large(reason)
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise too_large(reason)
        chunks.append(chunk)
    return b"".join(chunks)


async def read_capped_asgi(
    scope: Scope, receive: Receive, limit: int, too_large: Callable[[str], Exception]
) -> bytes:
    """`read_capped` straight from ASGI messages, for hot endpoints that skip `Request`."""
    reason = f"the body may be at most {limit} bytes"
    for name, value in scope["headers"]:
        if name == b"content-length" and value.isdigit() and int(value) > limit:
            raise too_large(reason)
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientDisconnect()
        chunk: bytes = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise too_large(reason)
        chunks.append(chunk)
        if not message.get("more_body", False):
            return chunks[0] if len(chunks) == 1 else b"".join(chunks)
