"""Build test users, images and photos with as little ceremony as possible."""

from __future__ import annotations

import io
import itertools
from datetime import datetime

from django.core.files.uploadedfile import SimpleUploadedFile
from PIL import Image

from accounts.models import User
from gallery.models import Photo
from gallery.services import store_photo

_numbers = itertools.count(1)


def make_user(**fields: object) -> User:
    number = next(_numbers)
    fields.setdefault("username", f"person{number}")
    fields.setdefault("email", f"person{number}@example.com")
    password = str(fields.pop("password", "a-long-test-password"))
    return User.objects.create_user(password=password, **fields)


def image_bytes(
    format: str = "JPEG",
    size: tuple[int, int] = (64, 48),
    color: tuple[int, int, int] | None = None,
    exif: dict[int, object] | None = None,
    taken: datetime | None = None,
) -> bytes:
    """Return an encoded image; each call differs unless color is given."""
    exif = dict(exif or {})
    if color is None:
        # Lossy encoding can make near colours identical, so the text tag is
        # what keeps every file's hash apart.
        number = next(_numbers)
        color = (number * 37 % 256, 90, 160)
        exif[0x010E] = f"test image {number}"
    image = Image.new("RGB", size, color)
    exif_data = Image.Exif()
    for tag, value in (exif or {}).items():
        exif_data[tag] = value
    if taken:
        exif_data.get_ifd(0x8769)[0x9003] = taken.strftime("%Y:%m:%d %H:%M:%S")
    buffer = io.BytesIO()
    with_exif = (exif or taken) and format in {"JPEG", "PNG", "WEBP"}
    options = {"exif": exif_data.tobytes()} if with_exif else {}
    image.save(buffer, format, **options)
    return buffer.getvalue()


def upload(name: str = "photo.jpg", content: bytes | None = None) -> SimpleUploadedFile:
    content = image_bytes() if content is None else content
    return SimpleUploadedFile(name, content, content_type="application/octet-stream")


def make_photo(owner: User | None = None, **kwargs: object) -> Photo:
    owner = owner or make_user()
    name = str(kwargs.pop("name", "photo.jpg"))
    content = kwargs.pop("content", None)
    photo = store_photo(
        owner, upload(name, content), str(kwargs.pop("description", ""))
    )
    if kwargs:
        Photo.objects.filter(pk=photo.pk).update(**kwargs)
        photo.refresh_from_db()
    return photo
