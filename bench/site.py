"""Measure uploads under gunicorn and the gallery page at 1,000 and 10,000 photos.

Run with `python -m bench.site`. Everything listens on 127.0.0.1 and stops
by itself.
"""

import http.client
import os
import socket
import subprocess
import sys
import threading
import time
import uuid

from bench.common import (
    ROOT,
    isolated_site,
    peak_rss_mb,
    report,
    summary_ms,
    twelve_megapixel_jpegs,
)

UPLOADS = int(os.environ.get("BENCH_UPLOADS", "48"))
CLIENTS = int(os.environ.get("BENCH_CLIENTS", "4"))
GUNICORN_WORKERS = 2


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def start_gunicorn(port: int) -> subprocess.Popen[bytes]:
    command = [
        sys.executable, "-m", "gunicorn", "photosite.wsgi",
        "--bind", f"127.0.0.1:{port}", "--workers", str(GUNICORN_WORKERS),
        "--threads", "2", "--log-level", "warning",
    ]  # fmt: skip
    server = subprocess.Popen(command, cwd=ROOT, env=os.environ.copy())
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return server
        except OSError:
            time.sleep(0.2)
    server.kill()
    raise RuntimeError("gunicorn did not start")


def signed_in_cookies(port: int) -> tuple[str, str]:
    from django.test import Client

    from tests.factories import make_user

    client = Client()
    client.force_login(make_user(username=f"bench-{uuid.uuid4().hex[:8]}"))
    session = client.cookies["sessionid"].value
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    connection.request("GET", "/upload/", headers={"Cookie": f"sessionid={session}"})
    response = connection.getresponse()
    response.read()
    token = response.getheader("Set-Cookie", "").split("csrftoken=")[1].split(";")[0]
    return session, token


def multipart(name: str, content: bytes) -> tuple[bytes, str]:
    boundary = uuid.uuid4().hex
    head = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="photos"; '
        f'filename="{name}"\r\nContent-Type: image/jpeg\r\n\r\n'
    ).encode()
    body = head + content + f"\r\n--{boundary}--\r\n".encode()
    return body, f"multipart/form-data; boundary={boundary}"


def upload_all(port: int, photos: list[bytes], session: str, token: str) -> dict:
    latencies: list[float] = []
    statuses: list[int] = []
    pending = list(enumerate(photos))
    lock = threading.Lock()

    def client() -> None:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        while True:
            with lock:
                if not pending:
                    return
                number, content = pending.pop()
            body, content_type = multipart(f"bench-{number}.jpg", content)
            headers = {
                "Content-Type": content_type,
                "Cookie": f"sessionid={session}; csrftoken={token}",
                "X-CSRFToken": token,
                "Referer": f"http://127.0.0.1:{port}/upload/",
                "Accept": "application/json",
            }
            started = time.perf_counter()
            connection.request("POST", "/upload/", body=body, headers=headers)
            response = connection.getresponse()
            response.read()
            with lock:
                latencies.append(time.perf_counter() - started)
                statuses.append(response.status)

    threads = [threading.Thread(target=client) for _ in range(CLIENTS)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    return {
        "uploads": len(photos),
        "concurrent_clients": CLIENTS,
        "mean_photo_mb": round(sum(map(len, photos)) / len(photos) / 1e6, 2),
        "statuses": {str(code): statuses.count(code) for code in set(statuses)},
        "uploads_per_second": round(len(photos) / elapsed, 1),
        **summary_ms(latencies),
    }


def measure_uploads() -> dict:
    photos = twelve_megapixel_jpegs(UPLOADS)
    port = free_port()
    server = start_gunicorn(port)
    try:
        session, token = signed_in_cookies(port)
        figures = upload_all(port, photos, session, token)
        workers = subprocess.run(
            ["pgrep", "-P", str(server.pid)], capture_output=True, text=True
        ).stdout.split()
        figures["peak_rss_mb_per_web_worker"] = [
            round(peak_rss_mb(int(pid)), 1) for pid in workers
        ]
    finally:
        server.terminate()
        server.wait(timeout=30)
    return figures


def seed_gallery(owner: object, count: int) -> None:
    from gallery.models import Photo
    from labeling.labelers import DetectedLabel
    from labeling.models import PhotoLabel
    from labeling.services import ensure_labels

    label_ids = ensure_labels(
        [DetectedLabel(name, 90.0) for name in ("Cat", "Dog", "Car")]
    )
    have = Photo.objects.filter(owner=owner).count()
    photos = [
        Photo(
            owner=owner,
            original=f"photos/{owner.pk}/{uuid.uuid4().hex}.jpg",  # type: ignore[attr-defined]
            original_name=f"seed-{number}.jpg",
            content_type="image/jpeg",
            size_bytes=1,
            sha256=uuid.uuid4().hex * 2,
            width=4000,
            height=3000,
            status=Photo.Status.LABELLED,
            description=f"seeded photo {number}",
        )
        for number in range(have, count)
    ]
    created = Photo.objects.bulk_create(photos, batch_size=500)
    labels = [
        PhotoLabel(
            photo=photo, label_id=label_ids[name], confidence=90.0, source="local"
        )
        for photo in created
        for name in (("Cat", "Dog") if photo.pk % 2 else ("Car",))
    ]
    PhotoLabel.objects.bulk_create(labels, batch_size=1000)


def measure_gallery(client: object, query: dict[str, str]) -> dict:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    times = []
    for _ in range(15):
        with CaptureQueriesContext(connection) as queries:
            started = time.perf_counter()
            response = client.get("/", query)  # type: ignore[attr-defined]
            times.append(time.perf_counter() - started)
        assert response.status_code == 200
    return {"queries": len(queries), **summary_ms(times)}


def measure_gallery_sizes() -> dict:
    from django.test import Client

    from tests.factories import make_user

    owner = make_user(username="gallery-bench")
    client = Client()
    client.force_login(owner)
    figures = {}
    for count in (1_000, 10_000):
        seed_gallery(owner, count)
        figures[f"{count}_photos"] = {
            "first_page": measure_gallery(client, {}),
            "page_10": measure_gallery(client, {"page": "10"}),
            "search_text": measure_gallery(client, {"q": "seeded 7"}),
            "label_filter": measure_gallery(client, {"label": "Cat"}),
        }
    return figures


def main() -> None:
    isolated_site("site")
    report("uploads", measure_uploads())
    report("gallery", measure_gallery_sizes())


if __name__ == "__main__":
    main()
