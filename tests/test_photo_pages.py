from pathlib import Path

from django.test import Client
from django.urls import reverse
from PIL import Image

from accounts.models import User
from gallery.models import Photo
from gallery.services import thumbnail_image
from tests.conftest import stored_files
from tests.factories import image_bytes, make_photo
from tests.test_gallery import add_label


def test_photo_page_shows_labels_and_description(signed_in: Client, user: User) -> None:
    photo = make_photo(user, description="Our cat Tom")
    add_label(photo, "Cat", confidence=96.0)

    response = signed_in.get(reverse("gallery:photo_detail", args=[photo.pk]))

    assert response.status_code == 200
    assert b"Our cat Tom" in response.content
    assert b"Cat</a>" in response.content
    assert b"96.0%" in response.content


def test_description_can_be_edited(signed_in: Client, user: User) -> None:
    photo = make_photo(user)

    response = signed_in.post(
        reverse("gallery:edit_photo", args=[photo.pk]), {"description": "New words"}
    )

    assert response.status_code == 302
    photo.refresh_from_db()
    assert photo.description == "New words"


def test_too_long_description_is_refused(signed_in: Client, user: User) -> None:
    photo = make_photo(user, description="Kept")

    signed_in.post(
        reverse("gallery:edit_photo", args=[photo.pk]), {"description": "x" * 2001}
    )

    photo.refresh_from_db()
    assert photo.description == "Kept"


def test_delete_removes_rows_and_every_file(
    signed_in: Client,
    user: User,
    media_folder: Path,
    django_capture_on_commit_callbacks,
) -> None:
    photo = make_photo(user)
    add_label(photo, "Cat")
    for variant in ("thumbnail", "preview"):
        signed_in.get(reverse("gallery:photo_file", args=[photo.pk, variant]))
    assert len(stored_files(media_folder)) == 3

    with django_capture_on_commit_callbacks(execute=True):
        response = signed_in.post(reverse("gallery:delete_photo", args=[photo.pk]))

    assert response.status_code == 302
    assert not Photo.objects.exists()
    assert stored_files(media_folder) == []


def test_original_is_served_to_its_owner(signed_in: Client, user: User) -> None:
    content = image_bytes()
    photo = make_photo(user, content=content)

    response = signed_in.get(reverse("gallery:photo_file", args=[photo.pk, "original"]))

    assert response.status_code == 200
    assert response["Content-Type"] == "image/jpeg"
    assert "private" in response["Cache-Control"]
    assert b"".join(response.streaming_content) == content


def test_thumbnail_is_made_upright_and_small(signed_in: Client, user: User) -> None:
    content = image_bytes(size=(1200, 800), exif={274: 6})
    photo = make_photo(user, content=content)

    response = signed_in.get(
        reverse("gallery:photo_file", args=[photo.pk, "thumbnail"])
    )

    image = Image.open(__import__("io").BytesIO(b"".join(response.streaming_content)))
    assert image.format == "JPEG"
    assert image.size == (320, 480)


def test_staff_can_see_files_of_others(client: Client, user: User) -> None:
    photo = make_photo(user)
    staff = User.objects.create_user("staff", password="x-long-password", is_staff=True)
    client.force_login(staff)

    response = client.get(reverse("gallery:photo_file", args=[photo.pk, "original"]))

    assert response.status_code == 200


def test_thumbnail_image_is_the_stored_thumbnail(user: User) -> None:
    photo = make_photo(user, content=image_bytes(size=(1200, 800), exif={274: 6}))

    made = thumbnail_image(photo)
    photo.refresh_from_db()
    read_back = thumbnail_image(photo)

    assert photo.thumbnail
    assert made.size == (320, 480)
    assert made.tobytes() == read_back.tobytes()
