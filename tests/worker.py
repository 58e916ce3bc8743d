"""Run a real Celery worker process against the embedded broker in tests."""

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection

from photosite.celery import app as celery_app


def database_url() -> str:
    details = connection.settings_dict
    if details["ENGINE"].endswith("sqlite3"):
        return f"sqlite:///{details['NAME']}"
    password = f":{details['PASSWORD']}" if details["PASSWORD"] else ""
    return (
        f"mysql://{details['USER']}{password}@{details['HOST'] or '127.0.0.1'}:"
        f"{details['PORT'] or 3306}/{details['NAME']}"
    )


@pytest.fixture(scope="session")
def embedded_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Point this process's Celery app at a broker folder for the session."""
    broker = tmp_path_factory.mktemp("broker")
    options = {
        "data_folder_in": str(broker / "queue"),
        "data_folder_out": str(broker / "queue"),
        "processed_folder": str(broker / "processed"),
        "control_folder": str(broker / "control"),
        "store_processed": False,
        "polling_interval": 0.1,
    }
    for folder in ("queue", "processed", "control"):
        (broker / folder).mkdir()
    celery_app.conf.update(
        broker_url="filesystem://localhost/", broker_transport_options=options
    )
    # Connections made before this point (an eager retry makes one) still
    # write to the default folder; drop them so new ones read the options.
    celery_app.close()
    celery_app.amqp._producer_pool = None
    yield broker


@pytest.fixture
def embedded_worker(
    transactional_db: None, tmp_path: Path, media_folder: Path, embedded_broker: Path
) -> Iterator[subprocess.Popen[bytes]]:
    """Start `celery worker` on the broker folder shared with this process."""
    env = {
        **os.environ,
        "DATA_DIR": str(tmp_path),
        "BROKER_DIR": str(embedded_broker),
        "DATABASE_URL": database_url(),
        "CELERY_TASK_ALWAYS_EAGER": "false",
        "CELERY_BROKER_URL": "filesystem://localhost/",
    }
    command = [sys.executable, "-m", "celery", "-A", "photosite", "worker"]
    options = ["--pool=solo", "--loglevel=INFO", "--without-mingle", "--without-gossip"]
    celery_app.conf.task_always_eager = False
    worker = subprocess.Popen(command + options, cwd=settings.BASE_DIR, env=env)
    yield worker
    celery_app.conf.task_always_eager = True
    worker.terminate()
    worker.wait(timeout=30)


def wait_for(condition, timeout: float = 60.0, interval: float = 0.2) -> None:
    """Poll until condition() is true; fail the test after timeout seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(interval)
    raise AssertionError(f"Still waiting after {timeout} s")
