import logging

import pytest

from gallery.models import Photo
from labeling.tasks import label_stored_object, seconds_waited, wait_countdown
from tests.factories import make_photo

BUCKET = "photosite-photos"


@pytest.fixture
def bucket(settings) -> str:
    settings.PHOTOS_BUCKET = BUCKET
    return BUCKET


def test_a_new_photo_is_labelled(db, bucket, scripted) -> None:
    labeler = scripted([])
    photo = make_photo()

    label_stored_object.delay(bucket, photo.original.name)

    photo.refresh_from_db()
    assert photo.status == Photo.Status.LABELLED
    assert labeler.calls == 1


def test_a_repeated_notification_does_not_label_again(db, bucket, scripted) -> None:
    labeler = scripted([])
    photo = make_photo(status=Photo.Status.LABELLED)

    label_stored_object.delay(bucket, photo.original.name)

    assert labeler.calls == 0


def test_objects_of_another_bucket_are_ignored(db, bucket, scripted, caplog) -> None:
    labeler = scripted([])
    photo = make_photo()

    label_stored_object.delay("someone-elses-bucket", photo.original.name)

    assert labeler.calls == 0
    assert "unknown bucket someone-elses-bucket" in caplog.text


def test_a_key_without_a_row_is_given_up_after_the_wait(
    db, bucket, settings, caplog
) -> None:
    settings.PHOTO_EVENT_WAIT_SECONDS = 5
    caplog.set_level(logging.INFO, "labeling.tasks")

    label_stored_object.delay(bucket, "photos/1/never-recorded.jpg")

    waits = caplog.text.count("No photo has key photos/1/never-recorded.jpg yet")
    assert waits == 3
    assert "after 7 s; giving up" in caplog.text


def test_the_wait_grows_to_a_minute_and_stays_there() -> None:
    countdowns = [wait_countdown(retries) for retries in range(9)]

    assert countdowns == [1, 2, 4, 8, 16, 32, 60, 60, 60]
    assert seconds_waited(3) == 7
