"""Let staff review labels: accept, reject, add and correct them."""

from typing import Any

from django.contrib import admin
from django.db.models import Count, QuerySet
from django.forms import BaseInlineFormSet
from django.http import HttpRequest
from django.utils import timezone

from gallery.admin import PhotoAdmin
from gallery.models import Photo
from labeling.models import Label, PendingCallback, PhotoLabel
from labeling.services import review_labels


class PhotoLabelInline(admin.TabularInline[PhotoLabel, Photo]):
    model = PhotoLabel
    extra = 1
    autocomplete_fields = ["label"]
    fields = ["label", "confidence", "source", "review_state", "reviewed_by"]
    readonly_fields = ["source", "reviewed_by"]


admin.site.unregister(Photo)


@admin.register(Photo)
class PhotoWithLabelsAdmin(PhotoAdmin):
    inlines = [PhotoLabelInline, *PhotoAdmin.inlines]

    def save_formset(
        self,
        request: HttpRequest,
        form: Any,
        formset: BaseInlineFormSet[PhotoLabel, Photo, Any],
        change: bool,
    ) -> None:
        photo_labels = formset.save(commit=False)
        for photo_label in photo_labels:
            record_staff_edit(photo_label, request, formset)
            photo_label.save()
        for removed in formset.deleted_objects:
            removed.delete()


def record_staff_edit(
    photo_label: PhotoLabel,
    request: HttpRequest,
    formset: BaseInlineFormSet[PhotoLabel, Photo, Any],
) -> None:
    """Mark a label that staff added or corrected as coming from a human."""
    changed: list[str] = next(
        (form.changed_data for form in formset.forms if form.instance is photo_label),
        [],
    )
    if photo_label.pk is None or {"label", "confidence"} & set(changed):
        photo_label.source = PhotoLabel.Source.HUMAN
        photo_label.model_version = ""
        if photo_label.review_state == PhotoLabel.ReviewState.AUTOMATIC:
            photo_label.review_state = PhotoLabel.ReviewState.ACCEPTED
    photo_label.reviewed_by = request.user  # type: ignore[assignment]
    photo_label.reviewed_at = timezone.now()


class ConfidenceFilter(admin.SimpleListFilter):
    title = "confidence"
    parameter_name = "confidence"
    ranges = {"low": (0, 50), "fair": (50, 70), "good": (70, 90), "high": (90, 101)}

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [
            ("low", "Below 50%"),
            ("fair", "50% to 70%"),
            ("good", "70% to 90%"),
            ("high", "90% and above"),
        ]

    def queryset(
        self, request: HttpRequest, queryset: QuerySet[PhotoLabel]
    ) -> QuerySet[PhotoLabel]:
        if self.value() not in self.ranges:
            return queryset
        low, high = self.ranges[self.value()]  # type: ignore[index]
        return queryset.filter(confidence__gte=low, confidence__lt=high)


@admin.register(PhotoLabel)
class PhotoLabelAdmin(admin.ModelAdmin[PhotoLabel]):
    list_display = [
        "label",
        "photo",
        "confidence",
        "source",
        "model_version",
        "review_state",
        "reviewed_by",
    ]
    list_filter = ["review_state", "source", ConfidenceFilter, "label"]
    list_select_related = ["label", "photo", "reviewed_by"]
    search_fields = ["label__name", "photo__original_name"]
    autocomplete_fields = ["label"]
    raw_id_fields = ["photo"]
    readonly_fields = ["reviewed_by", "reviewed_at", "created_at"]
    actions = ["accept_labels", "reject_labels"]

    @admin.action(description="Accept selected labels")
    def accept_labels(
        self, request: HttpRequest, queryset: QuerySet[PhotoLabel]
    ) -> None:
        count = review_labels(queryset, PhotoLabel.ReviewState.ACCEPTED, request.user)
        self.message_user(request, f"Accepted {count} label(s).")

    @admin.action(description="Reject selected labels")
    def reject_labels(
        self, request: HttpRequest, queryset: QuerySet[PhotoLabel]
    ) -> None:
        count = review_labels(queryset, PhotoLabel.ReviewState.REJECTED, request.user)
        self.message_user(request, f"Rejected {count} label(s).")

    def save_model(
        self, request: HttpRequest, obj: PhotoLabel, form: Any, change: bool
    ) -> None:
        if not change or {"label", "confidence"} & set(form.changed_data):
            obj.source = PhotoLabel.Source.HUMAN
            obj.model_version = ""
        obj.reviewed_by = request.user  # type: ignore[assignment]
        obj.reviewed_at = timezone.now()
        super().save_model(request, obj, form, change)


@admin.register(Label)
class LabelAdmin(admin.ModelAdmin[Label]):
    list_display = ["name", "photo_count"]
    search_fields = ["name"]
    filter_horizontal = ["parents"]

    def get_queryset(self, request: HttpRequest) -> QuerySet[Label]:
        return super().get_queryset(request).annotate(photo_total=Count("photo_labels"))

    @admin.display(description="Photos", ordering="photo_total")
    def photo_count(self, label: Label) -> int:
        return label.photo_total  # type: ignore[attr-defined,no-any-return]


@admin.register(PendingCallback)
class PendingCallbackAdmin(admin.ModelAdmin[PendingCallback]):
    """Show labels waiting for their photo; only the callbacks change them."""

    list_display = ["key", "model_version", "received_at"]
    search_fields = ["key"]
    readonly_fields = ["bucket", "key", "model_version", "labels", "received_at"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(
        self, request: HttpRequest, obj: PendingCallback | None = None
    ) -> bool:
        return False
