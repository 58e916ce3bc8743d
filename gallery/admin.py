from django.contrib import admin
from django.http import HttpRequest
from django.utils.html import format_html

from gallery.models import Photo, PhotoEvent
from gallery.storage import photo_file_url


class PhotoEventInline(admin.TabularInline[PhotoEvent, Photo]):
    model = PhotoEvent
    extra = 0
    can_delete = False
    readonly_fields = ["at", "kind", "labeler", "duration_ms", "detail", "trace_id"]

    def has_add_permission(
        self, request: HttpRequest, obj: Photo | None = None
    ) -> bool:
        return False


@admin.register(Photo)
class PhotoAdmin(admin.ModelAdmin[Photo]):
    inlines = [PhotoEventInline]
    list_display = ["preview_image", "original_name", "owner", "status", "uploaded_at"]
    list_display_links = ["preview_image", "original_name"]
    list_filter = ["status", "uploaded_at"]
    list_select_related = ["owner"]
    search_fields = ["original_name", "description", "owner__username", "sha256"]
    date_hierarchy = "uploaded_at"
    readonly_fields = [
        "preview_image",
        "owner",
        "original",
        "thumbnail",
        "preview",
        "original_name",
        "content_type",
        "size_bytes",
        "sha256",
        "width",
        "height",
        "taken_at",
        "camera",
        "uploaded_at",
        "updated_at",
    ]

    @admin.display(description="Photo")
    def preview_image(self, photo: Photo) -> str:
        return format_html(
            '<img src="{}" alt="" style="height:64px;border-radius:4px">',
            photo_file_url(photo, "thumbnail"),
        )
