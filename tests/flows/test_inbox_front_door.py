"""Inbox POSTs take the fast path in front of Starlette (fedcop/web/front.py); everything the
routes and error handlers did for them still holds, and nothing else is taken by mistake."""

from __future__ import annotations

import json

import httpx
import pytest
from sqlalchemy import select
from starlette.types import Message, Receive

from fedcop.models import InboxItem
from fedcop.web import inbox as inbox_module
from fedcop.web.inbox import is_inbox_route, route_path
from fedcop.web.state import AppState
from tests.support.network import InProcessNetwork
from tests.support.peers import FakePeer, follow_activity, post_signed

GROUP = "https://home.test/groups/frailty"


async def _stored(state: AppState) -> list[InboxItem]:
    async with state.db() as session:
        return list((await session.scalars(select(InboxItem))).all())


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("/inbox", True),
        ("/actor/inbox", True),
        ("/users/ann/inbox", True),
        ("/groups/frailty/inbox", True),
        ("/users//inbox", False),  # a route parameter is never empty
        ("/users/ann/inbox/", False),
        ("/pages/ann/inbox", False),
        ("/users/ann/outbox", False),
        ("/groups/a/b/inbox", False),
        ("/inbox/", False),
    ],
)
def test_only_the_routed_inboxes_are_recognised(path: str, expected: bool) -> None:
    assert is_inbox_route(path) is expected


def test_the_mount_point_is_not_part_of_the_route() -> None:
    assert route_path({"path": "/fed/inbox", "root_path": "/fed"}) == "/inbox"
    assert route_path({"path": "/inbox", "root_path": ""}) == "/inbox"
    assert route_path({"path": "/federal/inbox", "root_path": "/fed"}) == "/federal/inbox"


@pytest.mark.parametrize(
    "path", ["/inbox", "/actor/inbox", "/users/ann/inbox", "/groups/frailty/inbox"]
)
async def test_every_inbox_accepts_and_stores_the_body_as_received(
    home: AppState, net: InProcessNetwork, peer: FakePeer, path: str
) -> None:
    follow = follow_activity(peer, GROUP)
    response = await post_signed(net, peer, f"https://home.test{path}", follow)
    assert response.status_code == 202
    [item] = await _stored(home)
    assert item.ap_id == follow["id"]
    assert item.activity == follow  # parses back to exactly what was signed


async def test_other_methods_on_an_inbox_are_still_405(
    home: AppState, net: InProcessNetwork
) -> None:
    async with httpx.AsyncClient(transport=net) as client:
        response = await client.get("https://home.test/inbox")
    assert response.status_code == 405


async def test_a_post_to_a_path_that_only_ends_in_inbox_is_404(
    home: AppState, net: InProcessNetwork, peer: FakePeer
) -> None:
    response = await post_signed(net, peer, "https://home.test/pages/x/inbox", {"id": "x"})
    assert response.status_code == 404
    assert await _stored(home) == []


async def test_a_refusal_keeps_the_json_error_and_its_headers(
    home: AppState, net: InProcessNetwork, peer: FakePeer
) -> None:
    body = b"{not json"
    headers = peer.signed_headers("POST", "https://home.test/inbox", body)
    async with httpx.AsyncClient(transport=net) as client:
        response = await client.post("https://home.test/inbox", content=body, headers=headers)
    assert response.status_code == 400
    assert "not JSON" in response.json()["error"]
    assert response.headers["vary"] == "Accept"


async def test_a_bug_in_the_inbox_is_a_500_without_a_trace(
    home: AppState, net: InProcessNetwork, peer: FakePeer, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(document: object, encoded: bytes | None = None) -> None:
        raise RuntimeError("secret internals")

    monkeypatch.setattr(inbox_module, "check_activity", broken)
    response = await post_signed(net, peer, "https://home.test/inbox", follow_activity(peer, GROUP))
    assert response.status_code == 500
    assert "secret" not in response.text
    assert response.json() == {"error": "Something went wrong on this server."}


async def test_a_sender_that_hangs_up_mid_body_gets_nothing_and_nothing_is_stored(
    home: AppState, net: InProcessNetwork, peer: FakePeer
) -> None:
    body = json.dumps(follow_activity(peer, GROUP)).encode()
    headers = peer.signed_headers("POST", "https://home.test/inbox", body)
    messages: list[Message] = [
        {"type": "http.request", "body": body[:10], "more_body": True},
        {"type": "http.disconnect"},
    ]

    async def receive() -> Message:
        return messages.pop(0)

    assert await _post_through_asgi(net, headers, receive) == []
    assert await _stored(home) == []


async def test_a_body_streamed_past_a_megabyte_without_a_length_is_413_and_not_read_on(
    home: AppState, net: InProcessNetwork, peer: FakePeer
) -> None:
    # Chunked transfer has no Content-Length to refuse up front: the cap is counted as the
    # body arrives, and reading stops there (a sender cannot make the server buffer 10 MB).
    chunk = b" " * 65_536
    chunks = 160  # 10 MiB in all
    headers = peer.signed_headers("POST", "https://home.test/inbox", chunk * chunks)
    received = 0

    async def receive() -> Message:
        nonlocal received
        received += 1
        return {"type": "http.request", "body": chunk, "more_body": received < chunks}

    headers.pop("content-length", None)  # none to refuse up front
    sent = await _post_through_asgi(net, {**headers, "transfer-encoding": "chunked"}, receive)
    assert sent[0]["status"] == 413
    assert received <= 1_000_000 // len(chunk) + 2  # stopped at the cap, not at the end
    assert await _stored(home) == []


async def _post_through_asgi(
    net: InProcessNetwork, headers: dict[str, str], receive: Receive
) -> list[Message]:
    """POST /inbox to the app as an ASGI server would, with the body `receive` gives;
    the messages the app sent back."""
    sent: list[Message] = []

    async def send(message: Message) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "method": "POST",
        "path": "/inbox",
        "raw_path": b"/inbox",
        "root_path": "",
        "query_string": b"",
        "headers": [(k.lower().encode(), v.encode()) for k, v in headers.items()],
    }
    transport = net.routes["home.test"]
    assert isinstance(transport, httpx.ASGITransport)
    await transport.app(scope, receive, send)
    return sent
