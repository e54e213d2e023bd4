"""Two fedcop instances in one process: a person on one follows a group on the other."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from fedcop.errors import ConflictError
from fedcop.services import follows as follow_services
from fedcop.services.actors import create_group, create_person
from fedcop.web.state import AppState
from tests.support.databases import DatabaseFactory
from tests.support.network import InProcessNetwork, fedcop_instance, settle

AS2 = {"accept": "application/activity+json"}


@pytest.fixture
async def away(
    net: InProcessNetwork, database_factory: DatabaseFactory, backend: str
) -> AsyncIterator[AppState]:
    async with fedcop_instance(net, database_factory, backend, "away.test") as state:
        yield state


async def _collection(net: InProcessNetwork, url: str) -> list[str]:
    async with httpx.AsyncClient(transport=net) as client:
        root = (await client.get(url, headers=AS2)).json()
        return list((await client.get(root["first"], headers=AS2)).json()["orderedItems"])


async def test_person_follows_group_on_another_instance_then_unfollows(
    home: AppState, away: AppState, net: InProcessNetwork
) -> None:
    await create_group(home.db, home.urls, "frailty", name="Frailty CoP")
    await create_person(away.db, away.urls, "bea")

    made = await follow_services.follow(away.db, away.remote_actors, "bea", "@frailty@home.test")
    assert made.state == "pending"
    await settle(home, away)

    assert await _collection(net, "https://home.test/groups/frailty/followers") == [
        "https://away.test/users/bea"
    ]
    assert await _collection(net, "https://away.test/users/bea/following") == [
        "https://home.test/groups/frailty"
    ]

    await follow_services.unfollow(away.db, away.remote_actors, "bea", "@frailty@home.test")
    await settle(home, away)
    assert await _collection(net, "https://home.test/groups/frailty/followers") == []
    assert await _collection(net, "https://away.test/users/bea/following") == []


async def test_approval_group_on_another_instance(
    home: AppState, away: AppState, net: InProcessNetwork
) -> None:
    await create_group(home.db, home.urls, "clinic", name="Clinic", visibility="approval")
    await create_person(away.db, away.urls, "bea")
    await follow_services.follow(away.db, away.remote_actors, "bea", "@clinic@home.test")
    await settle(home, away)
    assert await _collection(net, "https://away.test/users/bea/following") == []

    [request] = await follow_services.pending(home.db)
    await follow_services.decide(home.db, request.id, approve=True)
    await settle(home, away)
    assert await _collection(net, "https://away.test/users/bea/following") == [
        "https://home.test/groups/clinic"
    ]


async def test_local_person_follows_local_group_without_http(
    home: AppState, net: InProcessNetwork
) -> None:
    await create_group(home.db, home.urls, "frailty", name="Frailty CoP")
    await create_person(home.db, home.urls, "alice")
    sent_before = len(net.sent)
    await follow_services.follow(home.db, home.remote_actors, "alice", "@frailty@home.test")
    await settle(home)
    assert net.sent[sent_before:] == []  # no request left the instance
    assert await _collection(net, "https://home.test/users/alice/following") == [
        "https://home.test/groups/frailty"
    ]


async def test_following_twice_is_refused(home: AppState, away: AppState) -> None:
    await create_group(home.db, home.urls, "frailty", name="Frailty CoP")
    await create_person(away.db, away.urls, "bea")
    await follow_services.follow(away.db, away.remote_actors, "bea", "@frailty@home.test")
    with pytest.raises(ConflictError):
        await follow_services.follow(away.db, away.remote_actors, "bea", "@frailty@home.test")
