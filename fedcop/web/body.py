"""Reading request bodies without ever buffering more than a limit."""

from __future__ import annotations

from collections.abc import Callable

from starlette.requests import Request


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
