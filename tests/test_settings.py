import subprocess
import sys

import pytest
from django.conf import settings

from tests.test_health import run_site_code

PRODUCTION = {
    "DEBUG": "false",
    "SECRET_KEY": "a-production-secret-with-enough-length-and-variety-0123456789",
    "ALLOWED_HOSTS": "photos.example.com",
    "SECURE_SSL_REDIRECT": "true",
    "SECURE_HSTS_PRELOAD": "true",
}


def test_deploy_check_reports_nothing_with_production_settings() -> None:
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "DEBUG"],
        cwd=settings.BASE_DIR,
        env={**PRODUCTION, "PATH": "/usr/bin:/bin", "DATA_DIR": "/tmp/photosite-check"},
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_site_refuses_to_start_without_secret_key_when_not_debugging() -> None:
    result = run_site_code(
        "import django; django.setup()", SECRET_KEY="", DEBUG="false"
    )

    assert result.returncode != 0
    assert "Set SECRET_KEY" in result.stderr


@pytest.mark.parametrize("value", ["maybe", "2"])
def test_bad_boolean_setting_is_named(value: str) -> None:
    result = run_site_code("import django; django.setup()", DEBUG=value)

    assert "DEBUG must be true or false" in result.stderr


def test_unknown_model_precision_is_named() -> None:
    result = run_site_code(
        "import django; django.setup()", LABEL_MODEL_PRECISION="float16"
    )

    assert result.returncode != 0
    assert "LABEL_MODEL_PRECISION must be int8 or float32" in result.stderr


def test_sign_in_limit_below_one_is_refused() -> None:
    result = run_site_code("import django; django.setup()", SIGN_IN_MAX_FAILURES="0")

    assert result.returncode != 0
    assert "SIGN_IN_MAX_FAILURES and its window must be 1 or more" in result.stderr
