"""Fixtures for federation tests: an in-process network with fedcop instances and fake peers."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from fedcop.web.state import AppState
from tests.support.databases import DatabaseFactory
from tests.support.network import InProcessNetwork, fedcop_instance
from tests.support.peers import FakePeer


@pytest.fixture
def net() -> InProcessNetwork:
    return InProcessNetwork()


@pytest.fixture
async def home(
    net: InProcessNetwork, database_factory: DatabaseFactory, backend: str
) -> AsyncIterator[AppState]:
    """The fedcop instance under test, at https://home.test."""
    async with fedcop_instance(net, database_factory, backend, "home.test") as state:
        yield state


@pytest.fixture
def peer(net: InProcessNetwork) -> FakePeer:
    """A Mastodon-shaped remote actor at https://peer.test/users/remote."""
    fake = net.add_peer(FakePeer("peer.test"))
    return fake
