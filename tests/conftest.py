from pathlib import Path

import pytest
from django.test import Client

from accounts.models import User
from tests.factories import make_user


@pytest.fixture(autouse=True)
def media_folder(settings: object, tmp_path: Path) -> Path:
    """Keep every test's stored files in a folder of its own."""
    folder = tmp_path / "media"
    settings.STORAGES = {  # type: ignore[attr-defined]
        "staticfiles": {
            "BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"
        },
        "default": {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"location": folder, "allow_overwrite": True},
        },
    }
    return folder


@pytest.fixture
def user(db: None) -> User:
    return make_user()


@pytest.fixture
def signed_in(client: Client, user: User) -> Client:
    client.force_login(user)
    return client


def stored_files(folder: Path) -> list[Path]:
    return sorted(path for path in folder.rglob("*") if path.is_file())
