"""Response classes with the exact media types peers check."""

from __future__ import annotations

from typing import Any

import orjson
from starlette.responses import Response

# Mastodon drops anything else since 4.2.7 and Lemmy accepts only a few spellings (INTEROP §2).
AS2_CONTENT_TYPE = "application/activity+json"
JRD_CONTENT_TYPE = "application/jrd+json"


class ActivityJSONResponse(Response):
    media_type = AS2_CONTENT_TYPE

    def __init__(self, content: Any, status_code: int = 200, **kwargs: Any) -> None:
        super().__init__(content, status_code=status_code, **kwargs)
        # The same URL serves HTML to browsers: caches must keep the two apart.
        self.headers["vary"] = "Accept"

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content)


class JRDResponse(Response):
    media_type = JRD_CONTENT_TYPE

    def __init__(self, content: Any, status_code: int = 200, **kwargs: Any) -> None:
        super().__init__(content, status_code=status_code, **kwargs)
        # Web clients look accounts up from other origins.
        self.headers["access-control-allow-origin"] = "*"

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content)


class JSONResponse(Response):
    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content)
