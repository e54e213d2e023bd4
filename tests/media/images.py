"""Test images made with Pillow, each carrying metadata that must not survive storage."""

from __future__ import annotations

import io
import struct
import zlib

from PIL import ExifTags, Image, ImageCms, PngImagePlugin

SECRET = "SecretWardCam"  # planted in every kind of metadata; must never reach the stored file
FORMATS = ["JPEG", "PNG", "WEBP", "GIF"]
XMP = (
    '<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-'
    f'syntax-ns#"><rdf:Description><tiff:Model>{SECRET}</tiff:Model></rdf:Description>'
    "</rdf:RDF></x:xmpmeta>"
).encode()


def exif_with_gps(orientation: int = 1) -> Image.Exif:
    exif = Image.Exif()
    exif[ExifTags.Base.Make] = SECRET
    exif[ExifTags.Base.Model] = SECRET
    exif[ExifTags.Base.Orientation] = orientation
    exif[ExifTags.IFD.GPSInfo] = {
        ExifTags.GPS.GPSLatitudeRef: "N",
        ExifTags.GPS.GPSLatitude: (51.0, 30.0, 26.0),
        ExifTags.GPS.GPSLongitudeRef: "W",
        ExifTags.GPS.GPSLongitude: (0.0, 7.0, 39.0),
    }
    return exif


def picture(size: tuple[int, int] = (64, 48), mode: str = "RGB") -> Image.Image:
    """Two coloured halves, left red and right blue, so orientation can be checked."""
    image = Image.new(mode, size, (0, 0, 255, 255) if mode == "RGBA" else (0, 0, 255))
    image.paste((255, 0, 0) if mode == "RGB" else (255, 0, 0, 255), (0, 0, size[0] // 2, size[1]))
    return image


def encode(fmt: str, image: Image.Image | None = None, *, orientation: int = 1) -> bytes:
    """An image in `fmt` with EXIF (GPS, camera), XMP, ICC and comments where it can hold them."""
    image = image or picture()
    out = io.BytesIO()
    exif = exif_with_gps(orientation).tobytes()
    icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    if fmt == "JPEG":
        image.convert("RGB").save(
            out, "JPEG", exif=exif, xmp=XMP, icc_profile=icc, comment=SECRET, quality=95
        )
    elif fmt == "PNG":
        text = PngImagePlugin.PngInfo()
        text.add_text("Author", SECRET)
        text.add_itxt("XML:com.adobe.xmp", XMP.decode())
        image.save(out, "PNG", exif=exif, icc_profile=icc, pnginfo=text)
    elif fmt == "WEBP":
        image.save(out, "WEBP", exif=exif, xmp=XMP, icc_profile=icc, quality=95)
    else:
        image.save(out, "GIF", comment=SECRET)
    return out.getvalue()


def animated_gif(frames: int = 3, size: tuple[int, int] = (32, 32)) -> bytes:
    colours = [(255, 0, 0), (0, 255, 0), (0, 0, 255), (255, 255, 0)]
    images = [Image.new("RGB", size, colours[i % len(colours)]) for i in range(frames)]
    out = io.BytesIO()
    images[0].save(
        out, "GIF", save_all=True, append_images=images[1:], duration=120, loop=0, comment=SECRET
    )
    return out.getvalue()


def png_bomb(width: int = 100_000, height: int = 100_000) -> bytes:
    """A PNG whose header claims 10 gigapixels, with (almost) no data behind it."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    idat = zlib.compress(b"\x00" * 1024)
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")
    )


def other_format(fmt: str) -> bytes:
    out = io.BytesIO()
    picture().save(out, fmt)
    return out.getvalue()
