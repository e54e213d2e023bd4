"""store_image on both databases: the file on disk, the row, and every refusal."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image
from sqlalchemy import delete, func, select

from fedcop.errors import ValidationError
from fedcop.models import Actor
from fedcop.models.media import ALT_MAX_LENGTH, Media
from fedcop.services.media import MAX_UPLOAD_BYTES, media_path, store_image
from fedcop.web.state import AppState
from tests.media.images import SECRET, encode

ALT = "A dressing trolley laid out for an aseptic procedure."


def _files(media_dir: Path) -> list[Path]:
    return sorted(p for p in media_dir.rglob("*") if p.is_file()) if media_dir.exists() else []


async def _count(state: AppState) -> int:
    async with state.db() as session:
        return await session.scalar(select(func.count()).select_from(Media)) or 0


async def test_stores_a_clean_file_and_a_row(
    state: AppState, media_dir: Path, owner_id: int
) -> None:
    media = await store_image(state.db, media_dir, owner_id, encode("JPEG"), f"  {ALT} ")
    path = media_path(media_dir, media.sha256, media.content_type)
    assert path == media_dir / media.sha256[:2] / media.sha256[2:4] / f"{media.sha256}.jpg"
    assert _files(media_dir) == [path]  # no temporary file left behind
    with Image.open(path) as stored:
        assert stored.format == "JPEG"
        assert not stored.getexif()
        assert not stored.getexif().get_ifd(0x8825)  # no GPS
        assert "xmp" not in stored.info
        assert "comment" not in stored.info
    assert SECRET.encode() not in path.read_bytes()
    async with state.db() as session:
        row = await session.get(Media, media.id)
    assert row is not None
    assert (row.owner_id, row.story_id, row.alt) == (owner_id, None, ALT)
    assert (row.content_type, row.width, row.height) == ("image/jpeg", 64, 48)
    assert row.size_bytes == path.stat().st_size
    assert row.blurhash
    assert row.created_at.tzinfo is not None


async def test_same_image_twice_is_one_file_and_two_rows(
    state: AppState, media_dir: Path, owner_id: int
) -> None:
    data = encode("PNG")
    first = await store_image(state.db, media_dir, owner_id, data, "first description")
    second = await store_image(state.db, media_dir, owner_id, data, "second description")
    assert first.id != second.id
    assert first.sha256 == second.sha256
    assert len(_files(media_dir)) == 1
    assert await _count(state) == 2


@pytest.mark.parametrize(
    ("alt", "message"),
    [
        ("", "needs a description"),
        ("   \n\t", "needs a description"),
        ("x" * (ALT_MAX_LENGTH + 1), f"at most {ALT_MAX_LENGTH}"),
    ],
)
async def test_alt_text_is_required_and_bounded(
    state: AppState, media_dir: Path, owner_id: int, alt: str, message: str
) -> None:
    with pytest.raises(ValidationError, match=message):
        await store_image(state.db, media_dir, owner_id, encode("JPEG"), alt)
    assert _files(media_dir) == []
    assert await _count(state) == 0


async def test_longest_alt_text_is_accepted(
    state: AppState, media_dir: Path, owner_id: int
) -> None:
    alt = "é" * ALT_MAX_LENGTH  # characters, not bytes, on both databases
    media = await store_image(state.db, media_dir, owner_id, encode("GIF"), alt)
    assert media.alt == alt


async def test_over_ten_megabytes_is_refused_before_decoding(
    state: AppState, media_dir: Path, owner_id: int
) -> None:
    data = encode("JPEG")
    data += b"\x00" * (MAX_UPLOAD_BYTES + 1 - len(data))  # still a valid JPEG, just too big
    with pytest.raises(ValidationError, match="at most 10 MB"):
        await store_image(state.db, media_dir, owner_id, data, ALT)
    assert _files(media_dir) == []
    assert await _count(state) == 0


async def test_text_renamed_to_jpg_is_refused(
    state: AppState, media_dir: Path, owner_id: int
) -> None:
    with pytest.raises(ValidationError, match="not an image"):
        await store_image(state.db, media_dir, owner_id, b"patient list\n" * 10, ALT)
    assert _files(media_dir) == []
    assert await _count(state) == 0


async def test_deleting_the_owner_deletes_the_rows(
    state: AppState, media_dir: Path, owner_id: int
) -> None:
    await store_image(state.db, media_dir, owner_id, encode("WEBP"), ALT)
    async with state.db.begin() as session:
        await session.execute(delete(Actor).where(Actor.id == owner_id))
    assert await _count(state) == 0
