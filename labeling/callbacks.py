"""Check, read and apply the labels the Lambda posts back for each photo."""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import math
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from gallery.models import Photo
from labeling.labelers import Box, DetectedLabel
from labeling.models import CallbackReceipt, PendingCallback
from labeling.services import apply_callback_labels

logger = logging.getLogger(__name__)

SIGNATURE_PREFIX = "v1="
TIMESTAMP = re.compile(r"[0-9]{1,12}")
LABELER = "lambda"
MAX_LABELS = 1000
NAME_LENGTH = 100
KEY_LENGTH = 255  # Photo.original's max_length
# An upload that failed after its file reached S3 still gets a callback that
# no photo row will ever claim; after a day nobody is waiting for it.
PENDING_MAX_AGE = timedelta(days=1)


class CallbackRefused(Exception):
    """A callback the site will not act on; the message says why."""

    status_code = 400


class NotConfigured(CallbackRefused):
    status_code = 503


class BadSignature(CallbackRefused):
    status_code = 401


class Expired(CallbackRefused):
    status_code = 403


class Replayed(CallbackRefused):
    status_code = 403


class BadPayload(CallbackRefused):
    status_code = 400


class Outcome(StrEnum):
    APPLIED = "applied"
    PENDING = "pending"


@dataclass(frozen=True)
class LabelCallback:
    """What the Lambda saw in one S3 object."""

    bucket: str
    key: str
    model_version: str
    labels: list[DetectedLabel]


def receive_labels(
    body: bytes, timestamp: str, signature: str, now: float | None = None
) -> Outcome:
    """Check a signed callback, then apply its labels or keep them."""
    if not settings.LABEL_CALLBACK_SECRET:
        raise NotConfigured("Label callbacks are not configured on this site.")
    # The previous secret is accepted too while a rotation is under way.
    secrets = [settings.LABEL_CALLBACK_SECRET, settings.LABEL_CALLBACK_PREVIOUS_SECRET]
    now = time.time() if now is None else now
    max_age = settings.LABEL_CALLBACK_MAX_AGE_SECONDS
    signed_at, digest = verify_signature(
        [secret for secret in secrets if secret], timestamp, signature, body
    )
    if abs(now - signed_at) > max_age:
        raise Expired(f"The timestamp is more than {max_age} seconds from now.")
    callback = parse_callback(body)
    if callback.bucket != settings.PHOTOS_BUCKET:
        raise BadPayload(f"Unknown bucket {callback.bucket!r}.")

    # The receipt commits or rolls back with the labels, so a callback that
    # failed here can be sent again.
    with transaction.atomic():
        record_receipt(digest, signed_at)
        outcome = apply_or_keep(callback)
    # The photo's upload may have committed after apply_or_keep looked for
    # its row, and looked for kept labels before these committed; of two
    # looks each taken after its own commit, one sees the other's row.
    if callback.key in apply_claimed_callbacks():
        outcome = Outcome.APPLIED

    forget_old_callbacks(now, max_age)
    return outcome


def verify_signature(
    secrets: Sequence[str], timestamp: str, signature: str, body: bytes
) -> tuple[int, str]:
    """Return the signing time and digest of a body signed with one secret."""
    if not timestamp or not signature:
        raise BadSignature("The timestamp or signature header is missing.")
    if not TIMESTAMP.fullmatch(timestamp):
        raise BadSignature("The timestamp is not a whole number of seconds.")
    message = timestamp.encode() + b"." + body
    for secret in secrets:
        digest = hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()
        # Compared as bytes: compare_digest refuses str with non-ASCII text.
        expected = (SIGNATURE_PREFIX + digest).encode()
        if hmac.compare_digest(signature.encode(), expected):
            return int(timestamp), digest
    raise BadSignature("The signature does not match the body.")


def record_receipt(digest: str, signed_at: int) -> None:
    """Remember a callback, refusing one that was acted on already."""
    try:
        with transaction.atomic():
            CallbackReceipt.objects.create(
                signature=digest, signed_at=datetime.fromtimestamp(signed_at, UTC)
            )
    except IntegrityError:
        raise Replayed("This callback was received already.") from None


def apply_or_keep(callback: LabelCallback) -> Outcome:
    """Apply the labels to the key's photo, or keep them until it is stored."""
    photo = Photo.objects.filter(original=callback.key).first()
    if photo is None:
        PendingCallback.objects.update_or_create(
            key=callback.key,
            defaults={
                "bucket": callback.bucket,
                "model_version": callback.model_version,
                "labels": [label_as_json(label) for label in callback.labels],
                "received_at": timezone.now(),
            },
        )
        logger.info("Labels for %s kept until its photo is stored", callback.key)
        return Outcome.PENDING

    # Deleted first, so labels kept earlier cannot overwrite these newer ones.
    PendingCallback.objects.filter(key=callback.key).delete()
    apply_callback_labels(photo, callback.model_version, callback.labels)
    return Outcome.APPLIED


def apply_pending_labels(photo: Photo) -> bool:
    """Apply and forget labels that arrived before the photo's row."""
    with transaction.atomic():
        # The lock makes a second caller wait, then find the row gone.
        pending = (
            PendingCallback.objects.select_for_update()
            .filter(key=photo.original.name)
            .first()
        )
        if pending is None:
            return False
        labels = parse_labels(pending.labels)
        apply_callback_labels(photo, pending.model_version, labels, kept=True)
        pending.delete()
    logger.info("Labels received before photo %s was stored applied", photo.pk)
    return True


def apply_claimed_callbacks() -> set[str]:
    """Apply kept labels whose photo is stored now; return their keys."""
    # Besides the race above, a failure or a stopped process between an
    # upload's commit and its apply_pending_labels leaves such labels.
    applied: set[str] = set()
    for photo in Photo.objects.filter(
        original__in=PendingCallback.objects.values("key")
    ):
        try:
            if apply_pending_labels(photo):
                applied.add(str(photo.original))
        except Exception:
            logger.exception("Kept labels for photo %s were not applied", photo.pk)
    return applied


def forget_old_callbacks(now: float, max_age: int) -> None:
    """Drop receipts too old to be replayed and kept labels nobody claimed."""
    # A replay of a callback signed before this is refused as expired.
    oldest = datetime.fromtimestamp(now - max_age, UTC)
    CallbackReceipt.objects.filter(signed_at__lt=oldest).delete()

    abandoned = datetime.fromtimestamp(now, UTC) - PENDING_MAX_AGE
    dropped, _ = PendingCallback.objects.filter(received_at__lt=abandoned).delete()
    if dropped:
        logger.warning("Dropped %s kept label set(s) no photo claimed", dropped)


# Reading the payload


def parse_callback(body: bytes) -> LabelCallback:
    """Read the callback's JSON body, refusing anything out of shape."""
    try:
        payload = json.loads(body, parse_constant=refuse_constant)
    except ValueError:
        raise BadPayload("The body is not JSON in UTF-8.") from None
    if not isinstance(payload, dict):
        raise BadPayload("The body must be a JSON object.")
    if payload.get("labeler") != LABELER:
        raise BadPayload(f"labeler must be {LABELER!r}.")

    return LabelCallback(
        bucket=text(payload, "bucket", "", 63),
        key=text(payload, "key", "", KEY_LENGTH),
        model_version=text(payload, "model_version", "", 100, required=False),
        labels=parse_labels(payload.get("labels")),
    )


def refuse_constant(name: str) -> None:
    raise ValueError(f"{name} is not a number")


def parse_labels(labels: Any) -> list[DetectedLabel]:
    """Read the callback's list of labels."""
    if not isinstance(labels, list):
        raise BadPayload("labels must be a list.")
    if len(labels) > MAX_LABELS:
        raise BadPayload(f"labels may hold at most {MAX_LABELS} labels.")
    return [
        parse_label(label, f"labels[{index}]") for index, label in enumerate(labels)
    ]


def parse_label(label: Any, where: str) -> DetectedLabel:
    if not isinstance(label, dict):
        raise BadPayload(f"{where} must be an object.")
    return DetectedLabel(
        name=text(label, "name", where, NAME_LENGTH),
        confidence=percent(label, "confidence", where),
        parents=names(label, "parents", where),
        categories=names(label, "categories", where),
        boxes=tuple(
            parse_box(box, f"{where}.boxes[{index}]")
            for index, box in enumerate(items(label, "boxes", where))
        ),
    )


def parse_box(box: Any, where: str) -> Box:
    if not isinstance(box, dict):
        raise BadPayload(f"{where} must be an object.")
    # Coordinates are not bounded: a box may reach past the photo's edge.
    return Box(
        left=number(box, "left", where),
        top=number(box, "top", where),
        width=number(box, "width", where),
        height=number(box, "height", where),
        confidence=None
        if box.get("confidence") is None
        else percent(box, "confidence", where),
    )


def text(
    data: dict[str, Any], field: str, where: str, max_length: int, required: bool = True
) -> str:
    value = data.get(field, None if required else "")
    if not isinstance(value, str) or (required and not value):
        kind = "a non-empty string" if required else "a string"
        raise BadPayload(f"{path(where, field)} must be {kind}.")
    if len(value) > max_length:
        raise BadPayload(f"{path(where, field)} is longer than {max_length}.")
    return value


def number(data: dict[str, Any], field: str, where: str) -> float:
    value = data.get(field)
    # bool is an int to Python, but true is no number.
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise BadPayload(f"{path(where, field)} must be a number.")
    if not math.isfinite(value):
        raise BadPayload(f"{path(where, field)} must be finite.")
    return float(value)


def percent(data: dict[str, Any], field: str, where: str) -> float:
    value = number(data, field, where)
    if not 0 <= value <= 100:
        raise BadPayload(f"{path(where, field)} must be from 0 to 100.")
    return value


def names(data: dict[str, Any], field: str, where: str) -> tuple[str, ...]:
    values = items(data, field, where)
    for index, value in enumerate(values):
        if not isinstance(value, str) or not 0 < len(value) <= NAME_LENGTH:
            raise BadPayload(
                f"{where}.{field}[{index}] must be a name of 1 to"
                f" {NAME_LENGTH} characters."
            )
    return tuple(values)


def items(data: dict[str, Any], field: str, where: str) -> list[Any]:
    value = data.get(field, [])
    if not isinstance(value, list):
        raise BadPayload(f"{path(where, field)} must be a list.")
    return value


def path(where: str, field: str) -> str:
    return f"{where}.{field}" if where else field


def label_as_json(label: DetectedLabel) -> dict[str, Any]:
    """Return a label in the callback's shape, for keeping until later."""
    return {
        "name": label.name,
        "confidence": label.confidence,
        "parents": list(label.parents),
        "categories": list(label.categories),
        "boxes": [
            {
                "left": box.left,
                "top": box.top,
                "width": box.width,
                "height": box.height,
                "confidence": box.confidence,
            }
            for box in label.boxes
        ],
    }
