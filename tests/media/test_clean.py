"""Decoding, refusing and cleaning images, without a database."""

from __future__ import annotations

import io
import random

import pytest
from PIL import Image

from fedcop.errors import ValidationError
from fedcop.models.media import ImageType
from fedcop.services import media as media_service
from fedcop.services.media import MAX_SIDE, clean_image
from tests.media.images import (
    FORMATS,
    SECRET,
    animated_gif,
    encode,
    other_format,
    picture,
    png_bomb,
)

CONTENT_TYPES = dict(zip(FORMATS, ImageType, strict=True))
_METADATA_KEYS = {"exif", "xmp", "icc_profile", "comment", "Author", "XML:com.adobe.xmp"}


def _open(data: bytes) -> Image.Image:
    return Image.open(io.BytesIO(data))


@pytest.mark.parametrize("fmt", FORMATS)
def test_each_accepted_format_is_kept_in_its_type(fmt: str) -> None:
    cleaned = clean_image(encode(fmt))
    assert cleaned.content_type == CONTENT_TYPES[fmt]
    stored = _open(cleaned.data)
    assert stored.format == fmt
    assert (cleaned.width, cleaned.height) == stored.size == (64, 48)
    assert cleaned.blurhash
    assert len(cleaned.blurhash) >= 6


@pytest.mark.parametrize("fmt", FORMATS)
def test_all_metadata_is_stripped(fmt: str) -> None:
    source = encode(fmt)
    assert SECRET.encode() in source  # the test image really carries it
    cleaned = clean_image(source)
    assert SECRET.encode() not in cleaned.data
    stored = _open(cleaned.data)
    assert not stored.getexif()
    assert not stored.getexif().get_ifd(0x8825)  # GPS
    assert not _METADATA_KEYS & set(stored.info)


def test_exif_orientation_is_applied_then_dropped() -> None:
    # Orientation 6: the camera was turned; the picture is shown turned 90° clockwise, so
    # the red left half of the sensor image becomes the top.
    cleaned = clean_image(encode("JPEG", picture((80, 40)), orientation=6))
    stored = _open(cleaned.data).convert("RGB")
    assert stored.size == (40, 80)
    top, bottom = stored.getpixel((20, 10)), stored.getpixel((20, 70))
    assert isinstance(top, tuple)
    assert isinstance(bottom, tuple)
    assert top[0] > 200
    assert top[2] < 60
    assert bottom[2] > 200
    assert bottom[0] < 60
    assert not _open(cleaned.data).getexif()


@pytest.mark.parametrize("fmt", ["JPEG", "PNG"])
def test_longest_side_is_capped(fmt: str) -> None:
    cleaned = clean_image(encode(fmt, picture((4000, 1000))))
    assert (cleaned.width, cleaned.height) == (MAX_SIDE, 640)
    assert _open(cleaned.data).size == (MAX_SIDE, 640)


def test_transparency_survives() -> None:
    image = picture(mode="RGBA")
    image.putpixel((0, 0), (0, 0, 0, 0))
    stored = _open(clean_image(encode("PNG", image)).data)
    assert stored.mode == "RGBA"
    assert stored.getpixel((0, 0)) == (0, 0, 0, 0)


def test_animated_gif_keeps_its_frames_and_timing() -> None:
    stored = _open(clean_image(animated_gif(frames=3)).data)
    assert getattr(stored, "n_frames", 1) == 3
    assert stored.info["duration"] == 120
    assert stored.info["loop"] == 0


def test_animated_webp_keeps_its_frames() -> None:
    out = io.BytesIO()
    frames = [Image.new("RGB", (40, 30), colour) for colour in ("red", "green", "blue")]
    frames[0].save(out, "WEBP", save_all=True, append_images=frames[1:], duration=80, loop=0)
    assert getattr(_open(clean_image(out.getvalue()).data), "n_frames", 1) == 3


def test_animation_over_budget_keeps_the_first_frame(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(media_service, "ANIMATION_PIXEL_BUDGET", 1000)
    stored = _open(clean_image(animated_gif(frames=3)).data)
    assert getattr(stored, "n_frames", 1) == 1
    assert stored.convert("RGB").getpixel((0, 0)) == (255, 0, 0)


def test_text_is_not_an_image() -> None:
    with pytest.raises(ValidationError, match="not an image"):
        clean_image(b"Ward 7 handover notes\n" * 20)


@pytest.mark.parametrize(
    ("data", "name"),
    [
        (other_format("BMP"), "BMP"),
        (other_format("TIFF"), "TIFF"),
        (b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic", "HEIC"),
        (b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>', "SVG"),
    ],
)
def test_other_image_types_are_refused_by_name(data: bytes, name: str) -> None:
    with pytest.raises(ValidationError, match=f"{name} images are not accepted"):
        clean_image(data)


def test_decompression_bomb_is_refused_before_decoding() -> None:
    with pytest.raises(ValidationError, match="too many pixels"):
        clean_image(png_bomb())


def test_pillow_pixel_limit_is_enforced_from_one_times(monkeypatch: pytest.MonkeyPatch) -> None:
    # Pillow only warns between 1x and 2x MAX_IMAGE_PIXELS; we refuse.
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 64 * 48 - 1)
    with (
        pytest.warns(Image.DecompressionBombWarning),
        pytest.raises(ValidationError, match="too many pixels"),
    ):
        clean_image(encode("PNG"))


def test_truncated_image_is_refused() -> None:
    noise = Image.frombytes("RGB", (300, 300), random.randbytes(300 * 300 * 3))
    data = encode("PNG", noise)
    with pytest.raises(ValidationError, match="damaged or truncated"):
        clean_image(data[: len(data) // 2])


def test_icc_profile_is_applied_and_dropped() -> None:
    stored = _open(clean_image(encode("JPEG")).data)
    assert "icc_profile" not in stored.info


def test_same_input_gives_the_same_bytes() -> None:
    # Content addressing relies on re-encoding being deterministic.
    data = encode("JPEG")
    assert clean_image(data).sha256 == clean_image(data).sha256
