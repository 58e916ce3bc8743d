from pathlib import Path

import pytest
from django.test import Client
from PIL import Image

from accounts.models import User
from gallery.models import Photo
from labeling import labelers
from labeling.labelers import DetectedLabel
from tests.factories import make_user

pytest_plugins = ["tests.worker", "tests.moto_server"]


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


class ScriptedLabeler:
    """A labeler that fails a set number of times, then answers."""

    source = "local"
    version = "scripted-1"

    def __init__(self, failures: list[Exception], labels: list[DetectedLabel]) -> None:
        self.failures = failures
        self.labels = labels
        self.calls = 0

    def label_photo(
        self, photo: Photo, image: Image.Image | None = None
    ) -> list[DetectedLabel]:
        self.calls += 1
        if self.failures:
            raise self.failures.pop(0)
        return self.labels


@pytest.fixture
def scripted(monkeypatch: pytest.MonkeyPatch):
    def install(failures: list[Exception], labels: list[DetectedLabel] | None = None):
        labeler = ScriptedLabeler(failures, labels or [DetectedLabel("Cat", 91.0)])
        monkeypatch.setitem(labelers.LABELERS, "scripted", lambda: labeler)
        monkeypatch.setattr("django.conf.settings.LABELER", "scripted")
        labelers.get_labeler.cache_clear()
        return labeler

    yield install
    labelers.get_labeler.cache_clear()
