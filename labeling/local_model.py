"""Label photos on the CPU with bundled ONNX models, the way Rekognition does."""

from __future__ import annotations

import functools
import hashlib
import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import numpy as np
import onnxruntime
from PIL import Image, ImageOps

from labeling.labelers import Box, DetectedLabel

logger = logging.getLogger(__name__)

ASSETS_DIR = Path(__file__).resolve().parent / "assets"
TAXONOMY_FILE = "imagenet_labels.json"
CHECKSUM_FILE = "SHA256SUMS"
# The classifier and face detector for each precision. The 8-bit copies are
# calibrated on the float ones (scripts/export_local_model.py) and run about
# twice as fast on CPUs with 8-bit dot products (AVX-512 VNNI, AVX-VNNI).
MODEL_FILES = {
    "int8": ("efficientnet_lite0.int8.onnx", "centerface.int8.onnx"),
    "float32": ("efficientnet_lite0.onnx", "centerface.onnx"),
}
MODEL_VERSION = "efficientnet-lite0-onnx-2"

CLASSIFIER_SIZE = 224
# EfficientNet's evaluation crop: the central 224/256 of the shorter side.
CLASSIFIER_CROP = 224 / 256
CLASSIFIER_BATCH = 8

# At 320 CenterFace finds faces down to about 4% of the photo's width; 480
# reaches about 2.5% but takes twice as long, and 640 1.6% at four times.
FACE_DETECTOR_SIDE = 320
FACE_THRESHOLD = 0.5
FACE_OVERLAP = 0.3
FACE_STRIDE = 4
PERSON_CATEGORY = "Person Description"

# JPEG's DCT scaling decodes a 12 MP photo at 1/8 size when this is asked
# for, still larger than either model's input, and about 8 times faster.
DRAFT_SIZE = (FACE_DETECTOR_SIDE, FACE_DETECTOR_SIDE)
# Other formats cannot decode at reduced size; shrink them once here so that
# each model's resize starts from a small image.
MAX_SIDE = 4 * FACE_DETECTOR_SIDE


class ModelIntegrityError(Exception):
    """An asset is missing or does not match its recorded sha256."""


def open_for_labelling(fileobj: IO[bytes]) -> Image.Image:
    """Open a photo small, upright and in RGB, ready for LocalModel."""
    stored = Image.open(fileobj)
    stored.draft("RGB", DRAFT_SIZE)
    image = ImageOps.exif_transpose(stored)
    if max(image.size) > MAX_SIDE:
        image.thumbnail((MAX_SIDE, MAX_SIDE), Image.Resampling.BILINEAR)
    return image.convert("RGB")


def parse_checksums(listing: str) -> dict[str, str]:
    """Map file names to digests in sha256sum's output format."""
    checksums = {}
    for line in listing.splitlines():
        digest, _, name = line.strip().partition(" ")
        checksums[name.strip().lstrip("*")] = digest
    return checksums


def verify_assets(assets_dir: Path, names: Sequence[str]) -> dict[str, bytes]:
    """Read the named assets and check each against SHA256SUMS."""
    checksum_path = assets_dir / CHECKSUM_FILE
    try:
        listing = checksum_path.read_text(encoding="ascii")
    except (OSError, UnicodeDecodeError) as error:
        raise ModelIntegrityError(f"Cannot read {checksum_path}: {error}") from error
    expected = parse_checksums(listing)
    contents = {CHECKSUM_FILE: listing.encode("ascii")}
    for name in names:
        if name not in expected:
            raise ModelIntegrityError(f"{checksum_path} has no checksum for {name}")
        try:
            data = (assets_dir / name).read_bytes()
        except OSError as error:
            raise ModelIntegrityError(f"Cannot read {name}: {error}") from error
        actual = hashlib.sha256(data).hexdigest()
        if actual != expected[name]:
            raise ModelIntegrityError(
                f"{assets_dir / name} has sha256 {actual}, "
                f"but {CHECKSUM_FILE} expects {expected[name]}"
            )
        contents[name] = data
    return contents


def create_session(model: bytes, threads: int) -> onnxruntime.InferenceSession:
    """Load one ONNX model for CPU inference."""
    options = onnxruntime.SessionOptions()
    options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.execution_mode = onnxruntime.ExecutionMode.ORT_SEQUENTIAL
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    # Spinning threads would burn a core between photos, which web workers
    # and Celery sharing a small machine cannot spare.
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.log_severity_level = 3
    return onnxruntime.InferenceSession(
        model, options, providers=["CPUExecutionProvider"]
    )


@dataclass(frozen=True)
class Taxonomy:
    """Readable labels, each the sum of some ImageNet classes' probabilities."""

    names: tuple[str, ...]
    parents: tuple[tuple[str, ...], ...]
    categories: tuple[tuple[str, ...], ...]
    # Each label's classes, one label after another, and where each starts.
    classes: np.ndarray
    starts: np.ndarray

    @classmethod
    def from_json(cls, data: bytes) -> Taxonomy:
        """Read the exported label list; every label has at least one class."""
        labels = json.loads(data)["labels"]
        if not all(label["classes"] for label in labels):
            raise ModelIntegrityError("A label in the taxonomy has no classes")
        sizes = [len(label["classes"]) for label in labels]
        return cls(
            names=tuple(label["name"] for label in labels),
            parents=tuple(tuple(label["parents"]) for label in labels),
            categories=tuple(tuple(label["categories"]) for label in labels),
            classes=np.concatenate([label["classes"] for label in labels]),
            starts=np.cumsum([0, *sizes[:-1]]),
        )

    def roll_up(self, probabilities: np.ndarray) -> np.ndarray:
        """Sum class probabilities into label scores, photos by labels."""
        # A matrix product would do the same through BLAS, whose idle threads
        # spin for a while after every call and cost the worker a whole core.
        scores: np.ndarray = np.add.reduceat(
            probabilities[:, self.classes], self.starts, axis=1
        )
        return scores

    def labels_for(
        self, scores: np.ndarray, min_confidence: float
    ) -> list[DetectedLabel]:
        """Turn one photo's label scores (percent) into DetectedLabels."""
        return [
            DetectedLabel(
                name=self.names[column],
                confidence=round(min(float(scores[column]), 100.0), 4),
                parents=self.parents[column],
                categories=self.categories[column],
            )
            for column in np.flatnonzero(scores >= min_confidence)
        ]


def classifier_input(image: Image.Image) -> np.ndarray:
    """Centre-crop and scale a photo the way EfficientNet-Lite was trained."""
    side = min(image.size) * CLASSIFIER_CROP
    left = (image.width - side) / 2
    top = (image.height - side) / 2
    resized = image.resize(
        (CLASSIFIER_SIZE, CLASSIFIER_SIZE),
        Image.Resampling.BICUBIC,
        box=(left, top, left + side, top + side),
    )
    pixels = (np.asarray(resized, dtype=np.float32) - 127.0) / 128.0
    return pixels.transpose(2, 0, 1)


def face_detector_input(image: Image.Image) -> np.ndarray:
    """Scale a photo so its longer side is about 320, in multiples of 32."""
    scale = FACE_DETECTOR_SIDE / max(image.size)
    width = max(32, round(image.width * scale / 32) * 32)
    height = max(32, round(image.height * scale / 32) * 32)
    resized = image.resize((width, height), Image.Resampling.BILINEAR)
    pixels = np.asarray(resized, dtype=np.float32)
    return pixels.transpose(2, 0, 1)[np.newaxis]


def softmax(logits: np.ndarray) -> np.ndarray:
    """Turn a batch of logits into probabilities."""
    exponents = np.exp(logits - logits.max(axis=1, keepdims=True))
    probabilities: np.ndarray = exponents / exponents.sum(axis=1, keepdims=True)
    return probabilities


def suppress_overlaps(corners: np.ndarray, scores: np.ndarray) -> list[int]:
    """Keep the best of each group of overlapping boxes (x1, y1, x2, y2)."""
    areas = (corners[:, 2] - corners[:, 0]) * (corners[:, 3] - corners[:, 1])
    order = list(np.argsort(-scores))
    kept = []
    while order:
        best, order = order[0], order[1:]
        kept.append(int(best))
        if not order:
            break
        rest = corners[order]
        top_left = np.maximum(corners[best, :2], rest[:, :2])
        bottom_right = np.minimum(corners[best, 2:], rest[:, 2:])
        overlap = np.clip(bottom_right - top_left, 0, None).prod(axis=1)
        # Boxes squeezed flat against the photo's edge have no area at all.
        union = np.maximum(areas[best] + areas[order] - overlap, 1e-9)
        order = [
            i for i, o in zip(order, overlap / union, strict=True) if o < FACE_OVERLAP
        ]
    return kept


def decode_faces(outputs: Sequence[np.ndarray], width: int, height: int) -> list[Box]:
    """Turn CenterFace's heatmap, sizes and offsets into face boxes."""
    heatmap, sizes, offsets = (output[0] for output in outputs[:3])
    rows, columns = np.nonzero(heatmap[0] > FACE_THRESHOLD)
    scores = heatmap[0, rows, columns]
    box_height = np.exp(sizes[0, rows, columns]) * FACE_STRIDE
    box_width = np.exp(sizes[1, rows, columns]) * FACE_STRIDE
    centre_y = (rows + offsets[0, rows, columns] + 0.5) * FACE_STRIDE
    centre_x = (columns + offsets[1, rows, columns] + 0.5) * FACE_STRIDE
    corners = np.stack(
        [
            np.clip(centre_x - box_width / 2, 0, width) / width,
            np.clip(centre_y - box_height / 2, 0, height) / height,
            np.clip(centre_x + box_width / 2, 0, width) / width,
            np.clip(centre_y + box_height / 2, 0, height) / height,
        ],
        axis=1,
    )
    return [
        Box(
            left=float(corners[i, 0]),
            top=float(corners[i, 1]),
            width=float(corners[i, 2] - corners[i, 0]),
            height=float(corners[i, 3] - corners[i, 1]),
            confidence=round(float(scores[i]) * 100, 4),
        )
        for i in suppress_overlaps(corners, scores)
    ]


def add_person_labels(
    labels: list[DetectedLabel], faces: list[Box], min_confidence: float
) -> list[DetectedLabel]:
    """Report found faces as Face and Person labels, boxes included."""
    if not faces:
        return labels
    face_confidence = max(face.confidence or 0.0 for face in faces)
    if face_confidence < min_confidence:
        return labels
    others = [label for label in labels if label.name not in ("Person", "Face")]
    seen = [label.confidence for label in labels if label.name == "Person"]
    person = DetectedLabel(
        name="Person",
        confidence=max([face_confidence, *seen]),
        categories=(PERSON_CATEGORY,),
        boxes=tuple(faces),
    )
    face = DetectedLabel(
        name="Face",
        confidence=face_confidence,
        parents=("Person",),
        categories=(PERSON_CATEGORY,),
        boxes=tuple(faces),
    )
    return [*others, person, face]


def limit_labels(labels: list[DetectedLabel], max_labels: int) -> list[DetectedLabel]:
    """Keep the most confident labels, never dropping a Person with boxes."""
    ranked = sorted(labels, key=lambda label: (-label.confidence, label.name))
    kept = ranked[:max_labels]
    person = [label for label in ranked if label.name == "Person" and label.boxes]
    if person and person[0] not in kept and max_labels > 0:
        kept = [*kept[: max_labels - 1], person[0]]
    return kept


class LocalModel:
    """EfficientNet-Lite0 for things and CenterFace for faces, on onnxruntime."""

    def __init__(
        self,
        assets_dir: Path | None = None,
        *,
        threads: int = 0,
        precision: str = "int8",
    ) -> None:
        """Verify and load the assets; threads=0 lets onnxruntime choose."""
        if precision not in MODEL_FILES:
            choices = " or ".join(MODEL_FILES)
            raise ValueError(f"Precision must be {choices}, not {precision!r}")
        self.assets_dir = assets_dir or ASSETS_DIR
        classifier, face_detector = MODEL_FILES[precision]
        assets = verify_assets(
            self.assets_dir, [classifier, face_detector, TAXONOMY_FILE]
        )
        checksum = hashlib.sha256(assets[CHECKSUM_FILE]).hexdigest()
        self.version = f"{MODEL_VERSION}-{precision}+{checksum[:12]}"
        self._classifier = create_session(assets[classifier], threads)
        self._face_detector = create_session(assets[face_detector], threads)
        self._taxonomy = Taxonomy.from_json(assets[TAXONOMY_FILE])
        logger.info("Loaded local model %s from %s", self.version, self.assets_dir)

    def label_image(
        self, image: Image.Image, min_confidence: float, max_labels: int
    ) -> list[DetectedLabel]:
        """Label one photo; confidences and min_confidence are in percent."""
        return self.label_images([image], min_confidence, max_labels)[0]

    def label_images(
        self, images: Sequence[Image.Image], min_confidence: float, max_labels: int
    ) -> list[list[DetectedLabel]]:
        """Label several photos, classifying them in batches."""
        images = [image.convert("RGB") for image in images]
        results = []
        scores = self._classify(images)
        for image, image_scores in zip(images, scores, strict=True):
            labels = self._taxonomy.labels_for(image_scores, min_confidence)
            faces = self.detect_faces(image)
            labels = add_person_labels(labels, faces, min_confidence)
            results.append(limit_labels(labels, max_labels))
        return results

    def detect_faces(self, image: Image.Image) -> list[Box]:
        """Return a box for each face, as fractions of the photo's size."""
        pixels = face_detector_input(image)
        outputs = self._face_detector.run(None, {"input.1": pixels})
        return decode_faces(outputs, pixels.shape[3], pixels.shape[2])

    def _classify(self, images: Sequence[Image.Image]) -> np.ndarray:
        """Return each photo's label scores in percent, photos by labels."""
        batches = []
        for start in range(0, len(images), CLASSIFIER_BATCH):
            chunk = images[start : start + CLASSIFIER_BATCH]
            pixels = np.stack([classifier_input(image) for image in chunk])
            (logits,) = self._classifier.run(None, {"image": pixels})
            batches.append(self._taxonomy.roll_up(softmax(logits)) * 100.0)
        if not batches:
            return np.zeros((0, len(self._taxonomy.names)), dtype=np.float32)
        return np.concatenate(batches)


@functools.cache
def get_local_model(threads: int = 0, precision: str = "int8") -> LocalModel:
    """Return the process's one LocalModel, loading it on first use."""
    return LocalModel(threads=threads, precision=precision)
