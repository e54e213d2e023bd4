"""Walking a collection page by page, as a remote server does: newest first, every item once.

The pages are keyset-paginated on the row id (`?page=true&max_id=N`), so a page's `next` link
stays right while new items arrive.
"""

from __future__ import annotations

from typing import Any

import httpx
import orjson
from sqlalchemy import insert, select

from fedcop.models import Actor, Follow, FollowState, OutboxActivity, utcnow
from fedcop.services.collections import PAGE_SIZE
from fedcop.web.state import AppState
from tests.support.actors import make_group

AS2 = {"accept": "application/activity+json"}


async def _walk(client: httpx.AsyncClient, collection: str) -> list[list[Any]]:
    """Every page's items, from the root's `first` along the `next` links."""
    root = (await client.get(collection, headers=AS2)).json()
    url: str | None = root["first"]
    pages: list[list[Any]] = []
    while url is not None:
        assert len(pages) < 10, "the next links go round in a loop"
        response = await client.get(url, headers=AS2)
        assert response.status_code == 200, response.text
        page = response.json()
        assert page["type"] == "OrderedCollectionPage"
        assert page["partOf"] == collection
        assert page["id"] == url
        pages.append(page["orderedItems"])
        url = page.get("next")
    return pages


async def _group_id(state: AppState, ap_id: str) -> int:
    async with state.db() as session:
        found = await session.scalar(select(Actor.id).where(Actor.ap_id == ap_id))
    assert found is not None
    return found


async def test_the_outbox_walks_newest_first_with_public_activities_only(
    client: httpx.AsyncClient, state: AppState
) -> None:
    group = await make_group(state, "frailty")
    actor_id = await _group_id(state, group.ap_id)
    activities = [
        {"@context": "https://www.w3.org/ns/activitystreams", "id": f"{group.ap_id}/a/{n}",
         "type": "Announce", "actor": group.ap_id, "object": f"https://else.example/o/{n}"}
        for n in range(2 * PAGE_SIZE + 5)
    ]  # fmt: skip
    async with state.db.begin() as session:
        await session.execute(
            insert(OutboxActivity),
            [
                # Every third one is not public: the outbox lists public activities only.
                {"ap_id": a["id"], "actor_id": actor_id, "type": "Announce", "activity": a,
                 "body": orjson.dumps(a).decode(), "public": n % 3 != 0}
                for n, a in enumerate(activities)
            ],
        )  # fmt: skip
    pages = await _walk(client, f"{group.ap_id}/outbox")
    public = [a for n, a in enumerate(activities) if n % 3 != 0]
    expected = [{k: v for k, v in a.items() if k != "@context"} for a in reversed(public)]
    assert [len(page) for page in pages] == [PAGE_SIZE, len(public) - PAGE_SIZE]
    assert [item for page in pages for item in page] == expected
    root = (await client.get(f"{group.ap_id}/outbox", headers=AS2)).json()
    assert root["totalItems"] == len(public)


async def test_followers_walk_accepted_living_followers_only(
    client: httpx.AsyncClient, state: AppState
) -> None:
    group = await make_group(state, "frailty")
    group_id = await _group_id(state, group.ap_id)
    count = 2 * PAGE_SIZE + 3
    async with state.db.begin() as session:
        await session.execute(
            insert(Actor),
            [
                {"ap_id": f"https://peer{n}.example/users/p{n}", "type": "Person",
                 "local": False, "username": f"p{n}", "domain": f"peer{n}.example",
                 "deleted_at": utcnow() if n == 5 else None}
                for n in range(count)
            ],
        )  # fmt: skip
        rows = await session.execute(select(Actor.ap_id, Actor.id).where(Actor.local.is_(False)))
        ids: dict[str, int] = {ap_id: actor_id for ap_id, actor_id in rows}
        await session.execute(
            insert(Follow),
            [
                # One follow still pending and one follower whose account is deleted: neither
                # is listed.
                {"ap_id": f"https://peer{n}.example/follows/{n}", "follower_id": ids[ap_id],
                 "followed_id": group_id,
                 "state": FollowState.PENDING if n == 7 else FollowState.ACCEPTED}
                for n, ap_id in enumerate(sorted(ids, key=lambda a: ids[a]))
            ],
        )  # fmt: skip
    pages = await _walk(client, f"{group.ap_id}/followers")
    listed = [item for page in pages for item in page]
    assert len(listed) == len(set(listed))
    in_order = sorted(ids, key=lambda a: ids[a], reverse=True)  # newest follow first
    assert listed == [a for a in in_order if not a.startswith(("https://peer5.", "https://peer7."))]
    assert [len(page) for page in pages] == [PAGE_SIZE, PAGE_SIZE, count - 2 - 2 * PAGE_SIZE]


async def test_a_max_id_that_is_not_a_number_is_a_400(
    client: httpx.AsyncClient, state: AppState
) -> None:
    group = await make_group(state, "frailty")
    response = await client.get(f"{group.ap_id}/outbox?page=true&max_id=x", headers=AS2)
    assert response.status_code == 400
    assert "max_id" in response.text


async def test_items_added_between_pages_neither_repeat_nor_push_others_out(
    client: httpx.AsyncClient, state: AppState
) -> None:
    # A server walks the outbox while the group keeps sharing. Keyset pages (older than the
    # last id seen) are unmoved by new items; offset pages would repeat the newest ones.
    group = await make_group(state, "frailty")
    actor_id = await _group_id(state, group.ap_id)

    async def share(numbers: range) -> list[str]:
        activities = [{"id": f"{group.ap_id}/a/{n}", "type": "Announce"} for n in numbers]
        rows = [
            {"ap_id": a["id"], "actor_id": actor_id, "type": "Announce", "activity": a,
             "body": orjson.dumps(a).decode(), "public": True}
            for a in activities
        ]  # fmt: skip
        async with state.db.begin() as session:
            await session.execute(insert(OutboxActivity), rows)
        return [row["ap_id"] for row in rows]

    first_batch = await share(range(2 * PAGE_SIZE))
    root = (await client.get(f"{group.ap_id}/outbox", headers=AS2)).json()
    first = (await client.get(root["first"], headers=AS2)).json()
    await share(range(2 * PAGE_SIZE, 2 * PAGE_SIZE + 5))
    seen = [item["id"] for item in first["orderedItems"]]
    url: str | None = first.get("next")
    while url is not None:
        page = (await client.get(url, headers=AS2)).json()
        seen += [item["id"] for item in page["orderedItems"]]
        url = page.get("next")
    assert seen == list(reversed(first_batch))
