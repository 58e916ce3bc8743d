from pathlib import Path

import pytest
from django.test import Client
from django.urls import reverse

from gallery.models import Photo
from photosite.celery import app
from tests.factories import make_user
from tests.worker import wait_for

PHOTOS = Path(__file__).parent / "photos"


@pytest.mark.worker
def test_real_worker_labels_an_upload(client: Client, embedded_worker) -> None:
    client.force_login(make_user())

    with (PHOTOS / "chelsea.jpg").open("rb") as file:
        client.post(reverse("gallery:upload_photos"), {"photos": [file]})
    photo = Photo.objects.get()
    assert photo.status == Photo.Status.PENDING
    wait_for(lambda: Photo.objects.get().status != Photo.Status.PENDING)

    photo.refresh_from_db()
    assert photo.status == Photo.Status.LABELLED
    assert "Cat" in photo.labels.values_list("label__name", flat=True)
    assert photo.thumbnail.name


def test_embedded_broker_connection_gives_no_warning(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level("WARNING", logger="kombu.connection"):
        app.connection_for_write().clone()

    assert caplog.records == []
