"""Measure AWS mode over moto: upload-to-labels latency and SQS throughput.

Run with `python -m bench.aws_pipeline`. moto's server, the Celery worker and
this process talk HTTP over 127.0.0.1 only, and everything stops by itself.

1. Latency: photos are uploaded one at a time through store_photo, as the
   upload view does, and timed until the worker has stored their labels:
   S3 PutObject -> S3 notification -> SNS -> SQS -> the worker's consumer ->
   label_stored_object -> process_photo (thumbnail, DetectLabels) -> labels.
2. Consumer alone: with the worker stopped, the events queue is filled
   with S3 notifications; a worker that runs no tasks is started and the
   consumer's rate (parse, queue a task, delete) is read off its log.
3. Consumer with labelling: the same with the photos set back to pending
   and a normal worker, so each notification ends in DetectLabels and
   stored labels (thumbnails exist by then).

The database is MariaDB/MySQL (BENCH_DATABASE_URL), as on RDS: SQLite
locks out the worker's concurrent writers.
"""

import io
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import quote_plus, urlsplit

from bench.common import ROOT, report, summary_ms, twelve_megapixel_jpegs
from bench.site import free_port

REGION = "eu-west-1"
ACCOUNT_ID = "123456789012"  # moto's
BUCKET = "photosite-bench"
PHOTOS = int(os.environ.get("BENCH_AWS_PHOTOS", "30"))
NOTIFICATIONS = int(os.environ.get("BENCH_AWS_NOTIFICATIONS", "500"))
CONCURRENCY = int(os.environ.get("BENCH_AWS_CONCURRENCY", "4"))
POOL = os.environ.get("BENCH_AWS_POOL", "threads")
WAIT_TIME_SECONDS = 5
TASKS_QUEUE = "photosite-tasks"
LOG_TIME = "%Y-%m-%d %H:%M:%S,%f"
# SQLite locks out the worker's concurrent writers, so this runs on MySQL.
DATABASE_URL = os.environ.get(
    "BENCH_DATABASE_URL", "mysql://root@127.0.0.1:3306/photosite_bench_aws"
)


def start_moto(port: int, folder: Path) -> subprocess.Popen[bytes]:
    log = (folder / "moto.log").open("wb")
    server = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    wait_until(lambda: answers(f"http://127.0.0.1:{port}/moto-api/"), 30)
    return server


def answers(url: str) -> bool:
    import urllib.request

    try:
        urllib.request.urlopen(url, timeout=1).close()
    except OSError:
        return False
    return True


def wait_until(condition, timeout: float, interval: float = 0.01) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise RuntimeError(f"gave up after {timeout} s")
        time.sleep(interval)


def aws_mode(port: int) -> None:
    """Set the environment of AWS mode against moto, before Django starts."""
    os.environ.update(
        {
            "PHOTOS_BUCKET": BUCKET,
            "AWS_REGION": REGION,
            "AWS_ACCOUNT_ID": ACCOUNT_ID,
            "AWS_ENDPOINT_URL": f"http://127.0.0.1:{port}",
            "AWS_ACCESS_KEY_ID": "bench",
            "AWS_SECRET_ACCESS_KEY": "bench",
            "CELERY_BROKER_URL": f"sqs://bench:bench@127.0.0.1:{port}",
            "SQS_WAIT_TIME_SECONDS": str(WAIT_TIME_SECONDS),
        }
    )


def start_worker(log: Path, *options: str) -> subprocess.Popen[bytes]:
    command = [
        sys.executable, "-m", "celery", "-A", "photosite", "worker",
        f"--pool={POOL}", f"--concurrency={CONCURRENCY}", "--loglevel=INFO",
        "--without-heartbeat", "--without-mingle", "--without-gossip", *options,
    ]  # fmt: skip
    env = {**os.environ, "LOG_LEVEL": "INFO"}
    since = line_count(log)
    with log.open("ab") as output:
        worker = subprocess.Popen(
            command, cwd=ROOT, env=env, stdout=output, stderr=subprocess.STDOUT
        )
    wait_until(lambda: log_times(log, "ready.", since), 60, 0.05)
    return worker


def stop_worker(worker: subprocess.Popen[bytes]) -> None:
    worker.terminate()
    try:
        worker.wait(timeout=30)
    except subprocess.TimeoutExpired:
        worker.kill()
        worker.wait()
    # A long poll the worker left behind still takes messages until it ends,
    # and they stay invisible for the visibility timeout; let it run out.
    time.sleep(WAIT_TIME_SECONDS + 1)


def measure_latency(owner: object, photos: list[bytes]) -> dict[str, object]:
    from django.core.files.uploadedfile import SimpleUploadedFile

    from gallery.models import Photo
    from gallery.services import store_photo

    latencies = []
    for number, content in enumerate(photos):
        upload = SimpleUploadedFile(f"bench-{number}.jpg", content)
        started = time.time()
        photo = store_photo(owner, upload)  # type: ignore[arg-type]
        labelled = Photo.objects.filter(pk=photo.pk, status=Photo.Status.LABELLED)
        wait_until(labelled.exists, 120)
        # The worker stamps the row as it stores the labels.
        finished = Photo.objects.get(pk=photo.pk).updated_at.timestamp()
        latencies.append(finished - started)
    return {
        "photos": len(photos),
        "mean_photo_mb": round(sum(map(len, photos)) / len(photos) / 1e6, 2),
        **summary_ms(latencies),
    }


def moto_request_ms() -> dict[str, float]:
    """Time a cheap SQS call, the unit every step of the pipeline pays."""
    from django.conf import settings

    from labeling.aws_setup import aws_client

    sqs = aws_client("sqs")
    times = []
    for _ in range(200):
        started = time.perf_counter()
        sqs.get_queue_url(QueueName=settings.PHOTO_EVENTS_QUEUE)
        times.append(time.perf_counter() - started)
    return summary_ms(times)


def notification(key: str) -> str:
    record = {
        "eventVersion": "2.1",
        "eventSource": "aws:s3",
        "awsRegion": REGION,
        "eventName": "ObjectCreated:Put",
        "s3": {"bucket": {"name": BUCKET}, "object": {"key": quote_plus(key)}},
    }
    return json.dumps({"Records": [record]})


def fill_events_queue(keys: list[str]) -> None:
    from django.conf import settings

    from labeling.aws_setup import aws_client

    sqs = aws_client("sqs")
    url = sqs.get_queue_url(QueueName=settings.PHOTO_EVENTS_QUEUE)["QueueUrl"]
    for start in range(0, len(keys), 10):
        entries = [
            {"Id": str(number), "MessageBody": notification(key)}
            for number, key in enumerate(keys[start : start + 10])
        ]
        sqs.send_message_batch(QueueUrl=url, Entries=entries)


def log_times(log: Path, marker: str, since: int) -> list[float]:
    """Return the times of the worker's log lines that contain marker."""
    times = []
    for line in log.read_text(errors="replace").splitlines()[since:]:
        if marker in line:
            stamp = datetime.strptime(line[:23], LOG_TIME).replace(tzinfo=UTC)
            times.append(stamp.timestamp())
    return times


def line_count(log: Path) -> int:
    if not log.exists():
        return 0
    return len(log.read_text(errors="replace").splitlines())


def measure_drain(
    log: Path, keys: list[str], done: str, *options: str
) -> dict[str, float]:
    """Fill the events queue, start a worker, and time how it drains."""
    fill_events_queue(keys)
    since = line_count(log)
    worker = start_worker(log, *options)
    try:
        wait_until(lambda: len(log_times(log, done, since)) >= len(keys), 120, 0.1)
    finally:
        stop_worker(worker)
    consumed = log_times(log, "queued 1 photo(s)", since)
    finished = log_times(log, done, since)
    return {
        "notifications": len(keys),
        "consumer_per_second": round((len(consumed) - 1) / span(consumed), 1),
        "done_per_second": round(len(keys) / (max(finished) - consumed[0]), 1),
    }


def span(times: list[float]) -> float:
    return max(times) - min(times)


def purge_tasks() -> None:
    from django.conf import settings

    from labeling.aws_setup import aws_client

    sqs = aws_client("sqs")
    url = sqs.get_queue_url(QueueName=settings.PHOTO_TASKS_QUEUE)["QueueUrl"]
    sqs.purge_queue(QueueUrl=url)


def main() -> None:
    port = free_port()
    moto = start_moto(port, Path(tempfile.mkdtemp(prefix="photosite-moto-")))
    try:
        aws_mode(port)
        data_dir = isolated_site()
        figures = run(data_dir / "worker.log")
    finally:
        moto.terminate()
        moto.wait(timeout=30)
    report("aws_pipeline", figures)


def isolated_site() -> Path:
    """Set Django up on a fresh database that takes concurrent writers."""
    import django
    from django.core.management import call_command

    data_dir = Path(tempfile.mkdtemp(prefix="photosite-bench-aws-"))
    os.environ.update(
        {
            "DJANGO_SETTINGS_MODULE": "photosite.settings",
            "DATA_DIR": str(data_dir),
            "DATABASE_URL": fresh_database(),
            "DEBUG": "false",
            "SECRET_KEY": "benchmark-only-secret-key",
            "CELERY_TASK_ALWAYS_EAGER": "false",
            "AWS_XRAY_SDK_ENABLED": "false",
            "LOG_LEVEL": "WARNING",
        }
    )
    django.setup()
    call_command("migrate", verbosity=0)
    return data_dir


def fresh_database() -> str:
    """Create an empty MariaDB/MySQL database, as RDS would serve."""
    import MySQLdb

    url = urlsplit(DATABASE_URL)
    name = url.path.strip("/")
    connection = MySQLdb.connect(
        host=url.hostname, port=url.port or 3306, user=url.username or "root",
        password=url.password or "",
    )  # fmt: skip
    with connection.cursor() as cursor:
        cursor.execute(f"DROP DATABASE IF EXISTS `{name}`")
        cursor.execute(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4")
    connection.close()
    return DATABASE_URL


def run(log: Path) -> dict[str, object]:
    from django.core.management import call_command

    from gallery.models import Photo
    from labeling.models import PhotoLabel
    from tests.factories import make_user

    call_command("setup_aws", stdout=io.StringIO())
    photos = twelve_megapixel_jpegs(PHOTOS + 2)
    owner = make_user(username=f"aws-bench-{uuid.uuid4().hex[:8]}")
    worker = start_worker(log)
    try:
        measure_latency(owner, photos[:2])  # warm the worker's connections
        latency = measure_latency(owner, photos[2:])
    finally:
        stop_worker(worker)
    keys = list(Photo.objects.values_list("original", flat=True))
    repeated = [keys[number % len(keys)] for number in range(NOTIFICATIONS)]
    # A worker that runs no tasks: the consumer has the process to itself.
    alone = measure_drain(log, repeated, "queued 1 photo", "-X", TASKS_QUEUE)
    purge_tasks()
    Photo.objects.update(status=Photo.Status.PENDING)
    PhotoLabel.objects.all().delete()
    labelling = measure_drain(log, keys, "Labels applied to photo")
    return {
        "machine": f"{os.cpu_count()} CPUs; moto, worker, MariaDB and bench share them",
        "moto_request_ms": moto_request_ms(),
        "worker": f"{POOL} x {CONCURRENCY}",
        "upload_to_labels": latency,
        "consumer_alone": {
            "notifications": alone["notifications"],
            "per_second": alone["consumer_per_second"],
        },
        "consumer_with_labelling": labelling,
    }


if __name__ == "__main__":
    main()
