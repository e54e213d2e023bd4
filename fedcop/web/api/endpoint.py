"""One API endpoint declared once: it becomes both a Starlette `Route` and an OpenAPI
operation, so the routes and their documentation cannot disagree.

The wrapper around every handler does what each would otherwise repeat: bearer-token
authentication, reading and checking the JSON body against the endpoint's schema, and turning
the services' errors into JSON answers with the right status.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from fedcop.errors import ConflictError, NotFoundError, PermissionDeniedError, ValidationError
from fedcop.federation.remote_actors import ResolveError
from fedcop.services import tokens
from fedcop.services.tokens import Caller
from fedcop.web.api import validate
from fedcop.web.api.schemas import SCHEMAS
from fedcop.web.body import read_capped as read_body_capped
from fedcop.web.responses import JSONResponse
from fedcop.web.state import AppState, app_state

MAX_JSON_BYTES = 256 * 1024  # a story's body is at most 50,000 characters
_CONVERTER = re.compile(r"\{(\w+):\w+\}")
_STATUS_OF: tuple[tuple[type[Exception], int], ...] = (
    (ValidationError, 422),
    (NotFoundError, 404),
    (ConflictError, 409),
    (PermissionDeniedError, 403),
)


class ApiError(Exception):
    """An answer other than success, raised anywhere below a handler."""

    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = headers or {}

    def response(self) -> Response:
        return JSONResponse({"error": self.message}, self.status, headers=self.headers)


@dataclass(frozen=True, slots=True)
class ApiRequest:
    request: Request
    state: AppState
    caller_or_none: Caller | None
    body: dict[str, Any]  # the checked JSON body; empty when the endpoint takes none

    @property
    def caller(self) -> Caller:
        if self.caller_or_none is None:  # only public endpoints run without one
            raise ApiError(401, "this endpoint needs a bearer token")
        return self.caller_or_none

    def path(self, name: str) -> Any:
        return self.request.path_params[name]


Handler = Callable[[ApiRequest], Awaitable[Response]]


@dataclass(frozen=True, slots=True)
class Param:
    """A query parameter, documented and parsed from the same declaration."""

    name: str
    description: str
    schema: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Endpoint:
    method: str
    path: str  # Starlette syntax: /api/v1/stories/{story_id:int}
    handler: Handler
    summary: str
    tag: str
    ok: int = 200
    response: str | None = None  # component schema of the success body; None for no body
    body: str | None = None  # component schema of a JSON request body
    raw_body: dict[str, Any] | None = None  # OpenAPI content of a non-JSON body (uploads)
    query: tuple[Param, ...] = ()
    errors: tuple[int, ...] = ()
    auth: bool = True
    description: str = ""

    @property
    def openapi_path(self) -> str:
        return _CONVERTER.sub(r"{\1}", self.path)

    @property
    def path_params(self) -> dict[str, str]:
        """Each path parameter and its JSON type."""
        names = re.findall(r"\{(\w+)(?::(\w+))?\}", self.path)
        return {name: "integer" if kind == "int" else "string" for name, kind in names}

    def route(self) -> Route:
        return Route(self.path, self._run, methods=[self.method], name=self.handler.__name__)

    async def _run(self, request: Request) -> Response:
        try:
            caller = await authenticate(request) if self.auth else None
            body = await read_json(request, self.body) if self.body else {}
            return await self.handler(ApiRequest(request, app_state(request), caller, body))
        except ApiError as exc:
            return exc.response()
        except ResolveError as exc:
            # The other server may answer later; otherwise the handle or URL was wrong.
            return ApiError(503 if exc.temporary else 422, exc.reason).response()
        except (ValidationError, NotFoundError, ConflictError, PermissionDeniedError) as exc:
            status = next(code for kind, code in _STATUS_OF if isinstance(exc, kind))
            return ApiError(status, str(exc)).response()


async def authenticate(request: Request) -> Caller:
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise _unauthorized("send Authorization: Bearer <token>", error=None)
    caller = await tokens.authenticate(app_state(request).db, token.strip())
    if caller is None:
        raise _unauthorized("the token is unknown or revoked", error="invalid_token")
    return caller


def _unauthorized(message: str, *, error: str | None) -> ApiError:
    # RFC 6750 §3: a challenge always; the error code only when a token was sent.
    challenge = 'Bearer realm="fedcop"' + (f', error="{error}"' if error else "")
    return ApiError(401, message, {"www-authenticate": challenge})


async def read_capped(request: Request, limit: int) -> bytes:
    return await read_body_capped(request, limit, lambda reason: ApiError(413, reason))


async def read_json(request: Request, schema_name: str) -> dict[str, Any]:
    raw = await read_capped(request, MAX_JSON_BYTES)
    try:
        body = orjson.loads(raw) if raw.strip() else None
    except orjson.JSONDecodeError:
        raise ApiError(422, "the body is not valid JSON") from None
    if not isinstance(body, dict):
        raise ApiError(422, "the body must be a JSON object")
    validate.check(body, SCHEMAS[schema_name], SCHEMAS, "body")
    return body


def query_int(request: Request, name: str, *, default: int | None = None) -> int | None:
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return default
    if not raw.isdigit() or len(raw) > 18:
        raise ApiError(422, f"{name}: must be a positive whole number")
    return int(raw)
