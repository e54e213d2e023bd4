"""Doing things through the API the way a client would."""

from __future__ import annotations

from typing import Any

import httpx

from fedcop.services.tokens import create_token
from fedcop.web.state import AppState
from tests.support.actors import make_person


async def person_with_token(state: AppState, username: str) -> dict[str, str]:
    """A new local person; returns the headers that authenticate as them."""
    await make_person(state, username)
    made = await create_token(state.db, username, "tests")
    return {"authorization": f"Bearer {made.token}"}


async def create_group(
    client: httpx.AsyncClient, headers: dict[str, str], username: str, visibility: str = "open"
) -> dict[str, Any]:
    response = await client.post(
        "/api/v1/groups",
        json={"username": username, "name": username.title(), "visibility": visibility},
        headers=headers,
    )
    assert response.status_code == 201, response.text
    result: dict[str, Any] = response.json()
    return result


def story_body(**changes: object) -> dict[str, Any]:
    body: dict[str, object] = {
        "title": "What we learnt from falls huddles",
        "summary": "Ten minutes a day changed how our ward talks about falls.",
        "body": "## Why\n\nBecause *every* fall has a story.",
        "pii_confirmed": True,
        "tags": ["falls"],
    }
    body.update(changes)
    return body


async def publish(
    client: httpx.AsyncClient, headers: dict[str, str], group: str, **changes: object
) -> dict[str, Any]:
    response = await client.post(
        f"/api/v1/groups/{group}/stories", json=story_body(**changes), headers=headers
    )
    assert response.status_code == 201, response.text
    result: dict[str, Any] = response.json()
    return result
