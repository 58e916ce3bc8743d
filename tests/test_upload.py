import io
import zlib
from datetime import datetime
from pathlib import Path

import pytest
from django.test import Client
from django.urls import reverse
from PIL import Image

from accounts.models import User
from gallery.models import Photo
from tests.conftest import stored_files
from tests.factories import image_bytes, make_photo, upload

UPLOAD_URL = reverse("gallery:upload_photos")


def post(client: Client, *files: object, description: str = "", **headers: str):
    return client.post(
        UPLOAD_URL, {"photos": list(files), "description": description}, **headers
    )


def test_upload_stores_photo_with_its_metadata(signed_in: Client, user: User) -> None:
    content = image_bytes(size=(80, 60), taken=datetime(2024, 5, 17, 9, 30))

    response = post(signed_in, upload("Beach day.JPG", content), description="Sand")

    assert response.status_code == 302
    photo = Photo.objects.get()
    assert photo.owner == user
    assert photo.original_name == "Beach day.JPG"
    assert photo.content_type == "image/jpeg"
    assert photo.size_bytes == len(content)
    assert (photo.width, photo.height) == (80, 60)
    assert photo.taken_at.year == 2024
    assert photo.description == "Sand"
    assert photo.status == Photo.Status.PENDING
    assert len(photo.sha256) == 64


def test_upload_stores_original_unchanged_under_anonymous_key(
    signed_in: Client, user: User, media_folder: Path
) -> None:
    content = image_bytes()

    post(signed_in, upload("my secret name.jpg", content))

    photo = Photo.objects.get()
    assert photo.original.name.startswith(f"photos/{user.pk}/")
    assert "secret" not in photo.original.name
    assert (media_folder / photo.original.name).read_bytes() == content


@pytest.mark.parametrize(
    ("format", "name", "content_type"),
    [("PNG", "a.png", "image/png"), ("WEBP", "a.webp", "image/webp")],
)
def test_upload_accepts_png_and_webp(
    signed_in: Client, format: str, name: str, content_type: str
) -> None:
    post(signed_in, upload(name, image_bytes(format)))

    assert Photo.objects.get().content_type == content_type


def test_upload_accepts_heic(signed_in: Client) -> None:
    pillow_heif = pytest.importorskip("pillow_heif")
    buffer = io.BytesIO()
    pillow_heif.from_pillow(Image.new("RGB", (64, 64), (10, 200, 30))).save(buffer)

    post(signed_in, upload("phone.heic", buffer.getvalue()))

    assert Photo.objects.get().content_type == "image/heic"


def test_upload_reads_camera_and_applies_orientation(signed_in: Client) -> None:
    content = image_bytes(size=(80, 60), exif={271: "Canon", 272: "EOS R6", 274: 6})

    post(signed_in, upload("turned.jpg", content))

    photo = Photo.objects.get()
    assert photo.camera == "Canon EOS R6"
    assert (photo.width, photo.height) == (60, 80)


def test_upload_takes_several_files_at_once(signed_in: Client) -> None:
    response = post(signed_in, upload("a.jpg"), upload("b.jpg"), upload("c.jpg"))

    assert response.status_code == 302
    assert Photo.objects.count() == 3


def test_upload_answers_json_for_scripts(signed_in: Client) -> None:
    response = post(signed_in, upload("a.jpg"), HTTP_ACCEPT="application/json")

    assert response.status_code == 201
    result = response.json()["results"][0]
    assert result["stored"] is True
    assert result["photo_id"] == Photo.objects.get().pk


def test_upload_recognises_the_same_file_twice(
    signed_in: Client, media_folder: Path
) -> None:
    content = image_bytes()
    post(signed_in, upload("first.jpg", content))

    response = post(signed_in, upload("again.jpg", content))

    assert response.status_code == 400
    assert b"You already uploaded this photo as first.jpg" in response.content
    assert Photo.objects.count() == 1
    assert len(stored_files(media_folder)) == 1


def test_same_file_from_two_people_is_stored_twice(db: None) -> None:
    content = image_bytes()

    make_photo(content=content)
    make_photo(content=content)

    assert Photo.objects.count() == 2


def truncated_jpeg() -> bytes:
    content = image_bytes(size=(400, 300))
    return content[: len(content) // 2]


def decompression_bomb() -> bytes:
    # A 20000x20000 PNG of one colour: tiny on disk, 400 megapixels decoded.
    width = height = 20_000
    header = b"\x89PNG\r\n\x1a\n"

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return len(data).to_bytes(4, "big") + body + zlib.crc32(body).to_bytes(4, "big")

    ihdr = (
        width.to_bytes(4, "big") + height.to_bytes(4, "big") + b"\x08\x00\x00\x00\x00"
    )
    rows = zlib.compress(b"\x00" * (width + 1) * 100)
    return header + chunk(b"IHDR", ihdr) + chunk(b"IDAT", rows) + chunk(b"IEND", b"")


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("notes.txt", b"just some text", b"not an image"),
        ("half.jpg", truncated_jpeg(), b"damaged or incomplete"),
        ("bomb.png", decompression_bomb(), b"too many pixels"),
        ("empty.jpg", b"", b"empty"),
        ("script.jpg", b"<?php echo 'hi'; ?>", b"not an image"),
        (
            "really-a-png.jpg",
            image_bytes("PNG"),
            b"name ends in .jpg but the file is a PNG",
        ),
        ("anim.gif", image_bytes("GIF"), b"GIF images are not supported"),
    ],
)
def test_upload_rejects_bad_file_and_keeps_nothing(
    signed_in: Client, media_folder: Path, name: str, content: bytes, message: bytes
) -> None:
    response = post(signed_in, upload(name, content))

    assert response.status_code == 400
    assert message in response.content
    assert not Photo.objects.exists()
    assert stored_files(media_folder) == []


def test_upload_rejects_file_over_size_limit(
    signed_in: Client, settings: object, media_folder: Path
) -> None:
    settings.PHOTO_MAX_BYTES = 100_000  # type: ignore[attr-defined]
    big = image_bytes("BMP", size=(300, 300))

    response = post(signed_in, upload("big.jpg", big), HTTP_ACCEPT="application/json")

    assert response.status_code == 400
    assert "larger than the" in response.json()["results"][0]["error"]
    assert not Photo.objects.exists()
    assert stored_files(media_folder) == []


def test_upload_rejects_too_many_files(signed_in: Client, settings: object) -> None:
    settings.PHOTO_MAX_FILES_PER_UPLOAD = 2  # type: ignore[attr-defined]

    response = post(signed_in, upload("a.jpg"), upload("b.jpg"), upload("c.jpg"))

    assert response.status_code == 400
    assert b"at most 2 photos at once" in response.content
    assert not Photo.objects.exists()


def test_upload_with_no_file_explains(signed_in: Client) -> None:
    response = post(signed_in)

    assert response.status_code == 400
    assert b"Choose at least one photo" in response.content


def test_bad_file_in_batch_keeps_the_good_ones(signed_in: Client) -> None:
    response = post(
        signed_in,
        upload("good.jpg"),
        upload("bad.jpg", b"nope"),
        upload("fine.png", image_bytes("PNG")),
    )

    assert response.status_code == 400
    assert b"good.jpg" in response.content and b"not an image" in response.content
    assert sorted(Photo.objects.values_list("original_name", flat=True)) == [
        "fine.png",
        "good.jpg",
    ]


def test_upload_needs_sign_in(client: Client, db: None) -> None:
    response = post(client, upload())

    assert response.status_code == 302
    assert "/accounts/sign-in/" in response["Location"]
    assert not Photo.objects.exists()


def test_upload_page_states_the_size_limit(signed_in: Client, settings: object) -> None:
    settings.PHOTO_MAX_BYTES = 10 * 1024 * 1024  # type: ignore[attr-defined]

    response = signed_in.get(UPLOAD_URL)

    assert b"up to 10 MB each" in response.content
