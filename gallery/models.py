"""Store photos and the facts read from them at upload."""

import uuid
from pathlib import PurePosixPath

from django.conf import settings
from django.db import models
from django.utils import timezone


def original_key(photo: "Photo", filename: str) -> str:
    # The key carries no part of the user's file name, only its extension,
    # which store_photo sets from the decoded format.
    extension = PurePosixPath(filename).suffix.lower()
    return f"photos/{photo.owner_id}/{uuid.uuid4().hex}{extension}"


class Photo(models.Model):
    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        LABELLED = "labelled", "Labelled"
        FAILED = "failed", "Failed"

    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="photos"
    )
    original = models.FileField(upload_to=original_key, max_length=255, unique=True)
    thumbnail = models.FileField(max_length=255, blank=True)
    preview = models.FileField(max_length=255, blank=True)
    original_name = models.CharField(max_length=255)
    content_type = models.CharField(max_length=50)
    size_bytes = models.PositiveBigIntegerField()
    sha256 = models.CharField(max_length=64)
    width = models.PositiveIntegerField()
    height = models.PositiveIntegerField()
    taken_at = models.DateTimeField(null=True, blank=True)
    camera = models.CharField(max_length=200, blank=True)
    description = models.TextField(max_length=2000, blank=True)
    status = models.CharField(
        max_length=20, choices=Status.choices, default=Status.PENDING
    )
    failure_reason = models.CharField(max_length=500, blank=True)
    uploaded_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-uploaded_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["owner", "sha256"], name="unique_photo_per_owner"
            ),
        ]
        indexes = [
            models.Index(fields=["owner", "-uploaded_at"], name="photo_owner_newest"),
            models.Index(fields=["status"], name="photo_status"),
        ]

    def __str__(self) -> str:
        return f"{self.original_name} ({self.pk})"


class PhotoEvent(models.Model):
    """One step in a photo's processing, for its timeline."""

    class Kind(models.TextChoices):
        UPLOADED = "uploaded", "Upload received"
        STORED = "stored", "Stored"
        QUEUED = "queued", "Queued for labelling"
        LABELLING_STARTED = "labelling_started", "Labelling started"
        LABELLING_FINISHED = "labelling_finished", "Labelling finished"
        CALLBACK_RECEIVED = "callback_received", "Labels received from the Lambda"
        RETRYING = "retrying", "Will try again"
        FAILED = "failed", "Failed"

    photo = models.ForeignKey(Photo, on_delete=models.CASCADE, related_name="events")
    kind = models.CharField(max_length=30, choices=Kind.choices)
    at = models.DateTimeField(default=timezone.now)
    detail = models.CharField(max_length=500, blank=True)
    labeler = models.CharField(max_length=50, blank=True)
    duration_ms = models.PositiveIntegerField(null=True, blank=True)
    trace_id = models.CharField(max_length=64, blank=True)

    class Meta:
        ordering = ["at", "id"]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} for photo {self.photo_id}"
