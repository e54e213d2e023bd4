"""A real, independently written server (Fedify 1.5.9, Node) follows a fedcop group.

fedcop runs as its own process on 127.0.0.2, Fedify on 127.0.0.3: real sockets, real
signatures, each side verifying the other's with its own code.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support.fedify_peer import FedifyPeer, running_fedify_peer
from tests.support.processes import fedcop_cli, free_loopback_port, running_server
from tests.support.settings import loopback_env

FEDCOP_HOST = "127.0.0.2"
AS2 = {"accept": "application/activity+json"}


@pytest.fixture
def fedcop_env(empty_database_url: str) -> dict[str, str]:
    port = free_loopback_port(FEDCOP_HOST)
    return loopback_env(empty_database_url, FEDCOP_HOST, port)


@pytest.fixture
def fedcop(fedcop_env: dict[str, str]) -> Iterator[str]:
    port = int(fedcop_env["FEDCOP_DOMAIN"].rsplit(":", 1)[1])
    with running_server(fedcop_env, port, "--demo", host=FEDCOP_HOST) as base_url:
        yield base_url


@pytest.fixture
def fedify() -> Iterator[FedifyPeer]:
    with running_fedify_peer("127.0.0.3") as peer:
        yield peer


def _followers(group: str) -> list[str]:
    root = httpx.get(f"{group}/followers", headers=AS2).json()
    return list(httpx.get(root["first"], headers=AS2).json()["orderedItems"])


def _eventually(check: object, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise TimeoutError("condition not met in time")
        time.sleep(0.1)


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_fedify_follows_a_fedcop_group_and_verifies_the_accept(
    fedcop: str, fedify: FedifyPeer
) -> None:
    group = f"{fedcop}/groups/frailty_practice"
    fedify.follow(group)

    accept = fedify.wait_for(lambda a: a["type"] == "Accept", timeout=20)
    assert accept["actor"] == group
    assert accept["verified"] is True  # Fedify checked fedcop's HTTP signature
    assert fedify.state()["following"][group]["accepted"] is True
    _eventually(lambda: fedify.actor_id in _followers(group))

    fedify.unfollow(group)
    _eventually(lambda: fedify.actor_id not in _followers(group))


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_fedify_gets_a_new_story_as_a_boost_and_replies_into_its_thread(
    fedcop: str, fedcop_env: dict[str, str], fedify: FedifyPeer, tmp_path: Path
) -> None:
    group = f"{fedcop}/groups/frailty_practice"
    fedify.follow(group)
    fedify.wait_for(lambda a: a["type"] == "Accept", timeout=20)

    body = tmp_path / "story.md"
    body.write_text("We moved the huddle to 10 am and *everyone* came.")
    story_url = fedcop_cli(
        fedcop_env, tmp_path, "story", "publish", "--author", "convenor",
        "--group", "frailty_practice", "--title", "Huddles at ten",
        "--summary", "A small change that stuck.", "--file", str(body), "--confirm-no-pii",
    )  # fmt: skip

    announce = fedify.wait_for(lambda a: a["type"] == "Announce", timeout=30)
    assert announce["actor"] == group
    assert announce["object_id"] == story_url  # verified by Fedify, then fetchable by it
    article = httpx.get(story_url, headers=AS2).json()
    assert article["name"] == "Huddles at ten"

    fedify.post_note(group, "<p>We should try this</p>", in_reply_to=story_url)
    _eventually(
        lambda: "We should try this" in httpx.get(story_url, headers={"accept": "text/html"}).text
    )
