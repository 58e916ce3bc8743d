import pytest
from django.test import Client
from django.urls import reverse

from accounts.models import User
from gallery.models import Photo
from tests.factories import make_photo


@pytest.mark.parametrize(
    ("method", "name", "extra"),
    [
        ("get", "gallery:photo_detail", []),
        ("post", "gallery:edit_photo", []),
        ("post", "gallery:delete_photo", []),
        ("get", "gallery:photo_file", ["original"]),
        ("get", "gallery:photo_file", ["thumbnail"]),
        ("get", "gallery:photo_file", ["preview"]),
    ],
)
def test_another_persons_photo_answers_404(
    signed_in: Client, method: str, name: str, extra: list[str]
) -> None:
    photo = make_photo(description="Private")

    response = getattr(signed_in, method)(
        reverse(name, args=[photo.pk, *extra]), {"description": "Changed"}
    )

    assert response.status_code == 404
    photo.refresh_from_db()
    assert photo.description == "Private"


def test_search_never_shows_another_persons_photos(signed_in: Client) -> None:
    make_photo(description="holiday")

    response = signed_in.get(reverse("gallery:photo_list"), {"q": "holiday"})

    assert list(response.context["page"].object_list) == []


def test_unknown_file_variant_answers_404(signed_in: Client, user: User) -> None:
    photo = make_photo(user)

    response = signed_in.get(reverse("gallery:photo_file", args=[photo.pk, "secrets"]))

    assert response.status_code == 404
    assert Photo.objects.filter(pk=photo.pk).exists()
