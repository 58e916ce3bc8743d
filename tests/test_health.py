import os
import subprocess
import sys

from django.conf import settings
from django.test import Client

CHECK_HEALTH = """
import django
django.setup()
from django.test import Client
print(Client().get("/healthz").status_code)
"""


def run_site_code(code: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", code],
        cwd=settings.BASE_DIR,
        env={**os.environ, "DJANGO_SETTINGS_MODULE": "photosite.settings", **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_health_answers_200_when_database_answers(client: Client, db: None) -> None:
    response = client.get("/healthz")

    assert response.status_code == 200
    assert response.json()["database"] == "up"


def test_health_answers_503_when_database_is_down() -> None:
    # Nothing listens on port 9 of loopback, so the connection is refused.
    result = run_site_code(
        CHECK_HEALTH,
        DATABASE_URL="mysql://photosite@127.0.0.1:9/photosite",
        ALLOWED_HOSTS="testserver",
    )

    assert result.stdout.strip() == "503", result.stderr
