from pathlib import Path

from django.test import Client
from django.urls import reverse

from gallery.models import Photo
from labeling import labelers, services
from labeling.labelers import DetectedLabel, LabelerError, LabelerUnavailable
from labeling.models import Label, PhotoLabel
from labeling.tasks import process_photo
from tests.factories import make_photo, make_user

PHOTOS = Path(__file__).parent / "photos"


def label_names(photo: Photo) -> set[str]:
    return set(photo.labels.values_list("label__name", flat=True))


def test_upload_is_labelled_once_it_commits(
    signed_in: Client, django_capture_on_commit_callbacks
) -> None:
    with (
        (PHOTOS / "chelsea.jpg").open("rb") as file,
        django_capture_on_commit_callbacks(execute=True),
    ):
        signed_in.post(reverse("gallery:upload_photos"), {"photos": [file]})

    photo = Photo.objects.get()
    assert photo.status == Photo.Status.LABELLED
    assert {"Cat", "Mammal", "Animal"} <= label_names(photo)
    assert photo.thumbnail
    cat = photo.labels.get(label__name="Cat")
    assert cat.source == "local"
    assert cat.model_version.startswith("efficientnet-lite0")
    assert set(cat.label.parents.values_list("name", flat=True)) >= {"Mammal"}


def test_running_the_task_twice_leaves_the_same_labels(db: None) -> None:
    photo = make_photo(content=(PHOTOS / "chelsea.jpg").read_bytes())

    process_photo(photo.pk)
    first = sorted(photo.labels.values_list("label__name", "confidence"))
    process_photo(photo.pk)

    assert sorted(photo.labels.values_list("label__name", "confidence")) == first
    assert photo.labels.count() == len(first)


def test_photo_whose_file_is_gone_fails_with_a_reason(db: None) -> None:
    photo = make_photo(content=(PHOTOS / "chelsea.jpg").read_bytes())
    photo.original.storage.delete(photo.original.name)

    process_photo(photo.pk)

    photo.refresh_from_db()
    assert photo.status == Photo.Status.FAILED
    assert photo.failure_reason == "The photo's file is missing from storage."


def test_relabelling_remakes_a_missing_thumbnail(db: None) -> None:
    photo = make_photo(content=(PHOTOS / "chelsea.jpg").read_bytes())
    process_photo(photo.pk)
    photo.refresh_from_db()
    photo.thumbnail.storage.delete(photo.thumbnail.name)

    process_photo(photo.pk)

    photo.refresh_from_db()
    assert photo.status == Photo.Status.LABELLED
    assert photo.thumbnail.storage.exists(photo.thumbnail.name)
    assert "Cat" in label_names(photo)


def test_reviewed_labels_survive_relabelling(db: None, scripted) -> None:
    photo = make_photo()
    scripted([], [DetectedLabel("Cat", 91.0), DetectedLabel("Dog", 60.0)])
    process_photo(photo.pk)
    photo.labels.filter(label__name="Dog").update(review_state="rejected")
    photo.labels.filter(label__name="Cat").update(review_state="accepted")
    scripted([], [DetectedLabel("Tiger", 70.0)])

    process_photo(photo.pk)

    states = dict(photo.labels.values_list("label__name", "review_state"))
    assert states == {"Cat": "accepted", "Dog": "rejected", "Tiger": "automatic"}


def test_relabelling_drops_a_label_that_is_now_only_a_parent(
    db: None, scripted
) -> None:
    photo = make_photo()
    cat = DetectedLabel("Cat", 91.0, parents=("Animal",))
    scripted([], [cat, DetectedLabel("Animal", 93.0)])
    process_photo(photo.pk)
    scripted([], [DetectedLabel("Dog", 80.0, parents=("Animal",))])

    process_photo(photo.pk)

    assert label_names(photo) == {"Dog"}
    assert Label.objects.filter(name="Animal").exists()


def test_transient_failure_is_retried_then_succeeds(db: None, scripted) -> None:
    photo = make_photo()
    labeler = scripted([LabelerUnavailable("Throttled"), OSError("disk hiccup")])

    process_photo.delay(photo.pk)

    photo.refresh_from_db()
    assert labeler.calls == 3
    assert photo.status == Photo.Status.LABELLED


def test_lasting_transient_failure_marks_photo_failed(
    db: None, scripted, settings: object
) -> None:
    settings.LABEL_TASK_MAX_RETRIES = 2  # type: ignore[attr-defined]
    photo = make_photo()
    labeler = scripted([LabelerUnavailable("The labelling service is busy")] * 5)

    process_photo.delay(photo.pk)

    photo.refresh_from_db()
    assert labeler.calls == 3
    assert photo.status == Photo.Status.FAILED
    assert photo.failure_reason == (
        "The labelling service is busy (gave up after 3 attempts)"
    )


def test_permanent_failure_marks_photo_failed_at_once(db: None, scripted) -> None:
    photo = make_photo()
    labeler = scripted([LabelerError("This image format cannot be labelled.")])

    process_photo.delay(photo.pk)

    photo.refresh_from_db()
    assert labeler.calls == 1
    assert photo.status == Photo.Status.FAILED
    assert photo.failure_reason == "This image format cannot be labelled."


def test_task_for_a_deleted_photo_does_nothing(db: None) -> None:
    process_photo(123456)

    assert not PhotoLabel.objects.exists()


def test_labels_keep_parents_and_boxes(db: None) -> None:
    photo = make_photo()
    box = labelers.Box(0.1, 0.2, 0.3, 0.4, 88.0)

    services.apply_labels(
        photo,
        "rekognition",
        "3.0",
        [DetectedLabel("Face", 88.0, parents=("Person",), boxes=(box,))],
    )

    face = photo.labels.get()
    assert face.boxes == [
        {"left": 0.1, "top": 0.2, "width": 0.3, "height": 0.4, "confidence": 88.0}
    ]
    assert list(
        Label.objects.get(name="Face").parents.values_list("name", flat=True)
    ) == ["Person"]


def test_one_source_cannot_add_a_label_twice(db: None) -> None:
    photo = make_photo()

    services.apply_labels(
        photo, "local", "1", [DetectedLabel("Cat", 80.0), DetectedLabel("Cat", 90.0)]
    )
    services.apply_labels(photo, "lambda", "1", [DetectedLabel("Cat", 70.0)])

    assert sorted(photo.labels.values_list("source", "confidence")) == [
        ("lambda", 70.0),
        ("local", 90.0),
    ]


def test_rejected_labels_are_hidden_on_the_photo_page(client: Client, db: None) -> None:
    owner = make_user()
    photo = make_photo(owner)
    services.apply_labels(photo, "local", "1", [DetectedLabel("Spaceship", 80.0)])
    photo.labels.update(review_state="rejected")
    client.force_login(owner)

    response = client.get(reverse("gallery:photo_detail", args=[photo.pk]))

    assert b"Spaceship" not in response.content


def test_unexpected_error_marks_photo_failed(db: None, scripted) -> None:
    photo = make_photo()
    scripted([ZeroDivisionError("bug")])

    process_photo.delay(photo.pk)

    photo.refresh_from_db()
    assert photo.status == Photo.Status.FAILED
    assert photo.failure_reason == "Labelling failed unexpectedly."
