"""Upload -> S3 -> SNS -> SQS -> a real Celery worker -> labels, over HTTP."""

import hashlib
import io
import json
import os
import subprocess
import sys
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote_plus

import pytest
from django.conf import settings as django_settings
from django.core.management import call_command
from django.test import Client, override_settings
from django.urls import reverse

from accounts.models import User
from gallery.models import Photo
from gallery.storage import photo_file_url
from labeling.models import PhotoLabel
from tests.factories import make_user
from tests.moto_server import BUCKET, CREDENTIALS, Aws, s3_storage
from tests.worker import database_url, wait_for

pytestmark = [pytest.mark.aws, pytest.mark.worker]

PHOTOS = Path(__file__).parent / "photos"
EVENTS = "photosite-photo-events"
EVENTS_DLQ = "photosite-photo-events-dlq"
# Few receives and a short visibility timeout, so a bad notification reaches
# the dead-letter queue in seconds rather than minutes.
FAST_REDRIVE = {"SQS_MAX_RECEIVES": 3, "PHOTO_EVENTS_VISIBILITY_SECONDS": 1}


@dataclass
class Pipeline:
    aws: Aws
    log: Path

    def worker_log(self) -> str:
        return self.log.read_text(errors="replace")

    def queue_counts(self, name: str) -> tuple[int, int]:
        """Return the messages waiting in a queue and those being handled."""
        sqs = self.aws.client("sqs")
        attributes = sqs.get_queue_attributes(
            QueueUrl=self.aws.queue_url(name),
            AttributeNames=[
                "ApproximateNumberOfMessages",
                "ApproximateNumberOfMessagesNotVisible",
            ],
        )["Attributes"]
        return (
            int(attributes["ApproximateNumberOfMessages"]),
            int(attributes["ApproximateNumberOfMessagesNotVisible"]),
        )


@pytest.fixture(scope="module")
def pipeline(
    moto_server: Aws,
    django_db_setup: None,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Pipeline]:
    """Set up AWS mode on moto and start `celery worker` against it."""
    moto_server.reset()
    with (
        pytest.MonkeyPatch.context() as patch,
        override_settings(**moto_server.settings(), **FAST_REDRIVE),
    ):
        for name, value in CREDENTIALS.items():
            patch.setenv(name, value)
        call_command("setup_aws", stdout=io.StringIO())
    folder = tmp_path_factory.mktemp("aws-worker")
    log = folder / "worker.log"
    env = {
        **os.environ,
        **moto_server.environment(),
        "DATA_DIR": str(folder),
        "DATABASE_URL": database_url(),
        "CELERY_TASK_ALWAYS_EAGER": "false",
        "SQS_WAIT_TIME_SECONDS": "1",
        "LOG_LEVEL": "INFO",
    }
    with log.open("w") as output:
        worker = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "photosite", "worker",
             "--pool=threads", "--concurrency=2", "--loglevel=INFO",
             "--without-heartbeat", "--without-mingle", "--without-gossip"],
            cwd=django_settings.BASE_DIR,
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
        )  # fmt: skip
    yield Pipeline(aws=moto_server, log=log)
    worker.terminate()
    try:
        worker.wait(timeout=20)
    except subprocess.TimeoutExpired:
        worker.kill()
        worker.wait()


@pytest.fixture
def site_on_s3(pipeline: Pipeline, transactional_db: None, settings) -> Pipeline:
    """Store this process's photos in the moto bucket, as the web app would."""
    for name, value in pipeline.aws.settings().items():
        setattr(settings, name, value)
    settings.STORAGES = {**settings.STORAGES, "default": s3_storage(pipeline.aws)}
    return pipeline


def is_labelled(photo_id: int) -> bool:
    return Photo.objects.get(pk=photo_id).status != Photo.Status.PENDING


def photo_row(owner: User, key: str, content: bytes) -> Photo:
    """Record a photo already in the bucket, as a completed upload would."""
    return Photo.objects.create(
        owner=owner,
        original=key,
        original_name="chelsea.jpg",
        content_type="image/jpeg",
        size_bytes=len(content),
        sha256=hashlib.sha256(content + key.encode()).hexdigest(),
        width=451,
        height=300,
    )


def test_an_upload_is_labelled_by_the_worker_through_s3_sns_and_sqs(
    site_on_s3: Pipeline, client: Client
) -> None:
    client.force_login(make_user())

    with (PHOTOS / "chelsea.jpg").open("rb") as file:
        client.post(reverse("gallery:upload_photos"), {"photos": [file]})
    photo = Photo.objects.get()
    wait_for(lambda: is_labelled(photo.pk), timeout=60)

    photo.refresh_from_db()
    assert photo.status == Photo.Status.LABELLED, photo.failure_reason
    # moto's Rekognition always sees a mobile phone in a box.
    phone = photo.labels.get(label__name="Mobile Phone")
    assert phone.source == "rekognition"
    assert len(phone.boxes) == 1
    assert list(phone.label.parents.values_list("name", flat=True)) == ["Phone"]
    s3 = site_on_s3.aws.client("s3")
    stored = s3.head_object(Bucket=BUCKET, Key=photo.original.name)
    assert stored["ServerSideEncryption"] == "AES256"
    thumbnail_url = photo_file_url(photo, "thumbnail")
    assert "X-Amz-Expires=300" in thumbnail_url
    with urllib.request.urlopen(thumbnail_url, timeout=10) as response:
        assert response.read(2) == b"\xff\xd8"  # a JPEG, straight from S3
    # Every notification, S3's test event included, was deleted once handled.
    wait_for(lambda: site_on_s3.queue_counts(EVENTS) == (0, 0), timeout=10)


def test_a_notification_that_beats_its_row_waits_for_it(
    site_on_s3: Pipeline,
) -> None:
    owner = make_user()
    key = f"photos/{owner.pk}/{uuid.uuid4().hex}.jpg"
    content = (PHOTOS / "chelsea.jpg").read_bytes()

    site_on_s3.aws.client("s3").put_object(Bucket=BUCKET, Key=key, Body=content)
    wait_for(lambda: f"No photo has key {key} yet" in site_on_s3.worker_log())
    photo = photo_row(owner, key, content)
    wait_for(lambda: is_labelled(photo.pk), timeout=30)

    photo.refresh_from_db()
    assert photo.status == Photo.Status.LABELLED, photo.failure_reason
    assert photo.labels.filter(label__name="Mobile Phone").exists()


def test_one_sns_message_can_announce_several_photos(site_on_s3: Pipeline) -> None:
    owner = make_user()
    content = (PHOTOS / "coffee.jpg").read_bytes()
    keys = [f"photos/{owner.pk}/{uuid.uuid4().hex} copy {n}.jpg" for n in (1, 2)]
    photos = [photo_row(owner, key, content) for key in keys]
    for key in keys:
        site_on_s3.aws.client("s3").put_object(Bucket=BUCKET, Key=key, Body=content)
    wait_for(lambda: all(is_labelled(photo.pk) for photo in photos), timeout=30)
    # Forget those labels, so only the message below can bring them back.
    Photo.objects.filter(owner=owner).update(status=Photo.Status.PENDING)
    PhotoLabel.objects.filter(photo__owner=owner).delete()
    records = [
        {
            "eventSource": "aws:s3",
            "eventName": "ObjectCreated:Put",
            "s3": {"bucket": {"name": BUCKET}, "object": {"key": quote_plus(key)}},
        }
        for key in keys
    ]
    envelope = {
        "Type": "Notification",
        "MessageId": str(uuid.uuid4()),
        "TopicArn": f"arn:aws:sns:eu-west-1:123456789012:{EVENTS}",
        "Message": json.dumps({"Records": records}),
    }

    sent = site_on_s3.aws.client("sqs").send_message(
        QueueUrl=site_on_s3.aws.queue_url(EVENTS), MessageBody=json.dumps(envelope)
    )
    wait_for(lambda: all(is_labelled(photo.pk) for photo in photos), timeout=30)

    assert f"Notification {sent['MessageId']} queued 2 photo(s)" in (
        site_on_s3.worker_log()
    )
    labelled = PhotoLabel.objects.filter(photo__owner=owner, label__name="Mobile Phone")
    assert labelled.count() == 2


def test_an_unreadable_notification_ends_in_the_dead_letter_queue(
    pipeline: Pipeline,
) -> None:
    sqs = pipeline.aws.client("sqs")

    sqs.send_message(QueueUrl=pipeline.aws.queue_url(EVENTS), MessageBody="<junk/>")
    wait_for(lambda: pipeline.queue_counts(EVENTS_DLQ)[0] == 1, timeout=30)

    (message,) = sqs.receive_message(
        QueueUrl=pipeline.aws.queue_url(EVENTS_DLQ),
        MessageSystemAttributeNames=["ApproximateReceiveCount"],
    )["Messages"]
    assert message["Body"] == "<junk/>"
    assert int(message["Attributes"]["ApproximateReceiveCount"]) > 3
    assert pipeline.queue_counts(EVENTS) == (0, 0)
    assert pipeline.worker_log().count("is unreadable") >= 3
