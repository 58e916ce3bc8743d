from django.test import Client
from django.urls import reverse

from accounts.models import User
from gallery.models import Photo
from labeling.models import Label, PhotoLabel
from tests.factories import make_photo

LIST_URL = reverse("gallery:photo_list")


def add_label(photo: Photo, name: str, **fields: object) -> PhotoLabel:
    label, _ = Label.objects.get_or_create(name=name)
    fields.setdefault("confidence", 90.0)
    fields.setdefault("source", PhotoLabel.Source.LOCAL)
    return PhotoLabel.objects.create(photo=photo, label=label, **fields)


def listed_ids(response) -> list[int]:
    return [photo.pk for photo in response.context["page"].object_list]


def test_gallery_lists_own_photos_newest_first(signed_in: Client, user: User) -> None:
    older = make_photo(user)
    newer = make_photo(user)
    make_photo()

    response = signed_in.get(LIST_URL)

    assert response.status_code == 200
    assert listed_ids(response) == [newer.pk, older.pk]


def test_gallery_paginates(signed_in: Client, user: User, settings: object) -> None:
    settings.PHOTOS_PER_PAGE = 2  # type: ignore[attr-defined]
    photos = [make_photo(user) for _ in range(3)]

    response = signed_in.get(LIST_URL, {"page": 2})

    assert listed_ids(response) == [photos[0].pk]


def test_gallery_searches_descriptions(signed_in: Client, user: User) -> None:
    beach = make_photo(user, description="Sunset at the beach")
    make_photo(user, description="Office party")

    response = signed_in.get(LIST_URL, {"q": "beach"})

    assert listed_ids(response) == [beach.pk]


def test_gallery_searches_labels(signed_in: Client, user: User) -> None:
    cat = make_photo(user)
    add_label(cat, "Cat")
    make_photo(user)

    response = signed_in.get(LIST_URL, {"q": "cat"})

    assert listed_ids(response) == [cat.pk]


def test_gallery_filters_by_label(signed_in: Client, user: User) -> None:
    dog = make_photo(user)
    add_label(dog, "Dog")
    hotdog = make_photo(user)
    add_label(hotdog, "Hotdog")

    response = signed_in.get(LIST_URL, {"label": "dog"})

    assert listed_ids(response) == [dog.pk]


def test_gallery_ignores_rejected_labels(signed_in: Client, user: User) -> None:
    photo = make_photo(user)
    add_label(photo, "Cat", review_state=PhotoLabel.ReviewState.REJECTED)

    response = signed_in.get(LIST_URL, {"label": "Cat"})

    assert listed_ids(response) == []
    assert b">Cat<" not in signed_in.get(LIST_URL).content


def test_gallery_query_count_does_not_grow_with_photos(
    signed_in: Client, user: User, django_assert_max_num_queries
) -> None:
    for _ in range(6):
        add_label(make_photo(user), "Cat")
    with django_assert_max_num_queries(20) as few:
        signed_in.get(LIST_URL)
    for _ in range(6):
        add_label(make_photo(user), "Dog")

    with django_assert_max_num_queries(len(few.captured_queries)):
        response = signed_in.get(LIST_URL)

    assert len(response.context["page"].object_list) == 12


def test_status_endpoint_reports_labels(signed_in: Client, user: User) -> None:
    photo = make_photo(user, status=Photo.Status.LABELLED)
    add_label(photo, "Cat", confidence=97.25)
    someone_elses = make_photo()

    response = signed_in.get(
        reverse("gallery:photo_status"), {"id": [photo.pk, someone_elses.pk]}
    )

    [summary] = response.json()["photos"]
    assert summary["id"] == photo.pk
    assert summary["status"] == "labelled"
    assert summary["labels"][0]["name"] == "Cat"
    assert summary["labels"][0]["confidence"] == 97.2


def test_gallery_needs_sign_in(client: Client, db: None) -> None:
    response = client.get(LIST_URL)

    assert response.status_code == 302
