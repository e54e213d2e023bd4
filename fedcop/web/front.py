"""The front door: inbox POSTs go straight to the inbox, everything else through Starlette.

The inbox takes most of a federated server's requests, and its own work is small (a JSON
parse, a signature check, a row), so the layers in front of it weighed as much as the checks:
Starlette's error middleware, the exception middleware wrapping `send`, the router trying
each route's regex and building a child scope. Measured in process (bench/verify.py's driver,
SQLite, 2026-11-26): ~20 µs of CPU of ~135 µs per accepted POST. Here an inbox POST is
recognised by its path alone, passes the load shedder (web/throttle.py) and reaches the
endpoint with the same error answers the app's handlers give; any other request, and any
inbox request that is not a POST, takes the ordinary Starlette path.
"""

from __future__ import annotations

from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.types import Receive, Scope, Send

from fedcop.web import inbox
from fedcop.web.errors import http_exception_handler, unexpected_error_handler
from fedcop.web.inbox import is_inbox_post
from fedcop.web.throttle import InboxThrottle, ThrottleLimits


async def inbox_answering_errors(scope: Scope, receive: Receive, send: Send) -> None:
    """The inbox endpoint with the answers the app's exception handlers would give."""
    try:
        await inbox.inbox(scope, receive, send)
    except HTTPException as exc:
        response = await http_exception_handler(Request(scope, receive), exc)
        await response(scope, receive, send)
    except ClientDisconnect:
        return  # the sender hung up mid-body: nobody to answer, nothing was stored
    except Exception as exc:
        response = await unexpected_error_handler(Request(scope, receive), exc)
        await response(scope, receive, send)


class FedcopApp(Starlette):
    """Starlette with the inbox fast path in front of its middleware and router."""

    def __init__(self, *, inbox_limits: ThrottleLimits, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.inbox_throttle = InboxThrottle(inbox_answering_errors, inbox_limits)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if is_inbox_post(scope):
            scope["app"] = self
            await self.inbox_throttle.admit(scope, receive, send)
            return
        await super().__call__(scope, receive, send)
