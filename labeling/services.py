"""Label photos and record the results; shared by the worker and callbacks."""

from __future__ import annotations

import logging
from datetime import datetime

from django.contrib.auth.base_user import AbstractBaseUser
from django.contrib.auth.models import AnonymousUser
from django.db import IntegrityError, transaction
from django.db.models import Q, QuerySet
from django.utils import timezone

from gallery.models import Photo, PhotoEvent
from gallery.services import elapsed_ms, record_event
from labeling.labelers import (
    DetectedLabel,
    LabelerError,
    get_labeler,
    stored_thumbnail,
)
from labeling.models import Label, PhotoLabel

logger = logging.getLogger(__name__)


def label_photo(photo_id: int, labeler_name: str = "") -> Photo:
    """Make the photo's thumbnail, label it and store the labels."""
    photo = Photo.objects.get(pk=photo_id)
    labeler = get_labeler(labeler_name)
    started = timezone.now()
    record_event(photo.pk, PhotoEvent.Kind.LABELLING_STARTED, labeler=labeler.source)
    # The thumbnail is made from the original here, and labelled from memory.
    image = stored_thumbnail(photo)
    labels = labeler.label_photo(photo, image)
    apply_labels(photo, labeler.source, labeler.version, labels)
    record_event(
        photo.pk,
        PhotoEvent.Kind.LABELLING_FINISHED,
        labeler=labeler.source,
        detail=f"{len(labels)} labels from {labeler.version}",
        duration_ms=elapsed_ms(started),
    )
    return photo


def apply_callback_labels(
    photo: Photo, model_version: str, labels: list[DetectedLabel], kept: bool = False
) -> None:
    """Apply labels the Lambda posted back, and note it on the timeline."""
    apply_labels(photo, PhotoLabel.Source.LAMBDA, model_version, labels)
    detail = f"{len(labels)} labels from {model_version}"
    if kept:
        detail += ", kept until the photo was stored"
    record_event(
        photo.pk,
        PhotoEvent.Kind.CALLBACK_RECEIVED,
        labeler=PhotoLabel.Source.LAMBDA,
        detail=detail,
    )


def apply_labels(
    photo: Photo, source: str, model_version: str, labels: list[DetectedLabel]
) -> None:
    """Replace one source's automatic labels on a photo; idempotent.

    Labels a person accepted or rejected are left as they are, so relabelling
    never undoes a review.
    """
    # Two workers can label one photo at once (a redelivered message, a
    # reprocess beside the upload's own task). The row lock queues them on
    # MySQL; where locks are not row-level, the loser's insert collides with
    # the winner's rows and one more pass updates them instead.
    try:
        _replace_labels(photo, source, model_version, labels)
    except IntegrityError:
        _replace_labels(photo, source, model_version, labels)
    logger.info("Labels applied to photo %s: %s from %s", photo.pk, len(labels), source)


def _replace_labels(
    photo: Photo, source: str, model_version: str, labels: list[DetectedLabel]
) -> None:
    by_name = {detected.name: detected for detected in labels}
    with transaction.atomic():
        Photo.objects.select_for_update().filter(pk=photo.pk).exists()
        label_ids = ensure_labels(labels)
        current = {
            photo_label.label_id: photo_label
            for photo_label in PhotoLabel.objects.filter(photo=photo, source=source)
        }
        wanted = {label_ids[name] for name in by_name}
        stale = [
            photo_label.pk
            for label_id, photo_label in current.items()
            if label_id not in wanted
            and photo_label.review_state == PhotoLabel.ReviewState.AUTOMATIC
        ]
        if stale:
            PhotoLabel.objects.filter(pk__in=stale).delete()
        new: list[PhotoLabel] = []
        changed: list[PhotoLabel] = []
        for name, detected in by_name.items():
            photo_label = current.get(label_ids[name]) or PhotoLabel(
                photo=photo, label_id=label_ids[name], source=source
            )
            photo_label.confidence = detected.confidence
            photo_label.model_version = model_version
            photo_label.boxes = [box_as_dict(box) for box in detected.boxes]
            (changed if photo_label.pk else new).append(photo_label)
        PhotoLabel.objects.bulk_create(new)
        PhotoLabel.objects.bulk_update(
            changed, ["confidence", "model_version", "boxes"]
        )
        Photo.objects.filter(pk=photo.pk).update(
            status=Photo.Status.LABELLED, failure_reason="", updated_at=timezone.now()
        )


def box_as_dict(box: object) -> dict[str, float | None]:
    return {
        key: getattr(box, key)
        for key in ("left", "top", "width", "height", "confidence")
    }


def ensure_labels(labels: list[DetectedLabel]) -> dict[str, int]:
    """Return the id of each label named, creating missing ones and parents."""
    names = {detected.name for detected in labels}
    names.update(parent for detected in labels for parent in detected.parents)
    known = dict(Label.objects.filter(name__in=names).values_list("name", "id"))
    missing = names - known.keys()
    if missing:
        categories = {d.name: list(d.categories) for d in labels}
        Label.objects.bulk_create(
            [Label(name=name, categories=categories.get(name, [])) for name in missing],
            ignore_conflicts=True,
        )
        known = dict(Label.objects.filter(name__in=names).values_list("name", "id"))
        links = [
            Label.parents.through(from_label_id=known[d.name], to_label_id=known[p])
            for d in labels
            if d.name in missing
            for p in d.parents
        ]
        Label.parents.through.objects.bulk_create(links, ignore_conflicts=True)
    return known


def mark_failed(photo_id: int, reason: str) -> None:
    updated = Photo.objects.filter(pk=photo_id).update(
        status=Photo.Status.FAILED,
        failure_reason=reason[:500],
        updated_at=timezone.now(),
    )
    if updated:
        record_event(photo_id, PhotoEvent.Kind.FAILED, detail=reason)
        logger.warning("Labelling failed for photo %s: %s", photo_id, reason)


def note_retry(photo_id: int, reason: str, countdown: int) -> None:
    if Photo.objects.filter(pk=photo_id).exists():
        detail = f"{reason}; trying again in {countdown} s"
        record_event(photo_id, PhotoEvent.Kind.RETRYING, detail=detail)
    logger.warning("Labelling photo %s will be retried: %s", photo_id, reason)


def review_labels(
    photo_labels: QuerySet[PhotoLabel],
    state: str,
    reviewer: AbstractBaseUser | AnonymousUser,
) -> int:
    """Accept or reject photo labels on behalf of a member of staff."""
    return photo_labels.update(
        review_state=state, reviewed_by=reviewer, reviewed_at=timezone.now()
    )


def photos_to_reprocess(
    *,
    missing: bool = False,
    failed: bool = False,
    everything: bool = False,
    since: datetime | None = None,
    owner: str = "",
) -> QuerySet[Photo]:
    """Select photos for relabelling; the flags add up, the rest narrow."""
    photos = Photo.objects.all()
    if not everything:
        chosen = Q(pk__in=[])
        if missing:
            chosen |= Q(status=Photo.Status.PENDING, labels__isnull=True)
        if failed:
            chosen |= Q(status=Photo.Status.FAILED)
        photos = photos.filter(chosen)
    if since:
        photos = photos.filter(uploaded_at__gte=since)
    if owner:
        by_id = Q(owner_id=int(owner)) if owner.isdigit() else Q()
        photos = photos.filter(by_id | Q(owner__username=owner))
    return photos.order_by("pk").distinct()


def relabel(photo_id: int, labeler_name: str = "") -> bool:
    """Label one photo in this process; return whether it worked."""
    try:
        label_photo(photo_id, labeler_name)
    except Photo.DoesNotExist:
        return False
    except (LabelerError, OSError) as error:
        mark_failed(photo_id, str(error))
        return False
    return True
