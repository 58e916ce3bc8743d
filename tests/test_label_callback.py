"""Tests for the endpoint that receives the labelling Lambda's callbacks."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import transaction
from django.http import HttpResponse
from django.test import Client

from accounts.models import User
from gallery.models import Photo
from gallery.signals import photo_uploaded
from labeling.models import CallbackReceipt, Label, PendingCallback, PhotoLabel
from tests.factories import image_bytes, make_photo, make_user

SECRET = "test-callback-secret-0123456789"
BUCKET = "photosite-photos"
URL = "/labels/callback/"

CAT = {
    "name": "Cat",
    "confidence": 98.5,
    "parents": ["Animal", "Pet"],
    "categories": ["Animals and Pets"],
    "boxes": [
        {"left": 0.1, "top": 0.2, "width": 0.5, "height": 0.6, "confidence": 97.25}
    ],
}
SKY = {
    "name": "Sky",
    "confidence": 81.0,
    "parents": [],
    "categories": ["Nature and Outdoors"],
    "boxes": [],
}


def store_photo_at(key: str, owner: User | None = None) -> Photo:
    """Store a photo at a key chosen in advance, the way an upload does."""
    content = image_bytes()
    photo = Photo(
        owner=owner or make_user(),
        original_name="photo.jpg",
        content_type="image/jpeg",
        size_bytes=len(content),
        sha256=hashlib.sha256(content).hexdigest(),
        width=64,
        height=48,
    )
    photo.original.name = default_storage.save(key, ContentFile(content))
    with transaction.atomic():
        photo.save()
        photo_uploaded.send(sender=Photo, photo=photo)
    return photo


def callback_body(key: str, labels: list[dict[str, Any]] | None = None) -> bytes:
    payload = {
        "bucket": BUCKET,
        "key": key,
        "labeler": "lambda",
        "model_version": "rekognition:3.0",
        "labels": [CAT, SKY] if labels is None else labels,
    }
    return json.dumps(payload).encode()


def signature_for(body: bytes, timestamp: int, secret: str = SECRET) -> str:
    message = str(timestamp).encode() + b"." + body
    return "v1=" + hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def post_signed(
    client: Client,
    body: bytes,
    timestamp: int | None = None,
    signature: str | None = None,
    secret: str = SECRET,
) -> HttpResponse:
    timestamp = int(time.time()) if timestamp is None else timestamp
    headers = {
        "X-Photosite-Timestamp": str(timestamp),
        "X-Photosite-Signature": signature or signature_for(body, timestamp, secret),
    }
    return client.post(URL, body, content_type="application/json", headers=headers)


def now_utc() -> datetime:
    return datetime.now(UTC)


def labels_on(photo: Photo) -> dict[str, float]:
    return dict(photo.labels.values_list("label__name", "confidence"))


@pytest.fixture(autouse=True)
def callback_settings(settings: Any) -> None:
    settings.LABEL_CALLBACK_SECRET = SECRET
    settings.PHOTOS_BUCKET = BUCKET
    # AWS mode: S3's notification, not the commit, starts the labelling.
    settings.PHOTO_EVENTS = "s3"


@pytest.fixture
def photo(db: None) -> Photo:
    return make_photo()


# Applying labels


def test_callback_applies_labels_to_stored_photo(client: Client, photo: Photo) -> None:
    response = post_signed(client, callback_body(photo.original.name))

    assert response.status_code == 200
    assert response.json() == {"status": "applied"}
    cat = photo.labels.get(label__name="Cat")
    assert cat.source == PhotoLabel.Source.LAMBDA
    assert cat.confidence == 98.5
    assert cat.model_version == "rekognition:3.0"
    assert cat.boxes == CAT["boxes"]
    assert set(cat.label.parents.values_list("name", flat=True)) == {"Animal", "Pet"}
    assert labels_on(photo) == {"Cat": 98.5, "Sky": 81.0}
    photo.refresh_from_db()
    assert photo.status == Photo.Status.LABELLED


def test_duplicate_callback_leaves_one_set_of_labels(
    client: Client, photo: Photo
) -> None:
    body = callback_body(photo.original.name)
    now = int(time.time())

    first = post_signed(client, body, timestamp=now - 1)
    second = post_signed(client, body, timestamp=now)

    assert (first.status_code, second.status_code) == (200, 200)
    assert photo.labels.count() == 2
    assert Label.objects.filter(name="Cat").count() == 1


def test_newer_callback_replaces_the_lambdas_labels(
    client: Client, photo: Photo
) -> None:
    now = int(time.time())
    post_signed(client, callback_body(photo.original.name), timestamp=now - 1)

    response = post_signed(client, callback_body(photo.original.name, [SKY]), now)

    assert response.status_code == 200
    assert labels_on(photo) == {"Sky": 81.0}


def test_callback_keeps_labels_staff_rejected(client: Client, photo: Photo) -> None:
    now = int(time.time())
    post_signed(client, callback_body(photo.original.name), timestamp=now - 1)
    photo.labels.filter(label__name="Cat").update(review_state="rejected")

    post_signed(client, callback_body(photo.original.name, [SKY]), timestamp=now)

    states = dict(photo.labels.values_list("label__name", "review_state"))
    assert states == {"Cat": "rejected", "Sky": "automatic"}


def test_callback_just_inside_the_time_window_is_accepted(
    client: Client, photo: Photo
) -> None:
    old = int(time.time()) - 290

    response = post_signed(client, callback_body(photo.original.name), old)

    assert response.status_code == 200


# Labels that arrive before the photo's row


def test_callback_before_photo_is_kept_as_pending(client: Client, db: None) -> None:
    response = post_signed(client, callback_body("photos/1/early.jpg"))

    assert response.status_code == 202
    assert response.json() == {"status": "pending"}
    pending = PendingCallback.objects.get()
    assert pending.key == "photos/1/early.jpg"
    assert pending.bucket == BUCKET
    assert pending.model_version == "rekognition:3.0"
    assert [label["name"] for label in pending.labels] == ["Cat", "Sky"]
    assert not PhotoLabel.objects.exists()


def test_kept_labels_are_applied_when_the_photo_is_stored(
    client: Client, db: None, django_capture_on_commit_callbacks: Any
) -> None:
    post_signed(client, callback_body("photos/1/early.jpg"))

    with django_capture_on_commit_callbacks(execute=True):
        photo = store_photo_at("photos/1/early.jpg")

    assert labels_on(photo) == {"Cat": 98.5, "Sky": 81.0}
    cat = photo.labels.get(label__name="Cat")
    assert cat.source == PhotoLabel.Source.LAMBDA
    assert cat.boxes == CAT["boxes"]
    assert not PendingCallback.objects.exists()
    photo.refresh_from_db()
    assert photo.status == Photo.Status.LABELLED


def test_kept_labels_wait_for_the_upload_to_commit(
    client: Client, db: None, django_capture_on_commit_callbacks: Any
) -> None:
    post_signed(client, callback_body("photos/1/early.jpg"))

    with django_capture_on_commit_callbacks(execute=False) as on_commit:
        photo = store_photo_at("photos/1/early.jpg")

    assert not photo.labels.exists()
    for run_after_commit in on_commit:
        run_after_commit()
    assert labels_on(photo) == {"Cat": 98.5, "Sky": 81.0}


def test_duplicate_callback_before_photo_leaves_one_set_of_labels(
    client: Client, db: None, django_capture_on_commit_callbacks: Any
) -> None:
    body = callback_body("photos/1/early.jpg")
    now = int(time.time())
    post_signed(client, body, timestamp=now - 1)
    post_signed(client, body, timestamp=now)

    with django_capture_on_commit_callbacks(execute=True):
        photo = store_photo_at("photos/1/early.jpg")

    assert PendingCallback.objects.count() == 0
    assert labels_on(photo) == {"Cat": 98.5, "Sky": 81.0}


def test_later_callback_before_photo_replaces_kept_labels(
    client: Client, db: None, django_capture_on_commit_callbacks: Any
) -> None:
    now = int(time.time())
    post_signed(client, callback_body("photos/1/early.jpg"), timestamp=now - 1)
    post_signed(client, callback_body("photos/1/early.jpg", [SKY]), timestamp=now)

    with django_capture_on_commit_callbacks(execute=True):
        photo = store_photo_at("photos/1/early.jpg")

    assert labels_on(photo) == {"Sky": 81.0}


def test_callback_for_stored_photo_replaces_labels_kept_for_it(
    client: Client, db: None
) -> None:
    now = int(time.time())
    post_signed(client, callback_body("photos/1/early.jpg"), timestamp=now - 1)
    # Stored without running the commit hook, as if the process had stopped.
    photo = store_photo_at("photos/1/early.jpg")

    response = post_signed(client, callback_body(photo.original.name, [SKY]), now)

    assert response.status_code == 200
    assert labels_on(photo) == {"Sky": 81.0}
    assert not PendingCallback.objects.exists()


def test_next_callback_applies_kept_labels_a_stored_photo_missed(
    client: Client, photo: Photo
) -> None:
    now = int(time.time())
    post_signed(client, callback_body("photos/1/early.jpg"), timestamp=now - 1)
    # Stored without running the commit hook, as if the process had stopped.
    missed = store_photo_at("photos/1/early.jpg")

    post_signed(client, callback_body(photo.original.name, [SKY]), timestamp=now)

    assert labels_on(missed) == {"Cat": 98.5, "Sky": 81.0}
    assert not PendingCallback.objects.exists()


def test_kept_labels_nobody_claims_are_dropped_after_a_day(
    client: Client, photo: Photo
) -> None:
    PendingCallback.objects.create(
        bucket=BUCKET,
        key="photos/1/never-stored.jpg",
        labels=[CAT],
        received_at=now_utc() - timedelta(days=1, minutes=1),
    )

    post_signed(client, callback_body(photo.original.name))

    assert not PendingCallback.objects.filter(key="photos/1/never-stored.jpg")


# Authentication


def test_callback_without_signature_is_refused(client: Client, photo: Photo) -> None:
    body = callback_body(photo.original.name)
    headers = {"X-Photosite-Timestamp": str(int(time.time()))}

    response = client.post(URL, body, content_type="application/json", headers=headers)

    assert response.status_code == 401
    assert "missing" in response.json()["error"]
    assert not photo.labels.exists()


def test_callback_without_timestamp_is_refused(client: Client, photo: Photo) -> None:
    body = callback_body(photo.original.name)
    headers = {"X-Photosite-Signature": signature_for(body, int(time.time()))}

    response = client.post(URL, body, content_type="application/json", headers=headers)

    assert response.status_code == 401
    assert not photo.labels.exists()


def test_callback_signed_with_another_secret_is_refused(
    client: Client, photo: Photo
) -> None:
    response = post_signed(
        client, callback_body(photo.original.name), secret="not-the-secret"
    )

    assert response.status_code == 401
    assert response.json() == {"error": "The signature does not match the body."}
    assert not photo.labels.exists()


def test_callback_signed_with_the_previous_secret_is_accepted_in_a_rotation(
    client: Client, photo: Photo, settings: Any
) -> None:
    settings.LABEL_CALLBACK_SECRET = "the-new-callback-secret-0123456789"
    settings.LABEL_CALLBACK_PREVIOUS_SECRET = SECRET

    old = post_signed(client, callback_body(photo.original.name), secret=SECRET)
    new = post_signed(
        client,
        callback_body(photo.original.name, [SKY]),
        timestamp=int(time.time()) + 1,
        secret="the-new-callback-secret-0123456789",
    )

    assert (old.status_code, new.status_code) == (200, 200)
    assert labels_on(photo) == {"Sky": 81.0}


def test_previous_secret_alone_does_not_configure_callbacks(
    client: Client, photo: Photo, settings: Any
) -> None:
    settings.LABEL_CALLBACK_SECRET = ""
    settings.LABEL_CALLBACK_PREVIOUS_SECRET = SECRET

    response = post_signed(client, callback_body(photo.original.name))

    assert response.status_code == 503


def test_callback_with_tampered_body_is_refused(client: Client, photo: Photo) -> None:
    now = int(time.time())
    signed = callback_body(photo.original.name, [SKY])
    tampered = callback_body(photo.original.name, [CAT])

    response = post_signed(client, tampered, now, signature_for(signed, now))

    assert response.status_code == 401
    assert not photo.labels.exists()


def test_callback_with_tampered_timestamp_is_refused(
    client: Client, photo: Photo
) -> None:
    body = callback_body(photo.original.name)
    now = int(time.time())

    response = post_signed(client, body, now, signature_for(body, now - 60))

    assert response.status_code == 401
    assert not photo.labels.exists()


@pytest.mark.parametrize(
    ("timestamp", "signature"),
    [
        ("soon", "v1=00"),
        ("-5", "v1=00"),
        ("١٧٦٤٧٧٤٠٠٠", "v1=00"),
        (str(int(time.time())), "v1=caf\u00e9"),
    ],
)
def test_callback_with_malformed_headers_is_refused(
    client: Client, photo: Photo, timestamp: str, signature: str
) -> None:
    headers = {
        "X-Photosite-Timestamp": timestamp,
        "X-Photosite-Signature": signature,
    }

    response = client.post(
        URL,
        callback_body(photo.original.name),
        content_type="application/json",
        headers=headers,
    )

    assert response.status_code == 401
    assert not photo.labels.exists()


def test_callback_with_stale_timestamp_is_refused(client: Client, photo: Photo) -> None:
    old = int(time.time()) - 301

    response = post_signed(client, callback_body(photo.original.name), old)

    assert response.status_code == 403
    assert "300 seconds" in response.json()["error"]
    assert not photo.labels.exists()


def test_callback_from_the_future_is_refused(client: Client, photo: Photo) -> None:
    ahead = int(time.time()) + 301

    response = post_signed(client, callback_body(photo.original.name), ahead)

    assert response.status_code == 403
    assert not photo.labels.exists()


def test_replayed_callback_is_refused_and_changes_nothing(
    client: Client, photo: Photo
) -> None:
    now = int(time.time())
    old_body = callback_body(photo.original.name)
    post_signed(client, old_body, timestamp=now - 1)
    post_signed(client, callback_body(photo.original.name, [SKY]), timestamp=now)

    response = post_signed(client, old_body, timestamp=now - 1)

    assert response.status_code == 403
    assert response.json() == {"error": "This callback was received already."}
    assert labels_on(photo) == {"Sky": 81.0}


def test_replayed_callback_before_photo_is_refused(client: Client, db: None) -> None:
    body = callback_body("photos/1/early.jpg")
    now = int(time.time())
    post_signed(client, body, timestamp=now)

    response = post_signed(client, body, timestamp=now)

    assert response.status_code == 403
    assert PendingCallback.objects.count() == 1


def test_receipts_too_old_to_replay_are_forgotten(client: Client, photo: Photo) -> None:
    CallbackReceipt.objects.create(
        signature="a" * 64, signed_at=now_utc() - timedelta(seconds=301)
    )
    CallbackReceipt.objects.create(
        signature="b" * 64, signed_at=now_utc() - timedelta(seconds=200)
    )

    post_signed(client, callback_body(photo.original.name))

    kept = set(CallbackReceipt.objects.values_list("signature", flat=True))
    assert "a" * 64 not in kept
    assert "b" * 64 in kept
    assert len(kept) == 2


def test_refused_callback_leaves_no_receipt(client: Client, photo: Photo) -> None:
    post_signed(client, callback_body(photo.original.name, [{"name": "Cat"}]))

    assert not CallbackReceipt.objects.exists()


# Bad requests


def test_endpoint_without_secret_says_it_is_not_configured(
    client: Client, photo: Photo, settings: Any
) -> None:
    settings.LABEL_CALLBACK_SECRET = ""

    response = post_signed(client, callback_body(photo.original.name))

    assert response.status_code == 503
    assert "not configured" in response.json()["error"]
    assert not photo.labels.exists()


def test_endpoint_answers_only_post(client: Client, db: None) -> None:
    response = client.get(URL)

    assert response.status_code == 405


def test_callback_that_is_not_json_is_refused(client: Client, db: None) -> None:
    response = post_signed(client, b"labels: Cat, Sky")

    assert response.status_code == 400
    assert response.json() == {"error": "The body is not JSON in UTF-8."}


def test_callback_for_unknown_bucket_is_refused(client: Client, photo: Photo) -> None:
    payload = json.loads(callback_body(photo.original.name))
    payload["bucket"] = "someone-elses-bucket"

    response = post_signed(client, json.dumps(payload).encode())

    assert response.status_code == 400
    assert "someone-elses-bucket" in response.json()["error"]
    assert not photo.labels.exists()
    assert not PendingCallback.objects.exists()


@pytest.mark.parametrize(
    ("change", "error"),
    [
        ({"key": ""}, "key must be a non-empty string."),
        ({"key": None}, "key must be a non-empty string."),
        ({"key": "photos/" + "x" * 250}, "key is longer than 255."),
        ({"labeler": "local"}, "labeler must be 'lambda'."),
        ({"model_version": 3}, "model_version must be a string."),
        ({"labels": {"Cat": 98}}, "labels must be a list."),
        ({"labels": ["Cat"]}, "labels[0] must be an object."),
        ({"labels": [{**CAT, "name": ""}]}, "labels[0].name must be a non-empty"),
        ({"labels": [{**CAT, "name": "x" * 101}]}, "labels[0].name is longer"),
        ({"labels": [{**CAT, "confidence": "high"}]}, "confidence must be a number"),
        ({"labels": [{**CAT, "confidence": True}]}, "confidence must be a number"),
        ({"labels": [{**CAT, "confidence": 101}]}, "must be from 0 to 100"),
        ({"labels": [{**CAT, "parents": "Animal"}]}, "parents must be a list"),
        ({"labels": [{**CAT, "parents": [""]}]}, "parents[0] must be a name"),
        ({"labels": [{**CAT, "boxes": [{"left": 0.1}]}]}, "boxes[0].top must be"),
        ({"labels": [SKY] * 1001}, "at most 1000 labels"),
    ],
)
def test_callback_with_bad_payload_is_refused_with_reason(
    client: Client, photo: Photo, change: dict[str, Any], error: str
) -> None:
    payload = {**json.loads(callback_body(photo.original.name)), **change}

    response = post_signed(client, json.dumps(payload).encode())

    assert response.status_code == 400
    assert error in response.json()["error"]
    assert not photo.labels.exists()
    assert not Label.objects.exists()


def test_callback_with_nan_confidence_is_refused(client: Client, photo: Photo) -> None:
    body = callback_body(photo.original.name).replace(b"98.5", b"NaN")

    response = post_signed(client, body)

    assert response.status_code == 400
    assert not photo.labels.exists()


def test_callback_with_a_body_too_large_is_refused(
    client: Client, photo: Photo, settings: Any
) -> None:
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 100

    response = post_signed(client, callback_body(photo.original.name))

    assert response.status_code == 400
    assert response.json() == {"error": "The body is too large."}
    assert not photo.labels.exists()


def test_callback_with_a_box_past_the_photos_edge_is_accepted(
    client: Client, photo: Photo
) -> None:
    box = {"left": -0.02, "top": 0.9, "width": 0.5, "height": 0.2}
    label = {**CAT, "boxes": [box]}

    response = post_signed(client, callback_body(photo.original.name, [label]))

    assert response.status_code == 200
    assert photo.labels.get().boxes == [{**box, "confidence": None}]


# Admin


def test_admin_lists_kept_labels_without_letting_staff_add_or_edit_them(
    client: Client, db: None
) -> None:
    client.force_login(make_user(is_staff=True, is_superuser=True))
    pending = PendingCallback.objects.create(
        bucket=BUCKET, key="photos/1/early.jpg", labels=[CAT], received_at=now_utc()
    )

    listing = client.get("/admin/labeling/pendingcallback/")
    adding = client.get("/admin/labeling/pendingcallback/add/")
    saving = client.post(
        f"/admin/labeling/pendingcallback/{pending.pk}/change/",
        {"key": "photos/1/other.jpg"},
    )

    assert listing.status_code == 200
    assert "photos/1/early.jpg" in listing.content.decode()
    assert adding.status_code == 403
    assert saving.status_code == 403
    pending.refresh_from_db()
    assert pending.key == "photos/1/early.jpg"
