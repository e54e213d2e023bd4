"""Storing images people attach to stories: validated, cleaned of metadata, content-addressed.

Photos taken in health and care settings can carry GPS positions, device serial numbers and
capture times that identify a patient, a ward or a member of staff. Nothing of the upload is
kept but its pixels: every image is decoded and re-encoded from a fresh pixel buffer, so EXIF,
XMP, IPTC, comments and text chunks cannot survive, and an ICC profile is applied (converted
to sRGB) rather than carried.

The Pillow work is CPU-bound and blocking, so it runs in a worker thread.
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import math
import os
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import blurhash  # type: ignore[import-untyped]
from PIL import Image, ImageCms, ImageSequence, UnidentifiedImageError

from fedcop.db import SessionMaker
from fedcop.errors import ValidationError
from fedcop.models.media import ALT_MAX_LENGTH, ImageType, Media

MAX_UPLOAD_BYTES = 10 * 1024 * 1024
MAX_SIDE = 2560
# Decoding cost of an animation grows with its frames: past this many source pixels in all
# frames together only the first frame is kept (a 10 MB GIF can otherwise expand to gigapixels).
ANIMATION_PIXEL_BUDGET = 40_000_000

# Pillow's format name -> what we store it as. Only these decoders are ever tried.
_FORMATS = {
    "JPEG": ImageType.JPEG,
    "PNG": ImageType.PNG,
    "WEBP": ImageType.WEBP,
    "GIF": ImageType.GIF,
}
_ACCEPTED = "JPEG, PNG, WebP or GIF"

# Types people commonly try, recognised by their first bytes so the refusal can name them
# (HEIC is what iPhones take photos in by default).
_OTHER_TYPES: tuple[tuple[bytes, int, str], ...] = (
    (b"ftypheic", 4, "HEIC"),
    (b"ftypheix", 4, "HEIC"),
    (b"ftypmif1", 4, "HEIF"),
    (b"ftypavif", 4, "AVIF"),
    (b"II*\x00", 0, "TIFF"),
    (b"MM\x00*", 0, "TIFF"),
    (b"BM", 0, "BMP"),
    (b"%PDF", 0, "PDF"),
    (b"<svg", 0, "SVG"),
    (b"<?xml", 0, "SVG or XML"),
)

# EXIF orientation -> the transpose that shows the picture upright (as ImageOps.exif_transpose).
_ORIENTATION = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}
_EXIF_ORIENTATION_TAG = 0x0112
_SRGB = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB"))


@dataclass(frozen=True, slots=True)
class CleanImage:
    """An image re-encoded from its pixels alone."""

    data: bytes
    content_type: ImageType
    width: int
    height: int
    blurhash: str

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.data).hexdigest()


async def store_image(
    db: SessionMaker, media_dir: Path, owner_id: int, data: bytes, alt: str
) -> Media:
    """Validate, clean and store an uploaded image; ValidationError says why one is refused."""
    alt = check_alt(alt)
    if len(data) > MAX_UPLOAD_BYTES:
        raise ValidationError(
            f"the image is {len(data) / 1024 / 1024:.1f} MB; images may be at most "
            f"{MAX_UPLOAD_BYTES // 1024 // 1024} MB"
        )
    image = await asyncio.to_thread(clean_image, data)
    sha256 = image.sha256
    # The file first, then the row: a failed insert leaves an unreferenced file (harmless and
    # sweepable), never a row pointing at nothing.
    await asyncio.to_thread(
        write_file, media_path(media_dir, sha256, image.content_type), image.data
    )
    media = Media(
        owner_id=owner_id,
        story_id=None,
        sha256=sha256,
        content_type=image.content_type,
        width=image.width,
        height=image.height,
        size_bytes=len(image.data),
        alt=alt,
        blurhash=image.blurhash,
    )
    async with db.begin() as session:
        session.add(media)
    return media


async def find_media(db: SessionMaker, media_id: int) -> Media | None:
    async with db() as session:
        return await session.get(Media, media_id)


def media_path(media_dir: Path, sha256: str, content_type: str) -> Path:
    """Where a file lives: two levels of fan-out keep directories small on any filesystem."""
    extension = ImageType(content_type).extension
    return media_dir / sha256[:2] / sha256[2:4] / f"{sha256}.{extension}"


def check_alt(alt: str | None) -> str:
    text = (alt or "").strip()
    if not text:
        raise ValidationError(
            "every image needs a description (alt text) for people who cannot see it"
        )
    if len(text) > ALT_MAX_LENGTH:
        raise ValidationError(
            f"the image description is {len(text)} characters; it may be at most {ALT_MAX_LENGTH}"
        )
    return text


def write_file(path: Path, data: bytes) -> None:
    """Write atomically: readers see the whole file under its final name or no file at all."""
    if path.exists():  # content-addressed: the same name means the same bytes
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=".upload-", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            # Synced before the rename: a crash must not leave a truncated file under the
            # final name, which the exists() check above would then keep for ever.
            os.fsync(handle.fileno())
        # Served to anyone with the URL; a reverse proxy may serve the directory itself.
        os.chmod(temporary, 0o644)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    _fsync_directory(path.parent)


def _fsync_directory(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


# --- Pillow work, run in a thread -----------------------------------------------------------


def clean_image(data: bytes) -> CleanImage:
    """Decode, check, orient, resize and re-encode an image; ValidationError on refusal."""
    with _open(data) as source:
        content_type = _FORMATS[str(source.format)]
        _check_pixels(source)
        frames, durations = _clean_frames(source, content_type)
        loop = source.info.get("loop")
    first = frames[0]
    return CleanImage(
        data=_encode(frames, durations, loop, content_type),
        content_type=content_type,
        width=first.width,
        height=first.height,
        blurhash=_blurhash(first),
    )


def _open(data: bytes) -> Image.Image:
    try:
        # Only the four decoders we accept: every other parser in Pillow stays out of reach.
        return Image.open(io.BytesIO(data), formats=list(_FORMATS))
    except Image.DecompressionBombError:
        raise _too_many_pixels() from None
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError):
        raise ValidationError(_unrecognised(data)) from None


def _unrecognised(data: bytes) -> str:
    for magic, offset, name in _OTHER_TYPES:
        if data[offset : offset + len(magic)] == magic:
            return f"{name} images are not accepted; please upload a {_ACCEPTED} image"
    return f"this file is not an image fedcop can read; please upload a {_ACCEPTED} image"


def _check_pixels(image: Image.Image) -> None:
    # Checked on the header's dimensions, before any pixel is decoded. Pillow only warns
    # between 1x and 2x its limit; we refuse from 1x.
    if image.width * image.height > (Image.MAX_IMAGE_PIXELS or math.inf):
        raise _too_many_pixels()


def _too_many_pixels() -> ValidationError:
    return ValidationError(
        "the image has too many pixels to process safely; please upload a smaller one"
    )


def _clean_frames(
    source: Image.Image, content_type: ImageType
) -> tuple[list[Image.Image], list[int]]:
    """Every frame (or only the first, see `_keeps_animation`) as fresh, upright pixels."""
    transpose = _ORIENTATION.get(source.getexif().get(_EXIF_ORIENTATION_TAG, 1))
    animated = _keeps_animation(source, content_type)
    _draft(source, content_type, animated)
    frames: list[Image.Image] = []
    durations: list[int] = []
    try:
        for frame in _frames(source, animated):
            frames.append(_clean_frame(frame, content_type, transpose, animated))
            durations.append(int(frame.info.get("duration") or 100))
    except (OSError, ValueError, SyntaxError, EOFError):
        raise ValidationError(
            f"this image is damaged or truncated; please upload a {_ACCEPTED} image"
        ) from None
    return frames, durations


def _keeps_animation(source: Image.Image, content_type: ImageType) -> bool:
    # GIF and WebP animations are kept when decoding them all is affordable; other formats'
    # animations (APNG) and over-budget ones keep their first frame.
    if content_type not in (ImageType.GIF, ImageType.WEBP):
        return False
    frame_count = int(getattr(source, "n_frames", 1))
    return frame_count > 1 and frame_count * source.width * source.height <= ANIMATION_PIXEL_BUDGET


def _frames(source: Image.Image, animated: bool) -> Iterator[Image.Image]:
    if animated:
        yield from ImageSequence.Iterator(source)
    else:
        source.seek(0)
        yield source


def _draft(source: Image.Image, content_type: ImageType, animated: bool) -> None:
    # JPEG can decode at 1/2, 1/4 or 1/8 scale: a 48-megapixel phone photo then costs a
    # fraction of the memory and time on its way down to MAX_SIDE.
    longest = max(source.size)
    if content_type == ImageType.JPEG and not animated and longest > MAX_SIDE:
        scale = MAX_SIDE / longest
        source.draft(
            source.mode, (math.ceil(source.width * scale), math.ceil(source.height * scale))
        )


def _clean_frame(
    frame: Image.Image,
    content_type: ImageType,
    transpose: Image.Transpose | None,
    animated: bool,
) -> Image.Image:
    image = _to_srgb(frame)
    image = image.convert(_target_mode(image, content_type, animated))
    if transpose is not None:
        image = image.transpose(transpose)
    if max(image.size) > MAX_SIDE:
        scale = MAX_SIDE / max(image.size)
        size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
        image = image.resize(size, Image.Resampling.LANCZOS)
    # A new image from the raw pixels: no info dict, no EXIF, no palette or text chunks can
    # follow it into the encoder, whatever a Pillow version copies by default.
    return Image.frombytes(image.mode, image.size, image.tobytes())


def _to_srgb(image: Image.Image) -> Image.Image:
    """Apply an embedded ICC profile, so colours stay right once the profile is dropped."""
    icc = image.info.get("icc_profile")
    if not icc or image.mode not in ("RGB", "RGBA", "CMYK"):
        return image
    output_mode = "RGBA" if image.mode == "RGBA" else "RGB"
    try:
        profile = ImageCms.ImageCmsProfile(io.BytesIO(icc))
        converted = ImageCms.profileToProfile(image, profile, _SRGB, outputMode=output_mode)
    except (ImageCms.PyCMSError, OSError, ValueError, TypeError):
        return image  # a broken profile: keep the pixels as they are, drop it all the same
    return converted if converted is not None else image


def _target_mode(image: Image.Image, content_type: ImageType, animated: bool) -> str:
    if content_type == ImageType.JPEG:
        return "L" if image.mode == "L" else "RGB"
    if (
        animated
        or image.mode in ("RGBA", "LA", "PA", "La", "RGBa")
        or ("transparency" in image.info)
    ):
        return "RGBA"
    return "L" if image.mode == "L" and content_type == ImageType.PNG else "RGB"


def _encode(
    frames: list[Image.Image], durations: list[int], loop: Any, content_type: ImageType
) -> bytes:
    out = io.BytesIO()
    first = frames[0]
    if content_type == ImageType.JPEG:
        first.save(out, "JPEG", quality=85, optimize=True, progressive=True)
    elif content_type == ImageType.PNG:
        first.save(out, "PNG")
    elif len(frames) == 1:
        first.save(out, "WEBP" if content_type == ImageType.WEBP else "GIF", **_still(content_type))
    else:
        options: dict[str, Any] = {"save_all": True, "append_images": frames[1:]}
        options["duration"] = durations
        if loop is not None:
            options["loop"] = int(loop)
        if content_type == ImageType.GIF:
            # Frames are whole pictures: clearing between them is always right.
            first.save(out, "GIF", disposal=2, **options)
        else:
            first.save(out, "WEBP", quality=85, **options)
    return out.getvalue()


def _still(content_type: ImageType) -> dict[str, Any]:
    return {"quality": 85} if content_type == ImageType.WEBP else {}


def _blurhash(image: Image.Image) -> str:
    """The placeholder Mastodon shows while an image loads, from a tiny copy of it."""
    small = image.convert("RGB")
    small.thumbnail((32, 32), Image.Resampling.BILINEAR)
    width, height = small.size
    raw = small.tobytes()  # RGB triples, row by row (getdata is deprecated in Pillow 13)
    pixels = [raw[i : i + 3] for i in range(0, len(raw), 3)]
    rows = [pixels[y * width : (y + 1) * width] for y in range(height)]
    return str(blurhash.encode(rows, components_x=4, components_y=3))
