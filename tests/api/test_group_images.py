"""A group's avatar and header: set by its moderators, cleaned, shown on its actor and page."""

from __future__ import annotations

import httpx
from sqlalchemy import func, select

from fedcop.models import AuditEntry, Media, OutboxActivity
from fedcop.web.state import AppState
from tests.api.helpers import create_group
from tests.media.images import SECRET, encode

AS2 = {"accept": "application/activity+json"}


async def test_the_owner_sets_an_avatar_shown_on_the_actor_the_page_and_served_clean(
    client: httpx.AsyncClient, state: AppState, alice: dict[str, str]
) -> None:
    await create_group(client, alice, "frailty")
    response = await client.put(
        "/api/v1/groups/frailty/icon?alt=Our%20logo", content=encode("JPEG"),
        headers={**alice, "content-type": "image/jpeg"},
    )  # fmt: skip
    assert response.status_code == 200, response.text
    icon = response.json()["icon"]
    assert icon.startswith("https://fedcop.test/groups/frailty/images/")
    assert response.json()["image"] is None

    actor = (await client.get("/groups/frailty", headers=AS2)).json()
    assert actor["icon"] == {"type": "Image", "url": icon}
    assert "image" not in actor
    page = await client.get("/groups/frailty", headers={"accept": "text/html"})
    assert f'src="{icon}"' in page.text

    served = await client.get(icon, headers=AS2)  # whatever is asked for, an image comes back
    assert served.status_code == 200
    assert served.headers["content-type"] == "image/jpeg"
    assert served.headers["x-content-type-options"] == "nosniff"
    assert SECRET.encode() not in served.content  # EXIF, XMP and comments are gone
    async with state.db() as session:
        media = (await session.scalars(select(Media))).one()
        updates = await session.scalar(
            select(func.count()).where(OutboxActivity.type == "Update")
        )  # fmt: skip
        audit = (await session.scalars(select(AuditEntry.action))).all()
    assert media.alt == "Our logo"
    assert updates == 1  # followers' servers are told to refresh the group
    assert audit == ["set avatar"]


async def test_a_header_replaces_and_removal_clears_and_old_urls_stop_answering(
    client: httpx.AsyncClient, alice: dict[str, str]
) -> None:
    await create_group(client, alice, "frailty")
    put = {**alice, "content-type": "image/png"}
    first = (await client.put("/api/v1/groups/frailty/image", content=encode("PNG"),
                              headers=put)).json()["image"]  # fmt: skip
    second = (await client.put("/api/v1/groups/frailty/image", content=encode("WEBP"),
                               headers=put)).json()["image"]  # fmt: skip
    assert first != second
    assert (await client.get(first)).status_code == 404
    assert (await client.get(second)).headers["content-type"] == "image/webp"
    actor = (await client.get("/groups/frailty", headers=AS2)).json()
    assert actor["image"]["url"] == second

    removed = await client.delete("/api/v1/groups/frailty/image", headers=alice)
    assert removed.status_code == 200
    assert removed.json()["image"] is None
    assert (await client.get(second)).status_code == 404
    assert "image" not in (await client.get("/groups/frailty", headers=AS2)).json()


async def test_only_owners_and_moderators_may_and_bad_uploads_are_refused_cleanly(
    client: httpx.AsyncClient, state: AppState, alice: dict[str, str], bob: dict[str, str]
) -> None:
    await create_group(client, alice, "frailty")
    jpeg = {"content-type": "image/jpeg"}
    refused = await client.put(
        "/api/v1/groups/frailty/icon", content=encode("JPEG"), headers={**bob, **jpeg}
    )
    assert refused.status_code == 403
    assert "moderator" in refused.json()["error"]
    assert (await client.delete("/api/v1/groups/frailty/icon", headers=bob)).status_code == 403
    not_an_image = await client.put(
        "/api/v1/groups/frailty/icon", content=b"<svg onload=alert(1)>", headers={**alice, **jpeg}
    )
    assert not_an_image.status_code == 422
    long_alt = await client.put(
        "/api/v1/groups/frailty/icon?alt=" + "x" * 1501, content=encode("JPEG"),
        headers={**alice, **jpeg},
    )  # fmt: skip
    assert long_alt.status_code == 422
    nowhere = await client.put(
        "/api/v1/groups/nowhere/icon", content=encode("JPEG"), headers={**alice, **jpeg}
    )
    assert nowhere.status_code == 404
    unsigned = await client.put("/api/v1/groups/frailty/icon", content=encode("JPEG"))
    assert unsigned.status_code == 401
    async with state.db() as session:
        assert await session.scalar(select(func.count()).select_from(Media)) == 0
    assert (await client.get("/groups/frailty/images/1/0000000000000000.jpg")).status_code == 404
    assert (await client.get("/groups/frailty/images/x/y.jpg")).status_code == 404
    assert (await client.get("/groups/nobody/images/1/y.jpg")).status_code == 404
