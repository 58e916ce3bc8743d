"""Run the labelling Lambda against the site itself, served by live_server."""

from __future__ import annotations

import io
import logging
import time
import urllib.parse
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber
from django.db import connection

from gallery.models import Photo
from gallery.signals import photo_uploaded
from labeling.models import PendingCallback, PhotoLabel
from lambda_src import handler as labeller
from tests.factories import make_photo
from tests.test_label_callback import store_photo_at
from tests.test_lambda_handler import (
    BUCKET,
    CAT,
    REGION,
    SKY,
    expect_labels,
    photo_event,
)

SECRET = "integration-callback-secret-0123456789"

pytestmark = pytest.mark.django_db(transaction=True)


class Clock:
    """Real time that moves on a second with each reading, or stands still."""

    def __init__(self, step: float = 1.0) -> None:
        self.now = float(int(time.time()))
        self.step = step

    def time(self) -> float:
        self.now += self.step
        return self.now


@pytest.fixture(autouse=True)
def lambda_log(monkeypatch: pytest.MonkeyPatch) -> Iterator[io.StringIO]:
    # The handler makes every root handler write JSON; keep that to this test.
    root = logging.getLogger()
    formatters = [(handler, handler.formatter) for handler in root.handlers]
    level = root.level
    stream = io.StringIO()
    monkeypatch.setattr(root, "handlers", [logging.StreamHandler(stream)])
    yield stream
    root.setLevel(level)
    for handler, formatter in formatters:
        handler.setFormatter(formatter)


@pytest.fixture
def rekognition() -> Iterator[Stubber]:
    client = boto3.client("rekognition", region_name=REGION)
    with Stubber(client) as stubber:
        yield stubber
        stubber.assert_no_pending_responses()


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture(autouse=True)
def deployed(
    monkeypatch: pytest.MonkeyPatch,
    settings: Any,
    live_server: Any,
    rekognition: Stubber,
    clock: Clock,
) -> None:
    """Configure the site and the Lambda with the same secret and bucket."""
    settings.LABEL_CALLBACK_SECRET = SECRET
    settings.PHOTOS_BUCKET = BUCKET
    settings.PHOTO_EVENTS = "s3"
    for name in ("CALLBACK_SECRET_PARAMETER", "CALLBACK_SECRET_ID"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("CALLBACK_URL", f"{live_server.url}/labels/callback/")
    monkeypatch.setenv("CALLBACK_SECRET", SECRET)
    monkeypatch.setenv("RETRY_BACKOFF_SECONDS", "0")
    services = labeller.Services(rekognition=rekognition.client, clock=clock.time)
    monkeypatch.setattr(labeller, "default_services", lambda: services)


def s3_event_for(*keys: str) -> dict[str, Any]:
    # S3 URL-encodes the keys it announces.
    return photo_event(*(urllib.parse.quote_plus(key, safe="/") for key in keys))


def labels_on(photo: Photo) -> dict[str, str]:
    return dict(photo.labels.values_list("label__name", "source"))


def test_lambda_labels_land_on_the_stored_photo(rekognition: Stubber) -> None:
    photo = make_photo()
    expect_labels(rekognition, photo.original.name, [CAT, SKY])

    result = labeller.handler(s3_event_for(photo.original.name), None)

    assert result == {"labelled": 1}
    assert labels_on(photo) == {"Cat": "lambda", "Sky": "lambda"}
    cat = photo.labels.get(label__name="Cat")
    assert cat.confidence == 98.5
    assert cat.model_version == "rekognition:3.0"
    assert cat.boxes == [
        {"left": 0.1, "top": 0.2, "width": 0.5, "height": 0.6, "confidence": 97.25}
    ]
    assert set(cat.label.parents.values_list("name", flat=True)) == {"Animal", "Pet"}
    photo.refresh_from_db()
    assert photo.status == Photo.Status.LABELLED


def test_lambda_labels_for_a_photo_not_stored_yet_are_applied_when_it_is(
    rekognition: Stubber,
) -> None:
    expect_labels(rekognition, "photos/1/early arrival.jpg")
    labeller.handler(s3_event_for("photos/1/early arrival.jpg"), None)
    assert PendingCallback.objects.filter(key="photos/1/early arrival.jpg").exists()

    photo = store_photo_at("photos/1/early arrival.jpg")

    assert labels_on(photo) == {"Cat": "lambda"}
    assert not PendingCallback.objects.exists()


def test_duplicate_delivery_leaves_one_set_of_labels(rekognition: Stubber) -> None:
    photo = make_photo()
    event = s3_event_for(photo.original.name)
    expect_labels(rekognition, photo.original.name, [CAT, SKY])
    expect_labels(rekognition, photo.original.name, [CAT, SKY])

    labeller.handler(event, None)
    labeller.handler(event, None)

    assert labels_on(photo) == {"Cat": "lambda", "Sky": "lambda"}
    assert PhotoLabel.objects.count() == 2


def test_duplicate_delivery_in_the_same_second_is_refused_as_a_replay(
    rekognition: Stubber, clock: Clock
) -> None:
    clock.step = 0
    photo = make_photo()
    event = s3_event_for(photo.original.name)
    expect_labels(rekognition, photo.original.name)
    expect_labels(rekognition, photo.original.name)
    labeller.handler(event, None)

    # Lambda retries the event later, signed afresh.
    with pytest.raises(labeller.LabellingError):
        labeller.handler(event, None)

    assert labels_on(photo) == {"Cat": "lambda"}


def test_duplicate_delivery_before_the_photo_leaves_one_set_of_labels(
    rekognition: Stubber,
) -> None:
    event = s3_event_for("photos/1/early.jpg")
    expect_labels(rekognition, "photos/1/early.jpg")
    expect_labels(rekognition, "photos/1/early.jpg")
    labeller.handler(event, None)
    labeller.handler(event, None)

    photo = store_photo_at("photos/1/early.jpg")

    assert labels_on(photo) == {"Cat": "lambda"}
    assert PhotoLabel.objects.count() == 1


def test_event_with_stored_and_missing_photos_labels_both(
    rekognition: Stubber,
) -> None:
    stored = make_photo()
    expect_labels(rekognition, stored.original.name)
    expect_labels(rekognition, "photos/1/early.jpg", [SKY])
    labeller.handler(s3_event_for(stored.original.name, "photos/1/early.jpg"), None)

    early = store_photo_at("photos/1/early.jpg")

    assert labels_on(stored) == {"Cat": "lambda"}
    assert labels_on(early) == {"Sky": "lambda"}


def test_lambda_with_the_wrong_secret_changes_nothing(
    rekognition: Stubber, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CALLBACK_SECRET", "not-the-sites-secret")
    photo = make_photo()
    expect_labels(rekognition, photo.original.name)

    with pytest.raises(labeller.LabellingError):
        labeller.handler(s3_event_for(photo.original.name), None)

    assert not PhotoLabel.objects.exists()
    assert not PendingCallback.objects.exists()


def test_lambda_retries_while_the_site_has_no_secret(
    rekognition: Stubber, settings: Any
) -> None:
    settings.LABEL_CALLBACK_SECRET = ""
    photo = make_photo()
    expect_labels(rekognition, photo.original.name)

    with pytest.raises(labeller.LabellingError):
        labeller.handler(s3_event_for(photo.original.name), None)

    assert not PhotoLabel.objects.exists()


@pytest.mark.skipif(
    connection.vendor == "sqlite",
    reason="the live server shares the test's SQLite connection and transaction",
)
def test_callback_during_the_uploads_transaction_is_applied_after_commit(
    rekognition: Stubber, lambda_log: io.StringIO
) -> None:
    def run_lambda(sender: type[Photo], photo: Photo, **kwargs: object) -> None:
        # The row is saved but not committed: the site cannot see it yet.
        expect_labels(rekognition, photo.original.name)
        labeller.handler(s3_event_for(photo.original.name), None)

    photo_uploaded.connect(run_lambda, dispatch_uid="test.run_lambda")
    try:
        photo = make_photo()
    finally:
        photo_uploaded.disconnect(dispatch_uid="test.run_lambda")

    assert '"status": 202' in lambda_log.getvalue()
    assert labels_on(photo) == {"Cat": "lambda"}
    assert not PendingCallback.objects.exists()
