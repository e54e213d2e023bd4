"""The OpenAPI 3.1 document, built from the endpoint table and the schemas."""

from __future__ import annotations

from collections.abc import Iterable
from http import HTTPStatus
from typing import Any

from fedcop import __version__
from fedcop.web.api.endpoint import MAX_JSON_BYTES, Endpoint
from fedcop.web.api.schemas import SCHEMAS, ref

_JSON = "application/json"


def document(endpoints: Iterable[Endpoint], base_url: str) -> dict[str, Any]:
    paths: dict[str, dict[str, Any]] = {}
    for endpoint in endpoints:
        paths.setdefault(endpoint.openapi_path, {})[endpoint.method.lower()] = operation(endpoint)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "fedcop API",
            "version": __version__,
            "description": (
                "JSON API for people on this fedcop instance. Authenticate with "
                "`Authorization: Bearer <token>`; tokens come from `fedcop token create`. "
                "Stories are named in paths by their numeric `id`, and in bodies (comments, "
                "reactions, reports) by their ActivityPub id (`ap_id`). Lists page newest "
                "first: pass a page's `next_max_id` as `max_id` for the next."
            ),
        },
        "servers": [{"url": base_url}],
        "security": [{"bearer": []}],
        "paths": paths,
        "components": {
            "schemas": SCHEMAS,
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
    }


def operation(endpoint: Endpoint) -> dict[str, Any]:
    result: dict[str, Any] = {
        "operationId": endpoint.handler.__name__,
        "summary": endpoint.summary,
        "tags": [endpoint.tag],
        "responses": _responses(endpoint),
    }
    if endpoint.description:
        result["description"] = endpoint.description
    parameters = _parameters(endpoint)
    if parameters:
        result["parameters"] = parameters
    if endpoint.body is not None:
        content = {_JSON: {"schema": ref(endpoint.body)}}
        result["requestBody"] = {"required": True, "content": content}
    elif endpoint.raw_body is not None:
        result["requestBody"] = {"required": True, "content": endpoint.raw_body}
    if not endpoint.auth:
        result["security"] = []
    return result


def _parameters(endpoint: Endpoint) -> list[dict[str, Any]]:
    parameters = [
        {"name": name, "in": "path", "required": True, "schema": {"type": kind}}
        for name, kind in endpoint.path_params.items()
    ]
    parameters += [
        {"name": p.name, "in": "query", "description": p.description, "schema": p.schema}
        for p in endpoint.query
    ]
    return parameters


def _responses(endpoint: Endpoint) -> dict[str, Any]:
    success: dict[str, Any] = {"description": HTTPStatus(endpoint.ok).phrase}
    if endpoint.response is not None:
        success["content"] = {_JSON: {"schema": ref(endpoint.response)}}
    responses = {str(endpoint.ok): success}
    errors = set(endpoint.errors)
    if endpoint.auth:
        errors.add(401)
    if endpoint.body is not None:
        errors |= {413, 422}
    for status in sorted(errors):
        responses[str(status)] = _error(status, endpoint)
    return responses


def _error(status: int, endpoint: Endpoint) -> dict[str, Any]:
    description = HTTPStatus(status).phrase
    if status == 401:
        description = "no token, or an unknown or revoked one (with WWW-Authenticate: Bearer)"
    elif status == 413 and endpoint.body is not None:
        description = f"the JSON body is over {MAX_JSON_BYTES} bytes"
    return {"description": description, "content": {_JSON: {"schema": ref("Error")}}}
