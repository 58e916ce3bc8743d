from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from gallery.models import Photo
from labeling import services
from labeling.labelers import DetectedLabel, LabelerError
from tests.factories import make_photo, make_user


def reprocess(*args: str) -> str:
    output = StringIO()
    call_command("reprocess_photos", *args, stdout=output, stderr=StringIO())
    return output.getvalue()


def test_missing_relabels_only_photos_never_labelled(db: None, scripted) -> None:
    labeler = scripted([])
    never = make_photo()
    done = make_photo()
    services.apply_labels(done, "local", "1", [DetectedLabel("Dog", 80.0)])

    output = reprocess("--missing", "--inline")

    assert labeler.calls == 1
    never.refresh_from_db()
    assert never.status == Photo.Status.LABELLED
    assert "Labelled 1 photo(s)." in output


def test_failed_relabels_failed_photos(db: None, scripted) -> None:
    scripted([])
    failed = make_photo(status=Photo.Status.FAILED, failure_reason="Throttled")

    reprocess("--failed", "--inline")

    failed.refresh_from_db()
    assert failed.status == Photo.Status.LABELLED
    assert failed.failure_reason == ""


def test_all_since_and_user_narrow_the_selection(db: None, scripted) -> None:
    labeler = scripted([])
    owner = make_user(username="ann")
    make_photo(owner, uploaded_at=timezone.now() - timezone.timedelta(days=30))
    make_photo(owner)
    make_photo()
    since = (timezone.now() - timezone.timedelta(days=1)).date().isoformat()

    output = reprocess("--all", "--since", since, "--user", "ann", "--inline")

    assert labeler.calls == 1
    assert "Labelled 1 photo(s)." in output


def test_dry_run_changes_nothing(db: None, scripted) -> None:
    labeler = scripted([])
    make_photo()
    make_photo()

    output = reprocess("--all", "--dry-run")

    assert output.strip() == "Would reprocess 2 photo(s)."
    assert labeler.calls == 0


def test_queueing_runs_through_the_task(db: None, scripted) -> None:
    labeler = scripted([])
    photo = make_photo()

    output = reprocess("--missing")

    photo.refresh_from_db()
    assert labeler.calls == 1
    assert photo.status == Photo.Status.LABELLED
    assert "Queued 1 photo(s)." in output


def test_inline_failures_are_counted(db: None, scripted) -> None:
    scripted([LabelerError("Unreadable.")])
    make_photo()

    output = reprocess("--all", "--inline")

    assert "Labelled 0 photo(s), 1 failed." in output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ([], "Choose photos to reprocess"),
        (["--all", "--user", "nobody"], "No user with username or id 'nobody'"),
        (["--all", "--since", "last week"], "is not a date"),
        (["--all", "--labeler", "crystal-ball"], "invalid choice"),
    ],
)
def test_bad_arguments_are_explained(db: None, args: list[str], message: str) -> None:
    with pytest.raises(CommandError, match=message):
        reprocess(*args)
