"""GET /media/{id}/{filename}: the stored bytes, as an image, whatever is asked for."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from fedcop.ap.media import media_to_ap
from fedcop.models.media import Media
from fedcop.services import stories
from fedcop.services.actors import create_group, find_local_actor
from fedcop.services.media import store_image
from fedcop.services.stories import StoryDraft
from fedcop.web.state import AppState
from tests.conftest import TEST_DOMAIN
from tests.media.images import encode

AS2_ACCEPTS = [
    "application/activity+json",
    'application/ld+json; profile="https://www.w3.org/ns/activitystreams"',
    "application/json",
]


async def _uploaded(state: AppState, media_dir: Path, owner_id: int, fmt: str = "PNG") -> Media:
    return await store_image(state.db, media_dir, owner_id, encode(fmt), "Hand hygiene poster")


async def _stored(
    state: AppState, media_dir: Path, owner_id: int, fmt: str = "PNG", visibility: str = "public"
) -> Media:
    """An image as readers meet it: attached to a published story."""
    media = await _uploaded(state, media_dir, owner_id, fmt)
    if await find_local_actor_named(state, "handwashing") is None:
        await create_group(state.db, state.urls, "handwashing", name="Hand hygiene",
                           owner="nurse", visibility="approval")  # fmt: skip
    draft = StoryDraft(title="Posters that work", summary="What we learnt.", body="Text.",
                       pii_confirmed=True, image_ids=[media.id], visibility=visibility)  # fmt: skip
    await stories.publish(state.db, state.urls, "nurse", "handwashing", draft)
    return media


async def find_local_actor_named(state: AppState, name: str) -> object:
    async with state.db() as session:
        return await find_local_actor(session, name)


def _name(media: Media, extension: str = "png") -> str:
    return f"{media.sha256[:16]}.{extension}"


async def test_serves_the_file_with_its_type_and_safety_headers(
    client: httpx.AsyncClient, state: AppState, media_dir: Path, owner_id: int
) -> None:
    media = await _stored(state, media_dir, owner_id, "WEBP")
    response = await client.get(f"/media/{media.id}/{_name(media, 'jpg')}")
    assert response.status_code == 200
    assert response.headers["content-type"] == "image/webp"
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["content-security-policy"] == "default-src 'none'; sandbox"
    assert response.headers["cache-control"] == "public, max-age=31536000, immutable"
    assert "content-disposition" not in response.headers
    assert len(response.content) == media.size_bytes
    assert response.content[8:12] == b"WEBP"


@pytest.mark.parametrize("accept", AS2_ACCEPTS)
async def test_never_served_as_activitystreams(
    client: httpx.AsyncClient,
    state: AppState,
    media_dir: Path,
    owner_id: int,
    accept: str,
) -> None:
    media = await _stored(state, media_dir, owner_id)
    response = await client.get(
        f"/media/{media.id}/{_name(media, 'json')}", headers={"accept": accept}
    )
    assert response.status_code == 200
    assert response.headers["content-type"] == "image/png"
    assert response.content.startswith(b"\x89PNG")


@pytest.mark.parametrize(
    "path", ["/media/999999/a.png", "/media/abc/a.png", "/media/1" + "0" * 30 + "/a.png"]
)
async def test_unknown_media_is_404(client: httpx.AsyncClient, path: str) -> None:
    response = await client.get(path)
    assert response.status_code == 404
    assert not response.headers["content-type"].startswith("image/")


async def test_missing_file_is_404_not_500(
    client: httpx.AsyncClient, state: AppState, media_dir: Path, owner_id: int
) -> None:
    media = await _stored(state, media_dir, owner_id)
    _remove_files(media_dir)
    assert (await client.get(f"/media/{media.id}/{_name(media)}")).status_code == 404


async def test_ids_cannot_be_walked(
    client: httpx.AsyncClient, state: AppState, media_dir: Path, owner_id: int
) -> None:
    media = await _stored(state, media_dir, owner_id)
    assert (await client.get(f"/media/{media.id}/{_name(media)}")).status_code == 200
    assert (await client.get(f"/media/{media.id}/image.png")).status_code == 404


async def test_unposted_uploads_are_served_to_nobody(
    client: httpx.AsyncClient, state: AppState, media_dir: Path, owner_id: int
) -> None:
    media = await _uploaded(state, media_dir, owner_id)
    assert (await client.get(f"/media/{media.id}/{_name(media)}")).status_code == 404


async def test_members_only_images_are_not_served_to_strangers(
    client: httpx.AsyncClient, state: AppState, media_dir: Path, owner_id: int
) -> None:
    media = await _stored(state, media_dir, owner_id, visibility="members")
    assert (await client.get(f"/media/{media.id}/{_name(media)}")).status_code == 404


async def test_activitystreams_image_points_at_the_served_file(
    client: httpx.AsyncClient, state: AppState, media_dir: Path, owner_id: int
) -> None:
    media = await _stored(state, media_dir, owner_id, "GIF")
    document = media_to_ap(media, state.urls)
    assert document == {
        "type": "Image",
        "mediaType": "image/gif",
        "url": f"https://{TEST_DOMAIN}/media/{media.id}/{media.sha256[:16]}.gif",
        "name": "Hand hygiene poster",
        "width": 64,
        "height": 48,
        "blurhash": media.blurhash,
    }
    response = await client.get(document["url"])
    assert response.status_code == 200
    assert response.headers["content-type"] == "image/gif"


def _remove_files(media_dir: Path) -> None:
    for path in media_dir.rglob("*.png"):
        path.unlink()
