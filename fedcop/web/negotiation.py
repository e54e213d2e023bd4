"""Content negotiation between ActivityStreams for servers and HTML for browsers."""

from __future__ import annotations

from starlette.requests import Request

# Any of these in Accept means a server (or a client of one) is asking for the AS2 document,
# whatever its q-value: Mastodon sends `..., text/html;q=0.1`, and serving HTML to it breaks
# federation (https://github.com/kitsune-network/kitsune/issues/163 — INTEROP §9). A bare
# `application/json` gets AS2 too, never 406 (https://github.com/jointakahe/takahe/issues/682).
_AS2_MEDIA_TYPES = frozenset(
    {"application/activity+json", "application/ld+json", "application/json"}
)


def wants_activity_json(request: Request) -> bool:
    return accepts_activity_json(request.headers.get("accept", ""))


def accepts_activity_json(accept: str) -> bool:
    for part in accept.split(","):
        media_type, _, params = part.partition(";")
        if media_type.strip().lower() in _AS2_MEDIA_TYPES and not _q_is_zero(params):
            return True
    return False


def _q_is_zero(params: str) -> bool:
    for param in params.split(";"):
        name, _, value = param.partition("=")
        if name.strip().lower() == "q":
            try:
                return float(value.strip()) == 0.0
            except ValueError:
                return False
    return False
