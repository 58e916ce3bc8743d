from pathlib import Path

import pytest
from django.test import Client
from django.urls import reverse

from accounts.models import User
from gallery.models import Photo, PhotoEvent
from labeling.labelers import DetectedLabel, LabelerUnavailable
from labeling.services import apply_callback_labels
from labeling.tasks import process_photo
from tests.factories import make_photo

PHOTOS = Path(__file__).parent / "photos"


def kinds(photo: Photo) -> list[str]:
    return list(photo.events.values_list("kind", flat=True))


def test_upload_and_labelling_are_on_the_timeline(
    signed_in: Client, django_capture_on_commit_callbacks
) -> None:
    with (
        (PHOTOS / "coffee.jpg").open("rb") as file,
        django_capture_on_commit_callbacks(execute=True),
    ):
        signed_in.post(reverse("gallery:upload_photos"), {"photos": [file]})

    photo = Photo.objects.get()
    assert kinds(photo) == [
        "uploaded",
        "stored",
        "queued",
        "labelling_started",
        "labelling_finished",
    ]
    finished = photo.events.get(kind="labelling_finished")
    assert finished.labeler == "local"
    assert finished.duration_ms is not None
    assert finished.detail.startswith(
        f"{photo.labels.count()} labels from efficientnet"
    )


def test_retries_and_failure_are_on_the_timeline(
    db: None, scripted, settings: object
) -> None:
    settings.LABEL_TASK_MAX_RETRIES = 1  # type: ignore[attr-defined]
    photo = make_photo()
    scripted([LabelerUnavailable("Rekognition is throttling")] * 3)

    process_photo.delay(photo.pk)

    assert kinds(photo)[2:] == [
        "labelling_started",
        "retrying",
        "labelling_started",
        "failed",
    ]
    events = {event.kind: event.detail for event in photo.events.all()}
    assert events["retrying"] == "Rekognition is throttling; trying again in 2 s"
    assert events["failed"] == "Rekognition is throttling (gave up after 2 attempts)"


def test_lambda_callback_is_on_the_timeline(db: None) -> None:
    photo = make_photo()

    apply_callback_labels(photo, "rekognition:3.0", [DetectedLabel("Cat", 90.0)])

    event = photo.events.get(kind=PhotoEvent.Kind.CALLBACK_RECEIVED)
    assert event.labeler == "lambda"
    assert event.detail == "1 labels from rekognition:3.0"


def test_owner_sees_the_timeline_on_the_photo_page(
    signed_in: Client, user: User
) -> None:
    photo = make_photo(user)

    response = signed_in.get(reverse("gallery:photo_detail", args=[photo.pk]))

    assert b"Processing timeline" in response.content
    assert b"Upload received" in response.content
    assert b"Stored" in response.content


@pytest.mark.django_db
def test_staff_see_the_timeline_in_the_admin(client: Client) -> None:
    photo = make_photo()
    client.force_login(
        User.objects.create_superuser("root", "r@example.com", "pw-long-1")
    )

    response = client.get(reverse("admin:gallery_photo_change", args=[photo.pk]))

    assert b"Upload received" in response.content
