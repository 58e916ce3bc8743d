"""Store, describe and delete photos; the logic behind gallery's views."""

from __future__ import annotations

import hashlib
import io
import logging
from datetime import datetime
from pathlib import PurePosixPath
from typing import TYPE_CHECKING

from django.conf import settings
from django.core.files.base import ContentFile
from django.core.files.uploadedfile import UploadedFile
from django.db import IntegrityError, transaction
from django.db.models import Prefetch, Q, QuerySet
from django.utils import timezone

from gallery.images import (
    InvalidImage,
    encode_jpeg,
    inspect_image,
    open_jpeg,
    shrink_photo,
)
from gallery.models import Photo, PhotoEvent
from gallery.signals import photo_uploaded
from photosite.tracing import current_trace_id

if TYPE_CHECKING:
    from PIL import Image

    from accounts.models import User

logger = logging.getLogger(__name__)

THUMBNAIL_SIZES = {"thumbnail": 480, "preview": 1600}


class PhotoRejected(Exception):
    """An upload that was not stored, with a message for its owner."""


class DuplicatePhoto(PhotoRejected):
    def __init__(self, photo: Photo) -> None:
        super().__init__(f"You already uploaded this photo as {photo.original_name}.")
        self.photo = photo


def store_photo(
    owner: User, upload: UploadedFile[bytes], description: str = ""
) -> Photo:
    """Check an uploaded file, store it unchanged and record it."""
    received = timezone.now()
    name = upload.name or "photo"
    if not upload.size:
        raise PhotoRejected("The file is empty.")
    if upload.size > settings.PHOTO_MAX_BYTES:
        raise PhotoRejected(too_large_message())
    try:
        info = inspect_image(upload, name, settings.PHOTO_MAX_PIXELS)
    except InvalidImage as error:
        raise PhotoRejected(str(error)) from None
    digest = sha256_of(upload)
    existing = Photo.objects.filter(owner=owner, sha256=digest).first()
    if existing:
        raise DuplicatePhoto(existing)

    photo = Photo(
        owner=owner,
        original_name=name[:255],
        content_type=info.format.content_type,
        size_bytes=upload.size,
        sha256=digest,
        width=info.width,
        height=info.height,
        taken_at=info.taken_at,
        camera=info.camera,
        description=description,
    )
    photo.original.save(f"original{info.format.extension}", upload, save=False)
    _record(photo, received)
    logger.info("Photo %s stored for user %s", photo.pk, owner.pk)
    return photo


def _record(photo: Photo, received: datetime) -> None:
    # The file is written before the row, so any failure here removes it.
    try:
        with transaction.atomic():
            photo.save()
            record_event(photo.pk, PhotoEvent.Kind.UPLOADED, at=received)
            record_event(
                photo.pk,
                PhotoEvent.Kind.STORED,
                detail=f"{photo.size_bytes} bytes",
                duration_ms=elapsed_ms(received),
            )
            photo_uploaded.send(sender=Photo, photo=photo)
    except IntegrityError:
        photo.original.delete(save=False)
        existing = Photo.objects.get(owner=photo.owner, sha256=photo.sha256)
        raise DuplicatePhoto(existing) from None
    except BaseException:
        photo.original.delete(save=False)
        raise


def record_event(
    photo_id: int,
    kind: str,
    *,
    detail: str = "",
    labeler: str = "",
    duration_ms: int | None = None,
    at: datetime | None = None,
) -> None:
    """Add a step to the photo's processing timeline."""
    PhotoEvent.objects.create(
        photo_id=photo_id,
        kind=kind,
        detail=detail[:500],
        labeler=labeler,
        duration_ms=duration_ms,
        at=at or timezone.now(),
        trace_id=current_trace_id(),
    )


def elapsed_ms(since: datetime) -> int:
    return max(0, round((timezone.now() - since).total_seconds() * 1000))


def sha256_of(upload: UploadedFile[bytes]) -> str:
    digest = hashlib.sha256()
    upload.seek(0)
    for chunk in upload.chunks():
        digest.update(chunk)
    upload.seek(0)
    return digest.hexdigest()


def too_large_message() -> str:
    limit_mb = settings.PHOTO_MAX_BYTES / (1024 * 1024)
    return f"The file is larger than the {limit_mb:g} MB limit."


def ensure_thumbnail(photo: Photo, variant: str = "thumbnail") -> Photo:
    """Make the photo's thumbnail or preview if it is missing.

    The worker makes the small thumbnail the gallery needs; the larger
    preview is made the first time someone opens the photo's page.
    """
    if not getattr(photo, variant):
        _make_variant(photo, variant)
    return photo


def thumbnail_image(photo: Photo) -> Image.Image:
    """Return the photo's thumbnail decoded, making it first if it is missing.

    A thumbnail made here is decoded from memory, not read back from
    storage; either way the pixels are those of the stored JPEG, so what is
    computed from them does not depend on which happened. Raises
    FileNotFoundError if the original is missing too.
    """
    if photo.thumbnail:
        try:
            with photo.thumbnail.open("rb") as stored:
                return open_jpeg(stored)
        except FileNotFoundError:
            logger.warning("Thumbnail of photo %s is missing; remaking it", photo.pk)
    return open_jpeg(io.BytesIO(_make_variant(photo, "thumbnail")))


def _make_variant(photo: Photo, variant: str) -> bytes:
    size = THUMBNAIL_SIZES[variant]
    with photo.original.open("rb") as original:
        data = encode_jpeg(shrink_photo(original, size))
    field = getattr(photo, variant)
    stem = PurePosixPath(photo.original.name or "").stem
    key = f"thumbnails/{photo.owner_id}/{stem}-{size}.jpg"
    field.name = photo.original.storage.save(key, ContentFile(data))
    Photo.objects.filter(pk=photo.pk).update(**{variant: field.name})
    logger.info("Made the %s of photo %s", variant, photo.pk)
    return data


def update_description(photo: Photo, description: str) -> None:
    photo.description = description
    photo.save(update_fields=["description", "updated_at"])


def delete_photo(photo: Photo) -> None:
    """Delete the photo's rows now and its files once that has committed."""
    names = [f.name for f in (photo.original, photo.thumbnail, photo.preview) if f.name]
    storage = photo.original.storage
    photo_id = photo.pk
    with transaction.atomic():
        photo.delete()
        transaction.on_commit(lambda: _delete_files(storage, names, photo_id))
    logger.info("Photo %s deleted", photo_id)


def _delete_files(storage: object, names: list[str], photo_id: int) -> None:
    for name in names:
        try:
            storage.delete(name)  # type: ignore[attr-defined]
        except OSError:
            logger.exception("Could not delete file %s of photo %s", name, photo_id)


def search_photos(photos: QuerySet[Photo], text: str, label: str) -> QuerySet[Photo]:
    """Narrow photos to those whose description or labels match.

    Labels are reached through the ORM only: labeling's photo labels sit
    behind the reverse relation "labels", and rejected ones never match.
    """
    visible = Q(labels__isnull=False) & ~Q(labels__review_state="rejected")
    if label:
        matching = Photo.objects.filter(visible, labels__label__name__iexact=label)
        photos = photos.filter(pk__in=matching.values("pk"))
    for term in text.split()[:10]:
        by_label = Photo.objects.filter(visible, labels__label__name__icontains=term)
        photos = photos.filter(
            Q(description__icontains=term) | Q(pk__in=by_label.values("pk"))
        )
    return photos


def with_visible_labels(photos: QuerySet[Photo]) -> QuerySet[Photo]:
    """Fetch each photo's unrejected labels, best first, in one more query."""
    photo_label = Photo._meta.get_field("labels").related_model
    labels = (
        photo_label._default_manager.exclude(review_state="rejected")
        .select_related("label")
        .order_by("-confidence")
    )
    return photos.prefetch_related(
        Prefetch("labels", queryset=labels, to_attr="visible_labels")
    )
