"""A Mastodon user following a group receives its stories as boosts and can fetch them."""

from __future__ import annotations

import httpx

from fedcop.services import stories
from fedcop.web.state import AppState
from fedcop.worker import build_workers
from tests.support.network import InProcessNetwork
from tests.support.peers import FakePeer
from tests.support.stories import AS2, GROUP, community, draft, follow_group, publish


async def test_follower_gets_an_announce_of_the_story_and_can_fetch_it(
    home: AppState, net: InProcessNetwork, peer: FakePeer
) -> None:
    await community(home)
    await follow_group(net, home, peer)
    story = await publish(home)

    announces = [a for a in peer.inbox if a["type"] == "Announce"]
    assert len(announces) == 1
    announce = announces[0]
    assert announce["actor"] == GROUP
    assert announce["object"] == story.ap_id  # an id, as Mastodon shows a boost
    assert "https://www.w3.org/ns/activitystreams#Public" in announce["to"]
    # INTEROP §6: a boost is cc'd to the booster's followers and the boosted post's author,
    # which is how the author's server learns of it (and Mastodon notifies them).
    assert announce["cc"] == [f"{GROUP}/followers", "https://home.test/users/convenor"]
    # the Create went to the author's followers (none remote) and the group, not to the peer
    assert [a["type"] for a in peer.inbox] == ["Accept", "Announce"]

    async with httpx.AsyncClient(transport=net) as client:
        response = await client.get(story.ap_id, headers=AS2)
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/activity+json"
    article = response.json()
    assert article["id"] == story.ap_id
    assert article["type"] == "Article"
    assert article["name"] == "What we learnt from falls huddles"
    # Mastodon shows name + summary + link: the teaser must stand on its own
    assert article["summary"] == "<p>Ten minutes a day changed how our ward talks about falls.</p>"
    assert article["url"] == story.ap_id
    assert "<h3>Why</h3>" in article["content"]
    assert article["attributedTo"] == "https://home.test/users/convenor"
    assert article["audience"] == GROUP
    assert {t["name"] for t in article["tag"]} == {"#falls", "#huddles"}
    assert article["sensitive"] is False
    assert article["source"]["mediaType"] == "text/markdown"


async def test_the_story_page_reads_well_in_a_browser(
    home: AppState, net: InProcessNetwork
) -> None:
    await community(home)
    story = await publish(home)
    async with httpx.AsyncClient(transport=net) as client:
        response = await client.get(story.ap_id, headers={"accept": "text/html"})
    assert response.status_code == 200
    assert "<h1>What we learnt from falls huddles</h1>" in response.text
    assert "Carol Convenor" in response.text
    assert "Frailty CoP" in response.text


async def test_a_content_warning_withholds_the_teaser(
    home: AppState, net: InProcessNetwork, peer: FakePeer
) -> None:
    await community(home)
    story = await publish(home, content_warning="death and dying")
    async with httpx.AsyncClient(transport=net) as client:
        article = (await client.get(story.ap_id, headers=AS2)).json()
    assert article["sensitive"] is True
    assert article["summary"] == "<p>Content warning: death and dying</p>"


async def test_an_edit_sends_update_to_the_groups_followers(
    home: AppState, net: InProcessNetwork, peer: FakePeer
) -> None:
    await community(home)
    await follow_group(net, home, peer)
    story = await publish(home)
    await stories.edit(
        home.db, home.urls, story.ap_id, "convenor", draft(title="Falls huddles, a year on")
    )
    await build_workers(home).run_until_idle()
    [update] = [a for a in peer.inbox if a["type"] == "Update"]
    assert update["object"]["name"] == "Falls huddles, a year on"
    assert "updated" in update["object"]
