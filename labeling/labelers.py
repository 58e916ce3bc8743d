"""Turn a stored photo into labels, whichever backend does the looking."""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass, field
from types import ModuleType
from typing import Protocol

from django.conf import settings

from gallery.models import Photo


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

    def label_photo(self, photo: Photo) -> list[DetectedLabel]: ...


class LocalLabeler:
    """Label photos on this machine's CPU with the bundled image model."""

    source = "local"

    @property
    def version(self) -> str:
        return local_model().get_local_model().version

    def label_photo(self, photo: Photo) -> list[DetectedLabel]:
        model = local_model()
        try:
            with photo.original.open("rb") as original:
                image = model.open_for_labelling(original)
        except FileNotFoundError:
            raise LabelerError("The photo's file is missing from storage.") from None
        return model.get_local_model().label_image(
            image, settings.LABEL_MIN_CONFIDENCE, settings.LABEL_MAX_LABELS
        )


def local_model() -> ModuleType:
    # Imported on first use: the web process never loads onnxruntime.
    from labeling import local_model

    return local_model


LABELERS: dict[str, Callable[[], Labeler]] = {
    "local": LocalLabeler,
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
