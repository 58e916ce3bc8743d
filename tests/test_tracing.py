"""Tracing with X-Ray: segments captured over UDP, as the daemon would get them."""

from __future__ import annotations

import json
import logging
import os
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from aws_xray_sdk import global_sdk_config
from aws_xray_sdk.core import xray_recorder
from django.test import Client
from django.urls import reverse

from gallery.models import Photo
from labeling.tasks import process_photo
from photosite import tracing
from tests.factories import make_photo, make_user, upload
from tests.moto_server import BUCKET, REGION, Aws, s3_storage
from tests.worker import wait_for

REPOSITORY = Path(__file__).resolve().parent.parent
UPLOAD_URL = reverse("gallery:upload_photos")
LAMBDA_TRACE = "1-5759e988-bd862e3fe1be46a994272793"
LAMBDA_PARENT = "53995c3f42cd8ad8"


class Daemon:
    """A UDP socket standing in for the X-Ray daemon."""

    def __init__(self) -> None:
        self.socket = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.socket.bind(("127.0.0.1", 0))
        self.socket.settimeout(0.05)
        host, port = self.socket.getsockname()
        self.address = f"{host}:{port}"
        self.received: list[dict[str, Any]] = []

    def documents(self) -> list[dict[str, Any]]:
        """Return every segment and streamed subsegment received so far."""
        while True:
            try:
                data = self.socket.recv(65535)
            except TimeoutError:
                return self.received
            header, document = data.decode().split("\n", 1)
            assert json.loads(header) == {"format": "json", "version": 1}
            self.received.append(json.loads(document))

    def entities(self, trace_id: str) -> list[dict[str, Any]]:
        """Return the trace's segments and subsegments, nested ones too."""
        return tree(*(doc for doc in self.documents() if doc["trace_id"] == trace_id))

    def segments(self, name: str) -> list[dict[str, Any]]:
        return [doc for doc in self.documents() if doc["name"] == name]


@pytest.fixture
def daemon() -> Iterator[Daemon]:
    daemon = Daemon()
    yield daemon
    daemon.socket.close()


@pytest.fixture
def xray(daemon: Daemon, settings, monkeypatch: pytest.MonkeyPatch) -> Iterator[Daemon]:
    """Trace everything, as in AWS mode, and send it to a test daemon."""
    # Tests run with the SDK switched off in the environment.
    monkeypatch.delenv("AWS_XRAY_SDK_ENABLED", raising=False)
    # A worker process started by the test traces to the same daemon.
    monkeypatch.setenv("TRACING_ENABLED", "true")
    monkeypatch.setenv("AWS_XRAY_DAEMON_ADDRESS", daemon.address)
    settings.TRACING_ENABLED = True
    settings.TRACING_DAEMON_ADDRESS = daemon.address
    settings.TRACING_SAMPLING_RATE = 1.0
    settings.MIDDLEWARE = ["photosite.tracing.tracing_middleware", *settings.MIDDLEWARE]
    tracing.start()
    yield daemon
    # The patches stay, but with the SDK off they record nothing.
    global_sdk_config.set_sdk_enabled(False)
    xray_recorder.clear_trace_entities()


@pytest.fixture
def bucket(aws: Aws, settings, monkeypatch: pytest.MonkeyPatch) -> Aws:
    """Store photos in an empty bucket on the moto server, as in AWS mode."""
    aws.client("s3").create_bucket(
        Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": REGION}
    )
    settings.STORAGES = {**settings.STORAGES, "default": s3_storage(aws)}
    for name, value in aws.settings().items():
        monkeypatch.setenv(name, value)
    return aws


def tree(*entities: dict[str, Any]) -> list[dict[str, Any]]:
    """Return the entities and every subsegment nested under them."""
    found: list[dict[str, Any]] = []
    pending = list(entities)
    while pending:
        entity = pending.pop()
        found.append(entity)
        pending.extend(entity.get("subsegments", []))
    return found


def aws_calls(entities: list[dict[str, Any]]) -> list[str]:
    return [e["aws"]["operation"] for e in entities if e.get("namespace") == "aws"]


def request_segment(daemon: Daemon, path: str) -> dict[str, Any]:
    [segment] = [
        doc
        for doc in daemon.segments("photosite")
        if doc["http"]["request"]["url"].endswith(path)
    ]
    return segment


def test_an_upload_is_traced_with_its_s3_put_and_queries(
    xray: Daemon, bucket: Aws, signed_in: Client
) -> None:
    signed_in.post(UPLOAD_URL, {"photos": [upload()]})

    segment = request_segment(xray, UPLOAD_URL)
    entities = xray.entities(segment["trace_id"])
    assert "PutObject" in aws_calls(entities)
    assert any(e.get("sql", {}).get("sanitized_query") for e in entities)
    assert segment["http"]["response"]["status"] == 302


@pytest.mark.worker
def test_the_labelling_task_continues_the_uploads_trace(
    xray: Daemon, bucket: Aws, embedded_worker, client: Client, settings
) -> None:
    settings.PHOTO_EVENTS = "commit"
    client.force_login(make_user())

    client.post(UPLOAD_URL, {"photos": [upload()]})
    photo = Photo.objects.get()
    wait_for(lambda: xray.segments("photosite-worker"), timeout=30)

    request = request_segment(xray, UPLOAD_URL)
    [task] = xray.segments("photosite-worker")
    [queued] = [
        entity
        for entity in xray.entities(request["trace_id"])
        if entity["name"] == "queue labeling.tasks.process_photo"
    ]
    assert task["trace_id"] == request["trace_id"]
    assert task["parent_id"] == queued["id"]
    assert task["annotations"] == {"celery_task": "labeling.tasks.process_photo"}
    assert "DetectLabels" in aws_calls(tree(task))
    events = dict(photo.events.values_list("kind", "trace_id"))
    assert events["stored"] == request["trace_id"]
    assert events["labelling_started"] == request["trace_id"]


def test_a_task_queued_outside_any_trace_starts_its_own(
    xray: Daemon, db: None, scripted
) -> None:
    scripted([])
    photo = make_photo()

    process_photo.delay(photo.pk)

    [task] = xray.segments("photosite-worker")
    assert "parent_id" not in task
    started = photo.events.get(kind="labelling_started")
    assert started.trace_id == task["trace_id"]


def test_nothing_is_logged_when_no_daemon_listens(
    xray: Daemon, bucket: Aws, transactional_db: None, settings, scripted, caplog
) -> None:
    settings.PHOTO_EVENTS = "commit"
    scripted([])
    xray.socket.close()  # Its port is now closed, as with no daemon running.
    client = Client()
    client.force_login(make_user())

    client.post(UPLOAD_URL, {"photos": [upload()]})
    # Outside any request or task, as in a command or the worker's own loop.
    Photo.objects.count()
    bucket.client("s3").list_buckets()

    events = dict(Photo.objects.get().events.values_list("kind", "trace_id"))
    assert events["labelling_finished"] == events["stored"] != ""
    assert [
        (record.name, record.getMessage())
        for record in caplog.records
        if record.name.startswith("aws_xray_sdk") and record.levelno >= logging.WARNING
    ] == []


def test_health_checks_and_static_files_are_not_traced(
    xray: Daemon, client: Client, db: None
) -> None:
    client.get("/healthz")
    client.get("/static/photosite/site.css")
    client.get(reverse("accounts:login"))

    assert [doc["http"]["request"]["url"] for doc in xray.documents()] == [
        "http://testserver" + reverse("accounts:login")
    ]


def test_query_strings_are_left_out_of_traces(
    xray: Daemon, client: Client, db: None
) -> None:
    client.get(reverse("accounts:login"), {"code": "secret-code", "state": "s1"})

    [segment] = xray.documents()
    assert segment["http"]["request"]["url"] == (
        "http://testserver" + reverse("accounts:login")
    )
    assert "secret-code" not in json.dumps(segment)


def test_nothing_is_sent_or_noted_for_unsampled_requests(
    xray: Daemon, transactional_db: None, settings, scripted
) -> None:
    settings.TRACING_SAMPLES_PER_SECOND = 0
    settings.TRACING_SAMPLING_RATE = 0.0
    settings.PHOTO_EVENTS = "commit"
    tracing.start()
    scripted([])
    client = Client()
    client.force_login(make_user())

    client.post(UPLOAD_URL, {"photos": [upload()]})

    assert xray.documents() == []
    events = Photo.objects.get().events.values_list("trace_id", flat=True)
    assert set(events) == {""}


def test_a_request_continues_the_trace_its_caller_sent(
    xray: Daemon, client: Client, db: None
) -> None:
    header = (
        "Root=1-67891233-abcdef012345678912345678;Parent=53995c3f42cd8ad8;Sampled=1"
    )

    client.get(reverse("accounts:login"), HTTP_X_AMZN_TRACE_ID=header)

    [segment] = xray.documents()
    assert segment["trace_id"] == "1-67891233-abcdef012345678912345678"
    assert segment["parent_id"] == "53995c3f42cd8ad8"


# Processes started afresh, as the site, worker and commands are.

OUTSIDE_REQUESTS = """
import sys
import boto3
import django
from botocore.stub import Stubber

django.setup()
from django.db import connection

with connection.cursor() as cursor:
    cursor.execute("SELECT 1")
    print(type(cursor).__name__)
s3 = boto3.client("s3", region_name="eu-west-1")
with Stubber(s3) as stub:
    stub.add_response("list_buckets", {"Buckets": []})
    s3.list_buckets()
print("aws_xray_sdk" in sys.modules)
"""


def run_site_code(code: str, **env: str) -> subprocess.CompletedProcess[str]:
    environment = {**os.environ, "DJANGO_SETTINGS_MODULE": "photosite.settings"}
    # As deployed: nothing but TRACING_ENABLED switches the SDK on or off.
    environment.pop("AWS_XRAY_SDK_ENABLED", None)
    return subprocess.run(
        [sys.executable, "-c", code],
        cwd=REPOSITORY,
        env={**environment, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


def own_database(folder: Path) -> dict[str, str]:
    database = folder / "site.sqlite3"
    return {"DATA_DIR": str(folder), "DATABASE_URL": f"sqlite:///{database}"}


def test_untraced_site_never_loads_the_sdk(tmp_path: Path) -> None:
    result = run_site_code(
        OUTSIDE_REQUESTS, TRACING_ENABLED="false", **own_database(tmp_path)
    )

    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["CursorWrapper", "False"]
    assert "segment" not in result.stderr


def test_aws_mode_traces_and_says_nothing_about_work_outside_requests(
    daemon: Daemon, tmp_path: Path
) -> None:
    result = run_site_code(
        OUTSIDE_REQUESTS,
        PHOTOS_BUCKET="photosite-photos",
        AWS_XRAY_DAEMON_ADDRESS=daemon.address,
        **own_database(tmp_path),
    )

    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["DjangoXRayTracedCursor", "True"]
    assert " WARNING " not in result.stderr
    assert " ERROR " not in result.stderr
    assert daemon.documents() == []


# The Lambda, with the SDK present, as when a layer adds it.

LAMBDA_CALLS = """
import os, sys
sys.path.insert(0, "lambda_src")
import handler

class Rekognition:
    def detect_labels(self, **request):
        return {"Labels": [], "LabelModelVersion": "3.0"}

handler.label_photo(
    handler.Photo(bucket="photos", key="photos/1/cat.jpg"),
    handler.Settings(callback_url=os.environ["CALLBACK_URL"], secret="secret"),
    handler.Services(rekognition=Rekognition()),
)
print("traced" if handler.xray_recorder else "untraced")
"""


class Accept(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        self.rfile.read(int(self.headers["Content-Length"]))
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def callback_url() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Accept)
    serve = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
    )
    serve.start()
    host, port = server.server_address[:2]
    yield f"http://{host!s}:{port}/labels/callback"
    server.shutdown()


def lambda_environment(daemon: Daemon, callback_url: str) -> dict[str, str]:
    """Return the variables Lambda sets for an invocation it traces."""
    return {
        "CALLBACK_URL": callback_url,
        "LAMBDA_TASK_ROOT": str(REPOSITORY / "lambda_src"),
        "_X_AMZN_TRACE_ID": f"Root={LAMBDA_TRACE};Parent={LAMBDA_PARENT};Sampled=1",
        "AWS_XRAY_DAEMON_ADDRESS": daemon.address,
    }


def test_lambda_calls_are_subsegments_of_the_invocation(
    daemon: Daemon, callback_url: str
) -> None:
    result = run_site_code(LAMBDA_CALLS, **lambda_environment(daemon, callback_url))

    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["traced"]
    subsegments = [
        (doc["name"], doc["trace_id"], doc["parent_id"]) for doc in daemon.documents()
    ]
    assert sorted(subsegments) == [
        ("Rekognition DetectLabels", LAMBDA_TRACE, LAMBDA_PARENT),
        ("site callback", LAMBDA_TRACE, LAMBDA_PARENT),
    ]


def test_lambda_labels_without_the_sdk(daemon: Daemon, callback_url: str) -> None:
    without_sdk = "import sys; sys.modules['aws_xray_sdk'] = None\n"

    result = run_site_code(
        without_sdk + LAMBDA_CALLS, **lambda_environment(daemon, callback_url)
    )

    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["untraced"]
    assert daemon.documents() == []
