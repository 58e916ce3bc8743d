"""Store photos and the facts read from them at upload."""

import uuid
from pathlib import PurePosixPath

from django.conf import settings
from django.db import models


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
