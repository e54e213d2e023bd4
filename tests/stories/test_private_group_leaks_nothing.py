"""A private group's stories are never fetchable by anyone outside it, by any route."""

from __future__ import annotations

import httpx
import pytest

from fedcop.errors import ValidationError
from fedcop.web.state import AppState
from tests.support.network import InProcessNetwork
from tests.support.peers import FakePeer
from tests.support.stories import AS2, GROUP, community, join_approved, publish


async def _get(net: InProcessNetwork, url: str, signer: FakePeer | None = None) -> httpx.Response:
    headers = signer.signed_headers("GET", url) if signer else AS2
    async with httpx.AsyncClient(transport=net) as client:
        return await client.get(url, headers=headers)


@pytest.fixture
async def outsider(net: InProcessNetwork) -> FakePeer:
    fake = net.add_peer(FakePeer("outsider.test"))
    return fake


async def test_members_only_story_is_invisible_outside_and_visible_inside(
    home: AppState, net: InProcessNetwork, peer: FakePeer, outsider: FakePeer
) -> None:
    await community(home, visibility="private")
    await join_approved(net, home, peer)  # asks to join, and is let in
    story = await publish(home, visibility="members")

    # the member got the story straight from its author, in its own inbox, never via a group boost
    creates = [a for a in peer.inbox if a["type"] == "Create"]
    assert [c["object"]["id"] for c in creates] == [story.ap_id]
    assert not [a for a in peer.inbox if a["type"] == "Announce"]
    assert all(r.url.path != "/inbox" for r in peer.requests if r.method == "POST")

    assert (await _get(net, story.ap_id)).status_code == 404  # unsigned
    assert (await _get(net, story.ap_id, outsider)).status_code == 404  # signed, not a member
    assert (await _get(net, story.ap_id, peer)).status_code == 200  # a member
    async with httpx.AsyncClient(transport=net) as client:  # a browser
        assert (await client.get(story.ap_id, headers={"accept": "text/html"})).status_code == 404

    for collection in ("outbox", "followers", "following"):
        for signer in (None, outsider):
            document = (await _get(net, f"{GROUP}/{collection}", signer)).json()
            assert "first" not in document  # how many, never who or what
            assert "orderedItems" not in document or document["orderedItems"] == []
    author_outbox = (await _get(net, "https://home.test/users/convenor/outbox")).json()
    page = (await _get(net, author_outbox["first"])).json()
    assert story.ap_id not in str(page)


async def test_members_only_is_the_only_choice_in_a_private_group(home: AppState) -> None:
    await community(home, visibility="private")
    with pytest.raises(ValidationError, match="may be: members"):
        await publish(home, visibility="public")


async def test_a_private_group_names_its_moderators_to_members_only(
    home: AppState, net: InProcessNetwork, peer: FakePeer, outsider: FakePeer
) -> None:
    await community(home, visibility="private")
    await join_approved(net, home, peer)  # asks to join, and is let in
    convenor = "https://home.test/users/convenor"

    for signer in (None, outsider):  # how many, never who
        document = (await _get(net, f"{GROUP}/moderators", signer)).json()
        assert document["totalItems"] == 1
        assert convenor not in str(document)
    async with httpx.AsyncClient(transport=net) as client:  # nor on its page
        page = await client.get(GROUP, headers={"accept": "text/html"})
    assert page.status_code == 200
    assert convenor not in page.text
    member_view = (await _get(net, f"{GROUP}/moderators", peer)).json()
    assert member_view["orderedItems"] == [convenor]
