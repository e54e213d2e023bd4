"""Error responses: JSON for servers and API clients, a readable page for people.

No response ever carries a stack trace; unexpected errors are logged with one.
"""

from __future__ import annotations

import logging
from http import HTTPStatus

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from fedcop.db import is_database_outage
from fedcop.web.negotiation import wants_activity_json
from fedcop.web.responses import JSONResponse
from fedcop.web.state import app_state

log = logging.getLogger(__name__)


def error_response(request: Request, status_code: int, detail: str) -> Response:
    headers = {"vary": "Accept"}
    # A page only for those who ask for one (browsers always send text/html); servers and
    # scripts, including every inbox POST, get JSON with the reason.
    wants_page = "text/html" in request.headers.get("accept", "")
    if not wants_page or wants_activity_json(request) or request.url.path.startswith("/api/"):
        return JSONResponse({"error": detail}, status_code=status_code, headers=headers)
    templates = app_state(request).templates
    return templates.TemplateResponse(
        request,
        "error.html",
        {"status_code": status_code, "title": HTTPStatus(status_code).phrase, "detail": detail},
        status_code=status_code,
        headers=headers,
    )


async def http_exception_handler(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    detail = exc.detail if exc.detail else HTTPStatus(exc.status_code).phrase
    response = error_response(request, exc.status_code, detail)
    if exc.headers:
        response.headers.update(exc.headers)
    return response


# How long a client should wait when the database is away (a restart takes seconds).
DATABASE_RETRY_AFTER_SECONDS = 5


async def unexpected_error_handler(request: Request, exc: Exception) -> Response:
    if is_database_outage(exc):  # not a bug: the database restarts or is unreachable
        log.warning("database unavailable on %s %s: %s", request.method, request.url.path, exc)
        response = error_response(request, 503, "The database is unavailable; try again shortly.")
        response.headers["retry-after"] = str(DATABASE_RETRY_AFTER_SECONDS)
        return response
    log.exception("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    return error_response(request, 500, "Something went wrong on this server.")
