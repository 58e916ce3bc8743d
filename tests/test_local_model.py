import io
import shutil
from pathlib import Path

import pytest
from PIL import Image

from labeling.labelers import DetectedLabel
from labeling.local_model import (
    ASSETS_DIR,
    CHECKSUM_FILE,
    MODEL_FILES,
    LocalModel,
    ModelIntegrityError,
    open_for_labelling,
)

PHOTOS = Path(__file__).parent / "photos"
EXIF_ORIENTATION = 0x0112


@pytest.fixture(scope="module", params=list(MODEL_FILES))
def model(request: pytest.FixtureRequest) -> LocalModel:
    return LocalModel(precision=request.param)


def open_photo(name: str) -> Image.Image:
    with (PHOTOS / name).open("rb") as stream:
        return open_for_labelling(stream)


def label(
    model: LocalModel, name: str, min_confidence: float = 50, max_labels: int = 20
) -> dict[str, DetectedLabel]:
    labels = model.label_image(open_photo(name), min_confidence, max_labels)
    return {label.name: label for label in labels}


def jpeg_bytes(image: Image.Image, **options: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=90, **options)
    return buffer.getvalue()


def test_cat_photo_is_labelled_cat_with_its_parents(model: LocalModel) -> None:
    labels = label(model, "chelsea.jpg")

    cat = labels["Cat"]
    assert cat.confidence > 80
    assert {"Mammal", "Animal"} <= set(cat.parents)
    assert cat.categories == ("Animals and Pets",)
    assert "Placental" not in labels and "Vertebrate" not in labels


def test_parent_is_at_least_as_confident_as_its_child(model: LocalModel) -> None:
    labels = label(model, "chelsea.jpg")

    assert labels["Animal"].confidence >= labels["Mammal"].confidence
    assert labels["Mammal"].confidence >= labels["Cat"].confidence
    assert labels["Animal"].confidence <= 100


def test_coffee_photo_is_labelled_a_drink_in_a_cup(model: LocalModel) -> None:
    labels = label(model, "coffee.jpg")

    assert labels["Coffee"].parents == ("Beverage",)
    assert labels["Coffee"].categories == ("Food and Beverage",)
    assert labels["Cup"].confidence > 50


def test_portrait_gets_person_and_face_with_a_box(model: LocalModel) -> None:
    labels = label(model, "astronaut.jpg")

    face, person = labels["Face"], labels["Person"]
    assert face.parents == ("Person",)
    assert person.parents == ()
    assert person.categories == ("Person Description",)
    assert face.confidence > 50
    (box,) = face.boxes
    assert box.left < 0.44 < box.left + box.width
    assert box.top < 0.23 < box.top + box.height
    assert box.width < 0.3 and box.height < 0.4
    assert person.boxes == face.boxes


def test_face_seen_from_the_side_in_greyscale_is_found(model: LocalModel) -> None:
    labels = label(model, "camera.jpg")

    (box,) = labels["Face"].boxes
    assert box.left < 0.45 < box.left + box.width
    assert box.top < 0.3 < box.top + box.height


@pytest.mark.parametrize("name", ["chelsea.jpg", "coffee.jpg", "rocket.jpg"])
def test_photo_without_faces_gets_no_person(model: LocalModel, name: str) -> None:
    image = open_photo(name)

    labels = model.label_image(image, min_confidence=50, max_labels=50)

    assert model.detect_faces(image) == []
    assert {"Person", "Face"}.isdisjoint(label.name for label in labels)


def test_labels_come_most_confident_first_up_to_the_limit(model: LocalModel) -> None:
    image = open_photo("chelsea.jpg")

    labels = model.label_image(image, min_confidence=0, max_labels=5)

    confidences = [label.confidence for label in labels]
    assert len(labels) == 5
    assert confidences == sorted(confidences, reverse=True)


def test_tight_label_limit_still_keeps_a_found_person(model: LocalModel) -> None:
    image = open_photo("camera.jpg")

    labels = model.label_image(image, min_confidence=50, max_labels=1)

    assert [label.name for label in labels] == ["Person"]


def test_batch_gives_the_same_labels_as_one_by_one(model: LocalModel) -> None:
    images = [open_photo(name) for name in ("chelsea.jpg", "astronaut.jpg")]

    batched = model.label_images(images, min_confidence=20, max_labels=10)

    for image, labels in zip(images, batched, strict=True):
        alone = model.label_image(image, min_confidence=20, max_labels=10)
        assert [label.name for label in labels] == [label.name for label in alone]
        for together, single in zip(labels, alone, strict=True):
            assert together.confidence == pytest.approx(single.confidence, abs=0.01)


def test_version_is_tied_to_the_precision_and_checksums() -> None:
    version = LocalModel(precision="float32").version
    name, _, checksum = version.partition("+")

    assert name == "efficientnet-lite0-onnx-2-float32"
    assert len(checksum) == 12
    assert LocalModel().version == f"efficientnet-lite0-onnx-2-int8+{checksum}"


@pytest.mark.parametrize("precision", list(MODEL_FILES))
def test_tampered_asset_is_refused(tmp_path: Path, precision: str) -> None:
    assets = shutil.copytree(ASSETS_DIR, tmp_path / "assets")
    _, face_detector = MODEL_FILES[precision]
    model_file = assets / face_detector
    content = bytearray(model_file.read_bytes())
    content[len(content) // 2] ^= 0xFF
    model_file.write_bytes(bytes(content))

    with pytest.raises(ModelIntegrityError, match=face_detector.replace(".", r"\.")):
        LocalModel(assets, precision=precision)


def test_unknown_precision_is_refused() -> None:
    with pytest.raises(ValueError, match="int8 or float32"):
        LocalModel(precision="float16")


def variants(name: str) -> list[Image.Image]:
    """Crops and a greyscale copy: views the 8-bit calibration never saw."""
    image = open_photo(name)
    width, height = image.size
    return [
        image.crop((0, 0, width * 2 // 3, height * 2 // 3)),
        image.crop((width // 3, height // 3, width, height)),
        image.convert("L").convert("RGB"),
    ]


@pytest.mark.parametrize("name", sorted(path.name for path in PHOTOS.glob("*.jpg")))
def test_eight_bit_model_sees_what_the_float_one_sees(name: str) -> None:
    float_model = LocalModel(precision="float32")
    int8_model = LocalModel(precision="int8")

    for image in variants(name):
        exact = float_model.label_image(image, min_confidence=0, max_labels=1000)
        quick = int8_model.label_image(image, min_confidence=0, max_labels=1000)

        # Unsure guesses (a rocket as 35% vehicle, 40% missile) may swap
        # places; whatever either model is fairly sure of, both must be.
        exact_scores = {label.name: label.confidence for label in exact}
        quick_scores = {label.name: label.confidence for label in quick}
        for label_name in exact_scores.keys() | quick_scores.keys():
            scores = exact_scores.get(label_name, 0), quick_scores.get(label_name, 0)
            if max(scores) >= 60:
                assert abs(scores[0] - scores[1]) < 10, (label_name, scores)


def test_missing_checksum_list_is_refused(tmp_path: Path) -> None:
    assets = shutil.copytree(ASSETS_DIR, tmp_path / "assets")
    (assets / CHECKSUM_FILE).unlink()

    with pytest.raises(ModelIntegrityError, match=CHECKSUM_FILE):
        LocalModel(assets)


def test_twelve_megapixel_jpeg_opens_at_reduced_size() -> None:
    photo = open_photo("chelsea.jpg").resize((4000, 3000), Image.Resampling.BICUBIC)
    content = jpeg_bytes(photo)

    image = open_for_labelling(io.BytesIO(content))

    assert image.mode == "RGB"
    assert image.size == (500, 375)


def test_exif_orientation_is_applied() -> None:
    upright = open_photo("chelsea.jpg")
    exif = Image.Exif()
    exif[EXIF_ORIENTATION] = 6  # stored turned left; viewers turn it right
    content = jpeg_bytes(upright.transpose(Image.Transpose.ROTATE_90), exif=exif)

    image = open_for_labelling(io.BytesIO(content))

    assert image.size == upright.size


def test_greyscale_photo_opens_as_rgb() -> None:
    image = open_photo("camera.jpg")

    assert image.mode == "RGB"
    assert image.size == (512, 512)
