from django.contrib import admin
from django.utils.html import format_html

from gallery.models import Photo
from gallery.storage import photo_file_url


@admin.register(Photo)
class PhotoAdmin(admin.ModelAdmin[Photo]):
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
