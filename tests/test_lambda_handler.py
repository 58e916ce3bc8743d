"""Tests for the labelling Lambda, fed SNS events shaped the way AWS sends them."""

from __future__ import annotations

import hashlib
import hmac
import io
import json
import logging
import re
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber
from moto import mock_aws

from lambda_src import handler as labeller
from tests.aws_events import BUCKET, REGION, s3_record

SECRET = "test-callback-secret-0123456789"
TOPIC_ARN = f"arn:aws:sns:{REGION}:123456789012:photosite-photo-events"

CAT = {
    "Name": "Cat",
    "Confidence": 98.5,
    "Instances": [
        {
            "BoundingBox": {"Left": 0.1, "Top": 0.2, "Width": 0.5, "Height": 0.6},
            "Confidence": 97.25,
        }
    ],
    "Parents": [{"Name": "Animal"}, {"Name": "Pet"}],
    "Aliases": [{"Name": "Kitten"}],
    "Categories": [{"Name": "Animals and Pets"}],
}
SKY = {
    "Name": "Sky",
    "Confidence": 81.0,
    "Instances": [],
    "Parents": [],
    "Categories": [{"Name": "Nature and Outdoors"}],
}


# Events, shaped like the ones S3 publishes to SNS and SNS hands to Lambda.


def s3_message(*records: dict[str, Any]) -> str:
    return json.dumps({"Records": list(records)})


TEST_EVENT_MESSAGE = json.dumps(
    {
        "Service": "Amazon S3",
        "Event": "s3:TestEvent",
        "Time": "2026-12-03T15:00:00.000Z",
        "Bucket": BUCKET,
        "RequestId": "5582815E1AEA5ADF",
        "HostId": "8cLeGAmw098X5cv4Zkwcmo8vvZa3eH3eKxsPzbB9wrR+YstdA6Knx4Ip8EXAMPLE",
    }
)


def sns_event(*messages: str) -> dict[str, Any]:
    return {
        "Records": [
            {
                "EventSource": "aws:sns",
                "EventVersion": "1.0",
                "EventSubscriptionArn": f"{TOPIC_ARN}:{uuid.uuid4()}",
                "Sns": {
                    "Type": "Notification",
                    "MessageId": str(uuid.uuid4()),
                    "TopicArn": TOPIC_ARN,
                    "Subject": "Amazon S3 Notification",
                    "Message": message,
                    "Timestamp": "2026-12-03T15:00:00.123Z",
                    "SignatureVersion": "1",
                    "Signature": "EXAMPLE",
                    "SigningCertUrl": "https://sns.eu-west-1.amazonaws.com/cert.pem",
                    "UnsubscribeUrl": "https://sns.eu-west-1.amazonaws.com/?Action=Unsubscribe",
                    "MessageAttributes": {},
                },
            }
            for message in messages
        ]
    }


def photo_event(*keys: str) -> dict[str, Any]:
    return sns_event(*(s3_message(s3_record(key)) for key in keys))


# A stand-in for the site's callback endpoint.


@dataclass
class Received:
    timestamp: str
    signature: str
    content_type: str
    body: bytes
    signature_valid: bool

    @property
    def payload(self) -> Any:
        return json.loads(self.body)


class CallbackSite:
    """Receive callbacks on 127.0.0.1, check their signatures, fail on demand."""

    def __init__(self, secret: str) -> None:
        self.secret = secret
        self.received: list[Received] = []
        self.statuses: list[int] = []  # answered in turn before any success
        self.delays: list[float] = []  # seconds to stall before answering
        self.refused_keys: set[str] = set()
        self.success_status = 200
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self.request_handler())
        self.server.daemon_threads = True
        self.thread = threading.Thread(
            target=self.server.serve_forever, args=(0.05,), daemon=True
        )

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}/labels/callback/"

    def expected_signature(self, timestamp: str, body: bytes) -> str:
        message = timestamp.encode() + b"." + body
        digest = hmac.new(self.secret.encode(), message, hashlib.sha256).hexdigest()
        return f"v1={digest}"

    def answer(self, received: Received) -> tuple[int, dict[str, str]]:
        if self.delays:
            time.sleep(self.delays.pop(0))
        if not received.signature_valid:
            return 401, {"error": "bad signature"}
        if self.statuses:
            return self.statuses.pop(0), {"error": "planned failure"}
        if received.payload["key"] in self.refused_keys:
            return 400, {"error": "bad payload"}
        if self.success_status == 202:
            return 202, {"status": "pending"}
        return 200, {"status": "applied"}

    def request_handler(self) -> type[BaseHTTPRequestHandler]:
        site = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                timestamp = self.headers.get("X-Photosite-Timestamp", "")
                signature = self.headers.get("X-Photosite-Signature", "")
                fresh = timestamp.isdigit() and abs(time.time() - int(timestamp)) < 300
                received = Received(
                    timestamp=timestamp,
                    signature=signature,
                    content_type=self.headers.get("Content-Type", ""),
                    body=body,
                    signature_valid=fresh
                    and hmac.compare_digest(
                        signature, site.expected_signature(timestamp, body)
                    ),
                )
                site.received.append(received)
                status, answer = site.answer(received)
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.end_headers()
                    self.wfile.write(json.dumps(answer).encode())
                except (BrokenPipeError, ConnectionResetError):
                    pass  # The client timed out while the site stalled.

            def log_message(self, format: str, *args: Any) -> None:
                pass

        return Handler


class FakeClock:
    """A clock that moves only when the code under test sleeps."""

    def __init__(self) -> None:
        self.now = float(int(time.time()))
        self.sleeps: list[float] = []

    def time(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


@pytest.fixture(autouse=True)
def isolated_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in (
        "CALLBACK_URL",
        "CALLBACK_SECRET",
        "CALLBACK_SECRET_PARAMETER",
        "CALLBACK_SECRET_ID",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_SESSION_TOKEN", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    # The secrets are cached per container; each test is a fresh container.
    labeller.fetch_parameter.cache_clear()
    labeller.fetch_secret_value.cache_clear()


@pytest.fixture(autouse=True)
def log_stream(monkeypatch: pytest.MonkeyPatch) -> Iterator[io.StringIO]:
    root = logging.getLogger()
    stream = io.StringIO()
    monkeypatch.setattr(root, "handlers", [logging.StreamHandler(stream)])
    level = root.level
    root.setLevel(logging.INFO)
    yield stream
    root.setLevel(level)


@pytest.fixture
def site() -> Iterator[CallbackSite]:
    site = CallbackSite(SECRET)
    site.thread.start()
    yield site
    site.server.shutdown()
    site.server.server_close()


@pytest.fixture
def rekognition() -> Iterator[Stubber]:
    client = boto3.client("rekognition", region_name=REGION)
    with Stubber(client) as stubber:
        yield stubber


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def lambda_environment(
    monkeypatch: pytest.MonkeyPatch, site: CallbackSite, rekognition: Stubber
) -> None:
    monkeypatch.setenv("CALLBACK_URL", site.url)
    monkeypatch.setenv("CALLBACK_SECRET", SECRET)
    monkeypatch.setenv("RETRY_BACKOFF_SECONDS", "0")
    monkeypatch.setattr(labeller, "rekognition_client", lambda: rekognition.client)


def expect_labels(
    stubber: Stubber, key: str, labels: list[dict[str, Any]] | None = None
) -> None:
    stubber.add_response(
        "detect_labels",
        {"Labels": [CAT] if labels is None else labels, "LabelModelVersion": "3.0"},
        expected_params={
            "Image": {"S3Object": {"Bucket": BUCKET, "Name": key}},
            "MinConfidence": 70.0,
            "MaxLabels": 20,
        },
    )


def settings_for(site: CallbackSite, **overrides: Any) -> labeller.Settings:
    values: dict[str, Any] = {
        "callback_url": site.url,
        "secret": SECRET,
        "backoff_seconds": 2.0,
        "callback_timeout": 2.0,
    }
    return labeller.Settings(**{**values, **overrides})


def photo(key: str) -> labeller.Photo:
    return labeller.Photo(bucket=BUCKET, key=key)


# The signature


def test_sign_is_hmac_sha256_of_timestamp_dot_body() -> None:
    body = b'{"key":"photos/1/a.jpg"}'

    signature = labeller.sign("s3cret", 1764774000, body)

    expected = hmac.new(
        b"s3cret", b'1764774000.{"key":"photos/1/a.jpg"}', hashlib.sha256
    ).hexdigest()
    assert signature == "v1=" + expected


# Reading the event


def test_event_skips_s3_test_event() -> None:
    event = sns_event(TEST_EVENT_MESSAGE)

    photos = list(labeller.photos_in_event(event, "photos/"))

    assert photos == []


def test_event_decodes_spaces_and_unicode_in_keys() -> None:
    event = photo_event("photos/7/my+caf%C3%A9+photo.jpg")

    photos = list(labeller.photos_in_event(event, "photos/"))

    assert photos == [photo("photos/7/my café photo.jpg")]


def test_event_decodes_moto_encoded_slashes() -> None:
    event = photo_event("photos%2F7%2Fbeach.jpg")

    photos = list(labeller.photos_in_event(event, "photos/"))

    assert photos == [photo("photos/7/beach.jpg")]


def test_event_keeps_encoded_plus_sign_in_key() -> None:
    event = photo_event("photos/7/1%2B1.jpg")

    photos = list(labeller.photos_in_event(event, "photos/"))

    assert photos == [photo("photos/7/1+1.jpg")]


def test_event_reads_every_s3_record_of_every_sns_record() -> None:
    two_records = s3_message(s3_record("photos/1/a.jpg"), s3_record("photos/1/b.jpg"))
    event = sns_event(two_records, s3_message(s3_record("photos/2/c.jpg")))

    photos = list(labeller.photos_in_event(event, "photos/"))

    assert photos == [
        photo("photos/1/a.jpg"),
        photo("photos/1/b.jpg"),
        photo("photos/2/c.jpg"),
    ]


def test_event_skips_keys_outside_photo_prefix() -> None:
    event = photo_event("thumbnails/1/a.jpg", "photos/1/a.jpg", "photosx/1/a.jpg")

    photos = list(labeller.photos_in_event(event, "photos/"))

    assert photos == [photo("photos/1/a.jpg")]


def test_event_skips_removed_objects() -> None:
    removed = s3_record("photos/1/a.jpg", event_name="ObjectRemoved:Delete")
    event = sns_event(s3_message(removed))

    photos = list(labeller.photos_in_event(event, "photos/"))

    assert photos == []


def test_event_skips_garbage_messages_and_keeps_the_rest(
    log_stream: io.StringIO,
) -> None:
    good = s3_message(s3_record("photos/1/a.jpg"))
    odd_record = json.dumps({"Records": [{"s3": "nothing here"}]})
    event = sns_event("not json {", "[1, 2]", odd_record, good)

    photos = list(labeller.photos_in_event(event, "photos/"))

    assert photos == [photo("photos/1/a.jpg")]
    assert "message skipped: not JSON" in log_stream.getvalue()
    assert "S3 record skipped: unexpected shape" in log_stream.getvalue()


# The payload


def test_payload_maps_rekognition_labels() -> None:
    response = {"Labels": [CAT, SKY], "LabelModelVersion": "3.0"}

    payload = labeller.build_payload(photo("photos/1/a.jpg"), response)

    assert payload == {
        "bucket": BUCKET,
        "key": "photos/1/a.jpg",
        "labeler": "lambda",
        "model_version": "rekognition:3.0",
        "labels": [
            {
                "name": "Cat",
                "confidence": 98.5,
                "parents": ["Animal", "Pet"],
                "categories": ["Animals and Pets"],
                "boxes": [
                    {
                        "left": 0.1,
                        "top": 0.2,
                        "width": 0.5,
                        "height": 0.6,
                        "confidence": 97.25,
                    }
                ],
            },
            {
                "name": "Sky",
                "confidence": 81.0,
                "parents": [],
                "categories": ["Nature and Outdoors"],
                "boxes": [],
            },
        ],
    }


def test_payload_without_model_version_names_rekognition_alone() -> None:
    payload = labeller.build_payload(photo("photos/1/a.jpg"), {"Labels": []})

    assert payload["model_version"] == "rekognition"


# The handler, end to end


def test_handler_posts_signed_labels_for_new_photo(
    lambda_environment: None, site: CallbackSite, rekognition: Stubber
) -> None:
    expect_labels(rekognition, "photos/7/my café photo.jpg")
    event = photo_event("photos/7/my+caf%C3%A9+photo.jpg")

    result = labeller.handler(event, None)

    assert result == {"labelled": 1}
    rekognition.assert_no_pending_responses()
    [received] = site.received
    assert received.signature_valid
    assert received.content_type == "application/json"
    assert b", " not in received.body and b'": ' not in received.body
    assert received.payload == labeller.build_payload(
        photo("photos/7/my café photo.jpg"),
        {"Labels": [CAT], "LabelModelVersion": "3.0"},
    )
    assert "café".encode() in received.body


def test_handler_treats_pending_answer_as_success(
    lambda_environment: None, site: CallbackSite, rekognition: Stubber
) -> None:
    site.success_status = 202
    expect_labels(rekognition, "photos/1/a.jpg")

    result = labeller.handler(photo_event("photos/1/a.jpg"), None)

    assert result == {"labelled": 1}
    assert len(site.received) == 1


def test_handler_ignores_test_event(
    lambda_environment: None, site: CallbackSite, rekognition: Stubber
) -> None:
    event = sns_event(TEST_EVENT_MESSAGE)

    result = labeller.handler(event, None)

    assert result == {"labelled": 0}
    assert site.received == []


def test_handler_posts_every_photo_of_a_message_with_two_records(
    lambda_environment: None, site: CallbackSite, rekognition: Stubber
) -> None:
    expect_labels(rekognition, "photos/1/a.jpg")
    expect_labels(rekognition, "photos/1/b.jpg", labels=[SKY])
    records = s3_message(s3_record("photos/1/a.jpg"), s3_record("photos/1/b.jpg"))

    labeller.handler(sns_event(records), None)

    assert [received.payload["key"] for received in site.received] == [
        "photos/1/a.jpg",
        "photos/1/b.jpg",
    ]
    assert all(received.signature_valid for received in site.received)


def test_handler_posts_other_photos_then_raises_for_rekognition_error(
    lambda_environment: None, site: CallbackSite, rekognition: Stubber
) -> None:
    rekognition.add_client_error(
        "detect_labels", "InvalidS3ObjectException", "Unable to get object metadata"
    )
    expect_labels(rekognition, "photos/1/good.jpg")
    event = photo_event("photos/1/broken.jpg", "photos/1/good.jpg")

    with pytest.raises(
        labeller.LabellingError, match=re.escape("photos/1/broken.jpg")
    ) as error:
        labeller.handler(event, None)

    assert error.value.keys == ["photos/1/broken.jpg"]
    assert [received.payload["key"] for received in site.received] == [
        "photos/1/good.jpg"
    ]


def test_handler_posts_other_photos_then_raises_for_refused_callback(
    lambda_environment: None, site: CallbackSite, rekognition: Stubber
) -> None:
    site.refused_keys = {"photos/1/a.jpg"}
    expect_labels(rekognition, "photos/1/a.jpg")
    expect_labels(rekognition, "photos/1/b.jpg")
    records = s3_message(s3_record("photos/1/a.jpg"), s3_record("photos/1/b.jpg"))

    with pytest.raises(labeller.LabellingError) as error:
        labeller.handler(sns_event(records), None)

    assert error.value.keys == ["photos/1/a.jpg"]
    assert [received.payload["key"] for received in site.received] == [
        "photos/1/a.jpg",
        "photos/1/b.jpg",
    ]


def test_handler_reads_secret_from_ssm_parameter_once(
    lambda_environment: None,
    monkeypatch: pytest.MonkeyPatch,
    site: CallbackSite,
    rekognition: Stubber,
) -> None:
    monkeypatch.delenv("CALLBACK_SECRET")
    monkeypatch.setenv("CALLBACK_SECRET_PARAMETER", "/photosite/callback-secret")
    expect_labels(rekognition, "photos/1/a.jpg")
    expect_labels(rekognition, "photos/1/b.jpg")

    with mock_aws():
        ssm = boto3.client("ssm")
        ssm.put_parameter(
            Name="/photosite/callback-secret", Value=SECRET, Type="SecureString"
        )
        labeller.handler(photo_event("photos/1/a.jpg"), None)
        # Cached per container: a second invocation does not read SSM again.
        ssm.delete_parameter(Name="/photosite/callback-secret")
        labeller.handler(photo_event("photos/1/b.jpg"), None)

    assert len(site.received) == 2
    assert all(received.signature_valid for received in site.received)


def test_handler_reads_secret_from_secrets_manager(
    lambda_environment: None,
    monkeypatch: pytest.MonkeyPatch,
    site: CallbackSite,
    rekognition: Stubber,
) -> None:
    monkeypatch.delenv("CALLBACK_SECRET")
    monkeypatch.setenv("CALLBACK_SECRET_ID", "photosite/callback-secret")
    expect_labels(rekognition, "photos/1/a.jpg")

    with mock_aws():
        boto3.client("secretsmanager").create_secret(
            Name="photosite/callback-secret", SecretString=SECRET
        )
        labeller.handler(photo_event("photos/1/a.jpg"), None)

    [received] = site.received
    assert received.signature_valid


def test_handler_logs_json_lines_without_the_secret(
    lambda_environment: None,
    site: CallbackSite,
    rekognition: Stubber,
    log_stream: io.StringIO,
) -> None:
    site.statuses = [500]
    expect_labels(rekognition, "photos/1/a.jpg")

    labeller.handler(photo_event("photos/1/a.jpg"), None)

    lines = [json.loads(line) for line in log_stream.getvalue().splitlines()]
    messages = [line["message"] for line in lines]
    assert "transient failure, retrying" in messages
    assert "labels posted" in messages
    [retry] = [line for line in lines if line["message"].startswith("transient")]
    assert retry["key"] == "photos/1/a.jpg"
    assert retry["bucket"] == BUCKET
    assert retry["attempt"] == 1
    assert retry["level"] == "WARNING"
    assert SECRET not in log_stream.getvalue()


# Configuration


def test_missing_callback_url_is_a_clear_error() -> None:
    environ = {"CALLBACK_SECRET": SECRET}

    with pytest.raises(labeller.ConfigurationError, match="CALLBACK_URL"):
        labeller.load_settings(environ)


def test_missing_secret_is_a_clear_error() -> None:
    environ = {"CALLBACK_URL": "https://photos.example.com/labels/callback/"}

    with pytest.raises(labeller.ConfigurationError, match="CALLBACK_SECRET"):
        labeller.load_settings(environ)


def test_missing_ssm_parameter_is_a_clear_error() -> None:
    environ = {
        "CALLBACK_URL": "https://photos.example.com/labels/callback/",
        "CALLBACK_SECRET_PARAMETER": "/photosite/nowhere",
    }

    with mock_aws(), pytest.raises(labeller.ConfigurationError, match="nowhere"):
        labeller.load_settings(environ)


def test_bad_number_setting_is_a_clear_error() -> None:
    environ = {
        "CALLBACK_URL": "https://photos.example.com/labels/callback/",
        "CALLBACK_SECRET": SECRET,
        "MIN_CONFIDENCE": "high",
    }

    with pytest.raises(labeller.ConfigurationError, match="MIN_CONFIDENCE"):
        labeller.load_settings(environ)


def test_settings_default_to_the_documented_values() -> None:
    environ = {
        "CALLBACK_URL": "https://photos.example.com/labels/callback/",
        "CALLBACK_SECRET": SECRET,
    }

    settings = labeller.load_settings(environ)

    assert (settings.photo_prefix, settings.min_confidence, settings.max_labels) == (
        "photos/",
        70.0,
        20,
    )
    assert SECRET not in repr(settings)


# Retries


def test_callback_retries_server_errors_with_exponential_backoff(
    site: CallbackSite, rekognition: Stubber, clock: FakeClock
) -> None:
    site.statuses = [500, 503]
    expect_labels(rekognition, "photos/1/a.jpg")
    services = labeller.Services(rekognition.client, clock.sleep, clock.time)

    labeller.label_photos([photo("photos/1/a.jpg")], settings_for(site), services)

    assert clock.sleeps == [2.0, 4.0]
    assert len(site.received) == 3
    assert all(received.signature_valid for received in site.received)


def test_callback_retries_are_signed_with_fresh_timestamps(
    site: CallbackSite, rekognition: Stubber, clock: FakeClock
) -> None:
    start = int(clock.now)
    site.statuses = [500, 500]
    expect_labels(rekognition, "photos/1/a.jpg")
    services = labeller.Services(rekognition.client, clock.sleep, clock.time)

    labeller.label_photos([photo("photos/1/a.jpg")], settings_for(site), services)

    timestamps = [int(received.timestamp) for received in site.received]
    assert timestamps == [start, start + 2, start + 6]
    assert len({received.signature for received in site.received}) == 3


def test_callback_retries_too_many_requests(
    site: CallbackSite, rekognition: Stubber, clock: FakeClock
) -> None:
    site.statuses = [429]
    expect_labels(rekognition, "photos/1/a.jpg")
    services = labeller.Services(rekognition.client, clock.sleep, clock.time)

    labeller.label_photos([photo("photos/1/a.jpg")], settings_for(site), services)

    assert clock.sleeps == [2.0]
    assert len(site.received) == 2


def test_callback_gives_up_after_three_server_errors(
    site: CallbackSite, rekognition: Stubber, clock: FakeClock
) -> None:
    site.statuses = [500, 500, 500, 500]
    expect_labels(rekognition, "photos/1/a.jpg")
    services = labeller.Services(rekognition.client, clock.sleep, clock.time)

    with pytest.raises(labeller.LabellingError, match=re.escape("photos/1/a.jpg")):
        labeller.label_photos([photo("photos/1/a.jpg")], settings_for(site), services)

    assert len(site.received) == 3
    assert clock.sleeps == [2.0, 4.0]


def test_callback_does_not_retry_bad_request(
    site: CallbackSite, rekognition: Stubber, clock: FakeClock
) -> None:
    site.statuses = [400]
    expect_labels(rekognition, "photos/1/a.jpg")
    services = labeller.Services(rekognition.client, clock.sleep, clock.time)

    with pytest.raises(labeller.LabellingError):
        labeller.label_photos([photo("photos/1/a.jpg")], settings_for(site), services)

    assert len(site.received) == 1
    assert clock.sleeps == []


def test_callback_does_not_retry_refused_signature(
    site: CallbackSite, rekognition: Stubber, clock: FakeClock
) -> None:
    expect_labels(rekognition, "photos/1/a.jpg")
    services = labeller.Services(rekognition.client, clock.sleep, clock.time)
    settings = settings_for(site, secret="not-the-site-secret")

    with pytest.raises(labeller.LabellingError):
        labeller.label_photos([photo("photos/1/a.jpg")], settings, services)

    assert [received.signature_valid for received in site.received] == [False]
    assert clock.sleeps == []


def test_callback_retries_refused_connection(
    rekognition: Stubber, clock: FakeClock
) -> None:
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        port = unused.getsockname()[1]
    settings = labeller.Settings(
        callback_url=f"http://127.0.0.1:{port}/labels/callback/", secret=SECRET
    )
    expect_labels(rekognition, "photos/1/a.jpg")
    services = labeller.Services(rekognition.client, clock.sleep, clock.time)

    with pytest.raises(labeller.LabellingError):
        labeller.label_photos([photo("photos/1/a.jpg")], settings, services)

    assert clock.sleeps == [0.5, 1.0]


def test_callback_retries_timeout(
    site: CallbackSite, rekognition: Stubber, clock: FakeClock
) -> None:
    site.delays = [1.0]
    expect_labels(rekognition, "photos/1/a.jpg")
    services = labeller.Services(rekognition.client, clock.sleep, clock.time)
    settings = settings_for(site, callback_timeout=0.2)

    labeller.label_photos([photo("photos/1/a.jpg")], settings, services)

    assert clock.sleeps == [2.0]
    assert len(site.received) == 2


def test_rekognition_throttling_is_retried_with_backoff(
    site: CallbackSite, rekognition: Stubber, clock: FakeClock
) -> None:
    rekognition.add_client_error("detect_labels", "ThrottlingException")
    rekognition.add_client_error(
        "detect_labels", "ProvisionedThroughputExceededException"
    )
    expect_labels(rekognition, "photos/1/a.jpg")
    services = labeller.Services(rekognition.client, clock.sleep, clock.time)

    labeller.label_photos([photo("photos/1/a.jpg")], settings_for(site), services)

    assert clock.sleeps == [2.0, 4.0]
    assert [received.payload["key"] for received in site.received] == ["photos/1/a.jpg"]


def test_rekognition_errors_other_than_throttling_are_not_retried(
    site: CallbackSite, rekognition: Stubber, clock: FakeClock
) -> None:
    rekognition.add_client_error("detect_labels", "AccessDeniedException")
    services = labeller.Services(rekognition.client, clock.sleep, clock.time)

    with pytest.raises(labeller.LabellingError):
        labeller.label_photos([photo("photos/1/a.jpg")], settings_for(site), services)

    assert clock.sleeps == []
    assert site.received == []
