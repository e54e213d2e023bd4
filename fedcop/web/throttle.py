"""Load shedding for the inbox: a surge is answered 503/429 with `Retry-After`, not queued.

A popular boost brings thousands of signed POSTs within seconds. Each one held open costs
memory and a slot in the database's group commit, and answering them all late is worse than
answering some of them "later, please" at once. Only 429 and 5xx say "later": Mastodon drops a
delivery for good on any other 4xx but 401 and 408
(https://github.com/mastodon/mastodon/blob/main/app/lib/request.rb, `response_error_unsalvageable?`;
INTEROP §5), and retries these with backoff, so a shed delivery arrives a little later.

Two limits, both checked on the request line and headers alone, before a byte of the body
is read, so a shed request costs almost nothing:

- the inbox requests in flight in this process (`FEDCOP_INBOX_MAX_IN_FLIGHT`): beyond it,
  503 — the server as a whole is busy;
- those from one sending server (`FEDCOP_INBOX_MAX_IN_FLIGHT_PER_DOMAIN`): beyond it, 429 —
  that server is sending too much at once, and one busy peer cannot take every slot from the
  rest. The server is read from the signature's `keyId` without verifying it (verification
  costs a key look-up, which is what shedding must avoid); a liar can only spend the share of
  the server it names, and the signature is still checked on every request let in.

Everything else (pages, actor documents, the API) passes straight through.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import urlsplit

import orjson
from starlette.types import ASGIApp, Receive, Scope, Send

from fedcop.web.inbox import is_inbox_post

# keyId="..." (draft-cavage Signature) or keyid="..." (RFC 9421 Signature-Input).
_KEY_ID = re.compile(rb'keyid\s*=\s*"([^"]{1,2048})"', re.IGNORECASE)
_SIGNATURE_HEADERS = frozenset({b"signature", b"signature-input", b"authorization"})


@dataclass(frozen=True, slots=True)
class ThrottleLimits:
    max_in_flight: int = 256
    max_in_flight_per_domain: int = 64
    retry_after_seconds: int = 5


class InboxThrottle:
    """ASGI middleware: counts inbox POSTs in flight, sheds those beyond the limits."""

    def __init__(self, app: ASGIApp, limits: ThrottleLimits | None = None) -> None:
        self.app = app
        self.limits = limits or ThrottleLimits()
        self.in_flight = 0
        # Only senders with a request in flight have an entry, so this holds at most
        # max_in_flight keys whatever the number of servers.
        self.per_domain: dict[str, int] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if not is_inbox_post(scope):
            await self.app(scope, receive, send)
            return
        await self.admit(scope, receive, send)

    async def admit(self, scope: Scope, receive: Receive, send: Send) -> None:
        """An inbox POST: shed it if a limit is reached, else pass it on and count it."""
        if self.in_flight >= self.limits.max_in_flight:
            await self._shed(send, 503, "this server is busy; retry later")
            return
        sender = sender_of(scope)
        if self.per_domain.get(sender, 0) >= self.limits.max_in_flight_per_domain:
            await self._shed(send, 429, f"too many requests in flight from {sender}; retry later")
            return
        self.in_flight += 1
        self.per_domain[sender] = self.per_domain.get(sender, 0) + 1
        try:
            await self.app(scope, receive, send)
        finally:
            self.in_flight -= 1
            left = self.per_domain[sender] - 1
            if left:
                self.per_domain[sender] = left
            else:
                del self.per_domain[sender]

    async def _shed(self, send: Send, status: int, reason: str) -> None:
        body = orjson.dumps({"error": reason})
        headers = [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
            (b"retry-after", str(self.limits.retry_after_seconds).encode()),
            # The body was never read; closing the connection drops it instead of making the
            # server parse and discard it, and frees the socket while the surge lasts.
            (b"connection", b"close"),
        ]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})


def sender_of(scope: Scope) -> str:
    """The server the request claims to come from (its keyId's host), else the client address."""
    for name, value in scope["headers"]:
        if name in _SIGNATURE_HEADERS:
            match = _KEY_ID.search(value)
            if match is not None:
                host = _host(match.group(1).decode("latin-1"))
                if host:
                    return host
    client = scope.get("client")
    return str(client[0]) if client else "unknown"


def _host(url: str) -> str:
    try:
        return urlsplit(url).netloc.lower()
    except ValueError:  # e.g. an unclosed IPv6 bracket: no server to name
        return ""
