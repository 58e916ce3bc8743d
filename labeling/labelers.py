"""Turn a stored photo into labels, whichever backend does the looking."""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError
from django.conf import settings

from gallery.models import Photo
from gallery.services import ensure_thumbnail, thumbnail_image

if TYPE_CHECKING:
    from mypy_boto3_rekognition.type_defs import LabelTypeDef, S3ObjectTypeDef
    from PIL import Image


@dataclass(frozen=True)
class Box:
    """Where a label sits in the photo, as fractions of its width and height."""

    left: float
    top: float
    width: float
    height: float
    confidence: float | None = None


@dataclass(frozen=True)
class DetectedLabel:
    """One thing a labeler saw, with confidence in percent (0 to 100)."""

    name: str
    confidence: float
    parents: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    boxes: tuple[Box, ...] = field(default=())


class LabelerError(Exception):
    """The labeler cannot label this photo; the message is for its owner."""


class LabelerUnavailable(LabelerError):
    """The labeler failed for a reason that may pass, such as throttling."""


class Labeler(Protocol):
    source: str

    @property
    def version(self) -> str: ...

    def label_photo(
        self, photo: Photo, image: Image.Image | None = None
    ) -> list[DetectedLabel]:
        """Label the photo; image is its thumbnail, when the caller has it."""
        ...


class LocalLabeler:
    """Label photos on this machine's CPU with the bundled image model."""

    source = "local"

    # The model module is imported on first use, so that the web process
    # never loads onnxruntime.
    @property
    def version(self) -> str:
        from labeling.local_model import get_local_model

        return get_local_model(
            settings.LABEL_MODEL_THREADS, settings.LABEL_MODEL_PRECISION
        ).version

    def label_photo(
        self, photo: Photo, image: Image.Image | None = None
    ) -> list[DetectedLabel]:
        from labeling.local_model import get_local_model

        # The thumbnail is as large as either model needs, and decoding it
        # costs a fraction of decoding the original.
        if image is None:
            image = stored_thumbnail(photo)
        return get_local_model(
            settings.LABEL_MODEL_THREADS, settings.LABEL_MODEL_PRECISION
        ).label_image(image, settings.LABEL_MIN_CONFIDENCE, settings.LABEL_MAX_LABELS)


def stored_thumbnail(photo: Photo) -> Image.Image:
    """Return the photo's thumbnail decoded; LabelerError if it has no file."""
    try:
        return thumbnail_image(photo)
    except FileNotFoundError:
        raise LabelerError("The photo's file is missing from storage.") from None


logger = logging.getLogger(__name__)

# Rekognition reads JPEG and PNG of up to 15 MB from S3; other photos are
# labelled from their JPEG preview, whose boxes fall in the same places.
REKOGNITION_FORMATS = frozenset({"image/jpeg", "image/png"})
REKOGNITION_MAX_BYTES = 15 * 1024 * 1024
REKOGNITION_TRANSIENT_ERRORS = frozenset(
    {
        "ThrottlingException",
        "ProvisionedThroughputExceededException",
        "InternalServerError",
    }
)
REKOGNITION_REASONS = {
    "InvalidImageFormatException": "Rekognition cannot read this image's format.",
    "ImageTooLargeException": "The photo is too large for Rekognition.",
    "InvalidS3ObjectException": "Rekognition could not read the photo from S3.",
    "AccessDeniedException": "The site is not allowed to call Rekognition.",
}


class RekognitionLabeler:
    """Label photos in the S3 bucket with Amazon Rekognition's DetectLabels."""

    source = "rekognition"

    def __init__(self) -> None:
        # Created once per process; botocore retries throttling with
        # exponential backoff and, in adaptive mode, slows its own calls.
        self.client = boto3.client(
            "rekognition",
            region_name=settings.AWS_REGION or None,
            endpoint_url=settings.AWS_ENDPOINT_URL or None,
            config=Config(
                retries={"mode": "adaptive", "max_attempts": 5},
                connect_timeout=5,
                read_timeout=30,
            ),
        )
        # Every call in a process meets the same model, so the last one seen
        # is the version of the labels being stored.
        self.model_version = ""

    @property
    def version(self) -> str:
        return self.model_version

    def label_photo(
        self, photo: Photo, image: Image.Image | None = None
    ) -> list[DetectedLabel]:
        if not settings.PHOTOS_BUCKET:
            raise LabelerError("Rekognition labels photos in S3; none is set up.")
        # Rekognition fetches the object itself: the photo is never downloaded,
        # and the decoded thumbnail is not needed.
        stored: S3ObjectTypeDef = {
            "Bucket": settings.PHOTOS_BUCKET,
            "Name": rekognition_key(photo),
        }
        try:
            response = self.client.detect_labels(
                Image={"S3Object": stored},
                MinConfidence=settings.LABEL_MIN_CONFIDENCE,
                MaxLabels=settings.LABEL_MAX_LABELS,
            )
        except ClientError as error:
            raise rekognition_error(photo, error) from error
        except BotoCoreError as error:
            raise LabelerUnavailable(f"Rekognition is out of reach: {error}") from None
        self.model_version = response.get("LabelModelVersion", "")
        return [detected_label(label) for label in response.get("Labels", [])]


def rekognition_key(photo: Photo) -> str:
    """Return the key of the photo's file that Rekognition can read."""
    readable = photo.content_type in REKOGNITION_FORMATS
    if readable and photo.size_bytes <= REKOGNITION_MAX_BYTES:
        return photo.original.name or ""
    return ensure_thumbnail(photo, "preview").preview.name or ""


def rekognition_error(photo: Photo, error: ClientError) -> LabelerError:
    code = error.response.get("Error", {}).get("Code", "Unknown")
    message = error.response.get("Error", {}).get("Message", "")
    if code in REKOGNITION_TRANSIENT_ERRORS:
        return LabelerUnavailable(f"Rekognition is busy ({code}).")
    logger.warning("Rekognition refused photo %s: %s %s", photo.pk, code, message)
    reason = REKOGNITION_REASONS.get(code)
    return LabelerError(reason or f"Rekognition could not label the photo ({code}).")


def detected_label(label: LabelTypeDef) -> DetectedLabel:
    """Turn one label of a DetectLabels answer into a DetectedLabel."""
    boxes = tuple(
        Box(
            left=instance["BoundingBox"]["Left"],
            top=instance["BoundingBox"]["Top"],
            width=instance["BoundingBox"]["Width"],
            height=instance["BoundingBox"]["Height"],
            confidence=instance.get("Confidence"),
        )
        for instance in label.get("Instances", [])
        if "BoundingBox" in instance
    )
    return DetectedLabel(
        name=label["Name"],
        confidence=label["Confidence"],
        parents=tuple(parent["Name"] for parent in label.get("Parents", [])),
        categories=tuple(item["Name"] for item in label.get("Categories", [])),
        boxes=boxes,
    )


LABELERS: dict[str, Callable[[], Labeler]] = {
    "local": LocalLabeler,
    "rekognition": RekognitionLabeler,
}


@functools.cache
def get_labeler(name: str = "") -> Labeler:
    """Return the labeler called name, or the one settings.LABELER names."""
    name = name or settings.LABELER
    try:
        factory = LABELERS[name]
    except KeyError:
        known = ", ".join(sorted(LABELERS))
        raise ValueError(f"Unknown labeler {name!r}; choose one of {known}.") from None
    return factory()
