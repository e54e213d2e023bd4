"""Images, comments, likes and shares, follows and reports through the API."""

from __future__ import annotations

import io

import httpx
from PIL import Image

from fedcop.web.state import AppState
from fedcop.worker import build_workers
from tests.api.helpers import create_group, publish


def _png() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (40, 30), (200, 30, 30)).save(out, "PNG")
    return out.getvalue()


async def test_upload_an_image_and_attach_it(
    client: httpx.AsyncClient, alice: dict[str, str]
) -> None:
    uploaded = await client.post(
        "/api/v1/media",
        params={"alt": "A whiteboard of falls"},
        content=_png(),
        headers={**alice, "content-type": "image/png"},
    )
    assert uploaded.status_code == 201, uploaded.text
    media = uploaded.json()
    assert (media["content_type"], media["width"], media["height"]) == ("image/png", 40, 30)
    await create_group(client, alice, "frailty")
    story = await publish(client, alice, "frailty", image_ids=[media["id"]])
    document = await client.get(
        str(story["ap_id"]), headers={"accept": "application/activity+json"}
    )
    [attachment] = document.json()["attachment"]
    assert attachment["name"] == "A whiteboard of falls"


async def test_upload_refuses_missing_alt_and_non_images(
    client: httpx.AsyncClient, alice: dict[str, str]
) -> None:
    no_alt = await client.post("/api/v1/media", content=_png(), headers=alice)
    assert no_alt.status_code == 422
    assert "alt text" in no_alt.json()["error"]
    pdf = await client.post(
        "/api/v1/media", params={"alt": "x"}, content=b"%PDF-1.7 ...", headers=alice
    )
    assert pdf.status_code == 422
    assert "PDF images are not accepted" in pdf.json()["error"]


async def test_comment_and_react(
    client: httpx.AsyncClient, alice: dict[str, str], bob: dict[str, str]
) -> None:
    await create_group(client, alice, "frailty")
    story = await publish(client, alice, "frailty")
    commented = await client.post(
        "/api/v1/comments", json={"in_reply_to": story["ap_id"], "body": "Thank you!"},
        headers=bob,
    )  # fmt: skip
    assert commented.status_code == 201, commented.text
    assert commented.json()["content"] == "<p>Thank you!</p>\n"

    liked = await client.post(
        "/api/v1/reactions", json={"type": "Like", "object": story["ap_id"]}, headers=bob
    )
    assert liked.status_code == 201
    assert liked.json()["type"] == "Like"
    again = await client.post(
        "/api/v1/reactions", json={"type": "Like", "object": story["ap_id"]}, headers=bob
    )
    assert again.status_code == 409
    shared = await client.post(
        "/api/v1/reactions",
        json={"type": "Announce", "object": commented.json()["ap_id"]},
        headers=bob,
    )
    assert shared.status_code == 201

    counts = (await client.get(f"/api/v1/stories/{story['id']}", headers=bob)).json()["counts"]
    assert (counts["likes"], counts["comments"]) == (1, 1)


async def test_comment_and_react_on_unknown_things(
    client: httpx.AsyncClient, alice: dict[str, str]
) -> None:
    elsewhere = "https://fedcop.test/stories/nothing"
    comment = await client.post(
        "/api/v1/comments", json={"in_reply_to": elsewhere, "body": "Hi"}, headers=alice
    )
    assert comment.status_code == 404
    react = await client.post(
        "/api/v1/reactions", json={"type": "Dislike", "object": elsewhere}, headers=alice
    )
    assert react.status_code == 422
    assert "body.type: must be one of Like, Announce" in react.json()["error"]


async def test_follow_and_unfollow(
    client: httpx.AsyncClient, state: AppState, alice: dict[str, str], bob: dict[str, str]
) -> None:
    await create_group(client, alice, "frailty")
    target = {"target": "@frailty@fedcop.test"}
    followed = await client.post("/api/v1/follows", json=target, headers=bob)
    assert followed.status_code == 201
    assert followed.json()["followed"] == "https://fedcop.test/groups/frailty"
    assert followed.json()["state"] == "pending"  # until the group's Accept is processed
    assert (await client.post("/api/v1/follows", json=target, headers=bob)).status_code == 409
    await build_workers(state).run_until_idle()

    assert (await client.request("DELETE", "/api/v1/follows", json=target,
                                 headers=bob)).status_code == 204  # fmt: skip
    again = await client.request("DELETE", "/api/v1/follows", json=target, headers=bob)
    assert again.status_code == 404
    nobody = await client.post("/api/v1/follows", json={"target": "@nobody@fedcop.test"},
                               headers=bob)  # fmt: skip
    assert nobody.status_code == 422


async def test_report_a_story(
    client: httpx.AsyncClient, alice: dict[str, str], bob: dict[str, str]
) -> None:
    await create_group(client, alice, "frailty")
    story = await publish(client, alice, "frailty")
    reported = await client.post(
        "/api/v1/reports", json={"object": story["ap_id"], "comment": "names a patient"},
        headers=bob,
    )  # fmt: skip
    assert reported.status_code == 201, reported.text
    assert reported.json()["forwarded"] is False
    assert reported.json()["comment"] == "names a patient"
    unknown = await client.post(
        "/api/v1/reports", json={"object": "https://elsewhere.test/x"}, headers=bob
    )
    assert unknown.status_code == 404
