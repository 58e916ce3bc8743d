"""Decode uploaded images to check them, read their metadata, shrink them."""

from __future__ import annotations

import io
import struct
import warnings
from dataclasses import dataclass
from datetime import datetime
from pathlib import PurePosixPath
from typing import IO

from django.utils import timezone
from PIL import ExifTags, Image, ImageOps, UnidentifiedImageError
from pillow_heif import register_heif_opener

register_heif_opener()


@dataclass(frozen=True)
class ImageFormat:
    content_type: str
    extension: str
    extensions: frozenset[str]


FORMATS = {
    "JPEG": ImageFormat("image/jpeg", ".jpg", frozenset({".jpg", ".jpeg", ".jpe"})),
    "PNG": ImageFormat("image/png", ".png", frozenset({".png"})),
    "WEBP": ImageFormat("image/webp", ".webp", frozenset({".webp"})),
    "HEIF": ImageFormat("image/heic", ".heic", frozenset({".heic", ".heif"})),
}
KNOWN_EXTENSIONS = frozenset().union(*(f.extensions for f in FORMATS.values()))
ROTATED_ORIENTATIONS = {5, 6, 7, 8}
DECODING_ERRORS = (OSError, ValueError, SyntaxError, EOFError, struct.error)


class InvalidImage(Exception):
    """An upload that is not an image photosite can store; says why."""


@dataclass(frozen=True)
class ImageInfo:
    format: ImageFormat
    width: int
    height: int
    taken_at: datetime | None
    camera: str


def inspect_image(file: IO[bytes], name: str, max_pixels: int) -> ImageInfo:
    """Decode the whole image and return what it is; raise InvalidImage."""
    file.seek(0)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            image = Image.open(file)
            info = _read_header(image, name, max_pixels)
            # Draft mode lets a JPEG decode at 1/8 of its size; every byte is
            # still read and entropy-decoded, so damage still fails here.
            image.draft("RGB", (1, 1))
            image.load()
    except UnidentifiedImageError:
        raise InvalidImage("This file is not an image we can read.") from None
    except Image.DecompressionBombError:
        raise InvalidImage("This image has too many pixels.") from None
    except DECODING_ERRORS:
        raise InvalidImage("This image is damaged or incomplete.") from None
    finally:
        file.seek(0)
    return info


def _read_header(image: Image.Image, name: str, max_pixels: int) -> ImageInfo:
    image_format = FORMATS.get(image.format or "")
    if image_format is None:
        raise InvalidImage(
            f"{image.format} images are not supported; use JPEG, PNG, WebP or HEIC."
        )
    extension = PurePosixPath(name).suffix.lower()
    if extension in KNOWN_EXTENSIONS and extension not in image_format.extensions:
        raise InvalidImage(
            f"The name ends in {extension} but the file is a {image.format} image."
        )
    width, height = image.size
    if width * height > max_pixels:
        raise InvalidImage(
            f"This image has too many pixels ({width}x{height}); "
            f"the limit is {max_pixels // 1_000_000} megapixels."
        )
    exif = image.getexif()
    if exif.get(ExifTags.Base.Orientation) in ROTATED_ORIENTATIONS:
        width, height = height, width
    return ImageInfo(image_format, width, height, _taken_at(exif), _camera(exif))


def _taken_at(exif: Image.Exif) -> datetime | None:
    details = exif.get_ifd(ExifTags.IFD.Exif)
    value = details.get(ExifTags.Base.DateTimeOriginal) or exif.get(
        ExifTags.Base.DateTime
    )
    if not isinstance(value, str):
        return None
    try:
        taken = datetime.strptime(value.strip("\x00 "), "%Y:%m:%d %H:%M:%S")
    except ValueError:
        return None
    # EXIF dates carry no time zone; read them as the site's.
    return timezone.make_aware(taken)


def _camera(exif: Image.Exif) -> str:
    make = str(exif.get(ExifTags.Base.Make) or "").strip("\x00 ")
    model = str(exif.get(ExifTags.Base.Model) or "").strip("\x00 ")
    if model.lower().startswith(make.lower()):
        make = ""
    return " ".join(part for part in (make, model) if part)[:200]


def shrink_photo(file: IO[bytes], size: int) -> Image.Image:
    """Return the photo turned upright and in RGB, within size x size."""
    with Image.open(file) as image:
        # Ask the JPEG decoder for the smallest scale that still covers the
        # thumbnail: a 12 MP photo then decodes at 1/8 of its size.
        width, height = image.size
        scale = size / max(width, height)
        image.draft("RGB", (max(1, int(width * scale)), max(1, int(height * scale))))
        upright = ImageOps.exif_transpose(image).convert("RGB")
    # For the small reduction left after DCT scaling, bicubic looks the same
    # as Lanczos in two thirds of the time; reducing_gap keeps large ones
    # (formats that cannot decode at reduced size) fast as well.
    upright.thumbnail((size, size), Image.Resampling.BICUBIC, reducing_gap=2.0)
    return upright


def encode_jpeg(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    # At thumbnail sizes a baseline JPEG with optimised tables is as small as
    # a progressive one, and takes less than half the time to write.
    image.save(buffer, "JPEG", quality=85, optimize=True)
    return buffer.getvalue()


def open_jpeg(file: IO[bytes]) -> Image.Image:
    """Decode a JPEG this module wrote: already upright and in RGB."""
    with Image.open(file) as image:
        image.load()
        return image.convert("RGB")
