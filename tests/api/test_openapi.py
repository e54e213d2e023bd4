"""The OpenAPI document describes exactly the routes the app serves."""

from __future__ import annotations

import re
from typing import Any

import httpx
from starlette.applications import Starlette
from starlette.routing import Route

from fedcop.web.api.schemas import SCHEMAS

METHODS = {"get", "post", "put", "patch", "delete"}


async def _document(client: httpx.AsyncClient) -> dict[str, Any]:
    response = await client.get("/api/v1/openapi.json")  # public: no token needed
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    result: dict[str, Any] = response.json()
    return result


def _routed(app: Starlette) -> set[tuple[str, str]]:
    """(OpenAPI-style path, method) for every /api/ route the app has."""
    found = set()
    for route in app.routes:
        if isinstance(route, Route) and route.path.startswith("/api/"):
            path = re.sub(r"\{(\w+):\w+\}", r"{\1}", route.path)
            found |= {(path, m.lower()) for m in (route.methods or ()) if m != "HEAD"}
    return found


async def test_every_route_is_documented_and_every_operation_routed(
    app: Starlette, client: httpx.AsyncClient
) -> None:
    document = await _document(client)
    documented = {
        (path, method)
        for path, item in document["paths"].items()
        for method in item
        if method in METHODS
    }
    assert documented == _routed(app)
    assert len(documented) == 29


async def test_document_is_openapi_31_with_bearer_security(client: httpx.AsyncClient) -> None:
    document = await _document(client)
    assert document["openapi"] == "3.1.0"
    assert document["servers"] == [{"url": "https://fedcop.test"}]
    assert document["components"]["securitySchemes"]["bearer"] == {
        "type": "http",
        "scheme": "bearer",
    }
    assert document["security"] == [{"bearer": []}]
    assert document["paths"]["/api/v1/openapi.json"]["get"]["security"] == []


async def test_operations_are_complete_and_refs_resolve(client: httpx.AsyncClient) -> None:
    document = await _document(client)
    operation_ids = []
    for path, item in document["paths"].items():
        for method, operation in item.items():
            operation_ids.append(operation["operationId"])
            assert operation["summary"], (path, method)
            assert operation["responses"], (path, method)
            declared = {p["name"] for p in operation.get("parameters", []) if p["in"] == "path"}
            assert declared == set(re.findall(r"\{(\w+)\}", path)), (path, method)
            if operation.get("security") != []:
                assert "401" in operation["responses"], (path, method)
    assert len(operation_ids) == len(set(operation_ids))
    assert document["components"]["schemas"] == SCHEMAS


async def test_request_bodies_are_declared_where_taken(client: httpx.AsyncClient) -> None:
    paths = (await _document(client))["paths"]
    story = paths["/api/v1/groups/{name}/stories"]["post"]["requestBody"]
    assert story["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/StoryCreate"
    }
    assert "image/png" in paths["/api/v1/media"]["post"]["requestBody"]["content"]
    assert "requestBody" not in paths["/api/v1/groups/{name}/join"]["post"]


async def test_unknown_paths_and_methods_answer_json(
    client: httpx.AsyncClient, alice: dict[str, str]
) -> None:
    missing = await client.get("/api/v1/nothing", headers={**alice, "accept": "text/html"})
    assert missing.status_code == 404
    assert missing.json()["error"]
    wrong = await client.put("/api/v1/groups", headers=alice)
    assert wrong.status_code == 405
    assert wrong.json()["error"]
