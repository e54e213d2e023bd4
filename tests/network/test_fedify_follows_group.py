"""A real, independently written server (Fedify 1.5.9, Node) follows a fedcop group.

fedcop runs as its own process on 127.0.0.2, Fedify on 127.0.0.3: real sockets, real
signatures, each side verifying the other's with its own code.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import httpx
import pytest

from tests.support.fedify_peer import FedifyPeer, running_fedify_peer
from tests.support.processes import free_loopback_port, running_server
from tests.support.settings import TEST_SECRET

FEDCOP_HOST = "127.0.0.2"
AS2 = {"accept": "application/activity+json"}


@pytest.fixture
def fedcop(empty_database_url: str) -> Iterator[str]:
    port = free_loopback_port(FEDCOP_HOST)
    env = {
        "FEDCOP_DOMAIN": f"{FEDCOP_HOST}:{port}",
        "FEDCOP_SCHEME": "http",
        "FEDCOP_DATABASE_URL": empty_database_url,
        "FEDCOP_SECRET_KEY": TEST_SECRET,
        "FEDCOP_ALLOW_PRIVATE_ADDRESSES": "true",
    }
    with running_server(env, port, "--demo", host=FEDCOP_HOST) as base_url:
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
