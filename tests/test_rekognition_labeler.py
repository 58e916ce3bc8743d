from collections.abc import Iterator

import pytest
from botocore.stub import Stubber

from gallery.models import Photo
from labeling import labelers
from labeling.labelers import LabelerError, LabelerUnavailable, RekognitionLabeler
from labeling.models import PhotoLabel
from labeling.tasks import process_photo
from tests.factories import image_bytes, make_photo

BUCKET = "photosite-photos"

CAT = {
    "Name": "Cat",
    "Confidence": 97.5,
    "Parents": [{"Name": "Mammal"}, {"Name": "Animal"}, {"Name": "Pet"}],
    "Categories": [{"Name": "Animals and Pets"}],
    "Aliases": [{"Name": "Kitten"}],
    "Instances": [
        {
            "BoundingBox": {"Width": 0.5, "Height": 0.6, "Left": 0.1, "Top": 0.2},
            "Confidence": 96.25,
        },
        {
            "BoundingBox": {"Width": 0.2, "Height": 0.3, "Left": 0.7, "Top": 0.1},
            "Confidence": 88.0,
        },
    ],
}
INDOORS = {
    "Name": "Indoors",
    "Confidence": 71.0,
    "Parents": [],
    "Categories": [{"Name": "Buildings and Architecture"}],
    "Instances": [],
}


@pytest.fixture
def rekognition(settings) -> Iterator[tuple[RekognitionLabeler, Stubber]]:
    """Return the labeler the worker would use, its client stubbed."""
    settings.PHOTOS_BUCKET = BUCKET
    settings.AWS_REGION = "eu-west-1"
    settings.AWS_ENDPOINT_URL = ""
    settings.LABELER = "rekognition"
    settings.LABEL_MIN_CONFIDENCE = 65.0
    settings.LABEL_MAX_LABELS = 7
    labelers.get_labeler.cache_clear()
    labeler = labelers.get_labeler("")
    assert isinstance(labeler, RekognitionLabeler)
    with Stubber(labeler.client) as stubber:
        yield labeler, stubber
        stubber.assert_no_pending_responses()
    labelers.get_labeler.cache_clear()


def answer(stubber: Stubber, photo: Photo, key: str = "") -> None:
    stubber.add_response(
        "detect_labels",
        {"Labels": [CAT, INDOORS], "LabelModelVersion": "3.0"},
        {
            "Image": {
                "S3Object": {"Bucket": BUCKET, "Name": key or photo.original.name}
            },
            "MinConfidence": 65.0,
            "MaxLabels": 7,
        },
    )


def test_it_asks_about_the_s3_object_with_the_settings_limits(db, rekognition) -> None:
    labeler, stubber = rekognition
    photo = make_photo()
    answer(stubber, photo)

    labels = labeler.label_photo(photo)

    assert [label.name for label in labels] == ["Cat", "Indoors"]
    assert labeler.version == "3.0"


def test_it_keeps_parents_categories_and_boxes(db, rekognition) -> None:
    labeler, stubber = rekognition
    photo = make_photo()
    answer(stubber, photo)

    cat = labeler.label_photo(photo)[0]

    assert cat.parents == ("Mammal", "Animal", "Pet")
    assert cat.categories == ("Animals and Pets",)
    assert [(box.left, box.top, box.width, box.height) for box in cat.boxes] == [
        (0.1, 0.2, 0.5, 0.6),
        (0.7, 0.1, 0.2, 0.3),
    ]
    assert cat.boxes[0].confidence == 96.25


def test_the_worker_stores_rekognition_labels_with_boxes(db, rekognition) -> None:
    _, stubber = rekognition
    photo = make_photo()
    answer(stubber, photo)

    process_photo(photo.pk)

    photo.refresh_from_db()
    assert photo.status == Photo.Status.LABELLED
    cat = PhotoLabel.objects.get(photo=photo, label__name="Cat")
    assert cat.source == "rekognition"
    assert cat.model_version == "3.0"
    assert cat.boxes[1] == {
        "left": 0.7,
        "top": 0.1,
        "width": 0.2,
        "height": 0.3,
        "confidence": 88.0,
    }
    assert set(cat.label.parents.values_list("name", flat=True)) == {
        "Mammal",
        "Animal",
        "Pet",
    }
    assert cat.label.categories == ["Animals and Pets"]


def test_formats_rekognition_cannot_read_are_sent_as_their_preview(
    db, rekognition
) -> None:
    labeler, stubber = rekognition
    photo = make_photo(content=image_bytes("WEBP"), name="photo.webp")
    stem = photo.original.name.rsplit("/", 1)[1].split(".")[0]
    preview = f"thumbnails/{photo.owner_id}/{stem}-1600.jpg"
    answer(stubber, photo, key=preview)

    labels = labeler.label_photo(photo)

    assert labels[0].name == "Cat"
    assert Photo.objects.get(pk=photo.pk).preview.name == preview


@pytest.mark.parametrize(
    "code", ["ThrottlingException", "ProvisionedThroughputExceededException"]
)
def test_throttling_is_worth_retrying(db, rekognition, code: str) -> None:
    labeler, stubber = rekognition
    photo = make_photo()
    stubber.add_client_error("detect_labels", code, "Rate exceeded", 400)

    with pytest.raises(LabelerUnavailable, match=code):
        labeler.label_photo(photo)


def test_throttling_until_the_retries_run_out_fails_the_photo(
    db, rekognition, settings
) -> None:
    settings.LABEL_TASK_MAX_RETRIES = 2
    _, stubber = rekognition
    photo = make_photo()
    for _ in range(3):
        stubber.add_client_error("detect_labels", "ThrottlingException", "Slow", 400)

    process_photo.delay(photo.pk)

    photo.refresh_from_db()
    assert photo.status == Photo.Status.FAILED
    assert "busy" in photo.failure_reason
    assert "gave up after 3 attempts" in photo.failure_reason


@pytest.mark.parametrize(
    ("code", "reason"),
    [
        ("InvalidImageFormatException", "cannot read this image's format"),
        ("ImageTooLargeException", "too large"),
        ("InvalidS3ObjectException", "could not read the photo from S3"),
        ("AccessDeniedException", "not allowed to call Rekognition"),
        ("InvalidParameterException", "(InvalidParameterException)"),
    ],
)
def test_refusals_fail_the_photo_with_a_readable_reason(
    db, rekognition, code: str, reason: str
) -> None:
    _, stubber = rekognition
    photo = make_photo()
    stubber.add_client_error("detect_labels", code, "Request has invalid image", 400)

    process_photo(photo.pk)

    photo.refresh_from_db()
    assert photo.status == Photo.Status.FAILED
    assert reason in photo.failure_reason


def test_without_a_bucket_it_refuses_rather_than_calling_aws(
    db, rekognition, settings
) -> None:
    labeler, _ = rekognition
    settings.PHOTOS_BUCKET = ""
    photo = make_photo()

    with pytest.raises(LabelerError, match="S3"):
        labeler.label_photo(photo)
