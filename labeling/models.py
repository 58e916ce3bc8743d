"""Store what labelers and reviewers say is in each photo."""

from django.conf import settings
from django.db import models

from gallery.models import Photo


class Label(models.Model):
    """A thing that can be in a photo, such as Cat, with its broader kinds."""

    name = models.CharField(max_length=100, unique=True)
    parents = models.ManyToManyField(
        "self", symmetrical=False, related_name="children", blank=True
    )
    categories = models.JSONField(default=list, blank=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class PhotoLabel(models.Model):
    """One label on one photo, from one labeler, with its review state."""

    class Source(models.TextChoices):
        LOCAL = "local", "Local model"
        REKOGNITION = "rekognition", "Amazon Rekognition"
        LAMBDA = "lambda", "Lambda callback"
        HUMAN = "human", "Staff"

    class ReviewState(models.TextChoices):
        AUTOMATIC = "automatic", "Automatic"
        ACCEPTED = "accepted", "Accepted"
        REJECTED = "rejected", "Rejected"

    photo = models.ForeignKey(Photo, on_delete=models.CASCADE, related_name="labels")
    label = models.ForeignKey(
        Label, on_delete=models.PROTECT, related_name="photo_labels"
    )
    confidence = models.FloatField(help_text="Percent, 0 to 100.")
    source = models.CharField(max_length=20, choices=Source.choices)
    model_version = models.CharField(max_length=100, blank=True)
    boxes = models.JSONField(
        default=list,
        blank=True,
        help_text="Bounding boxes as fractions of the photo: left, top, width, height.",
    )
    review_state = models.CharField(
        max_length=20, choices=ReviewState.choices, default=ReviewState.AUTOMATIC
    )
    reviewed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )
    reviewed_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-confidence"]
        constraints = [
            models.UniqueConstraint(
                fields=["photo", "label", "source"], name="one_label_per_source"
            ),
        ]
        indexes = [models.Index(fields=["review_state"], name="photolabel_review")]

    def __str__(self) -> str:
        return f"{self.label} {self.confidence:.0f}% on photo {self.photo_id}"


class PendingCallback(models.Model):
    """Labels the Lambda sent for an S3 key that has no photo row yet."""

    bucket = models.CharField(max_length=63)
    key = models.CharField(max_length=255, unique=True)
    model_version = models.CharField(max_length=100, blank=True)
    labels = models.JSONField(
        default=list, help_text="The labels as the callback sent them."
    )
    received_at = models.DateTimeField()

    class Meta:
        indexes = [
            models.Index(fields=["received_at"], name="pendingcallback_received")
        ]

    def __str__(self) -> str:
        return f"{len(self.labels)} label(s) for {self.key}"


class CallbackReceipt(models.Model):
    """A callback already acted on, kept while a replay of it could pass."""

    signature = models.CharField(max_length=64, unique=True)
    signed_at = models.DateTimeField(db_index=True)
    received_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"callback signed at {self.signed_at:%Y-%m-%d %H:%M:%S}"
