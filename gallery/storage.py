"""Give out addresses for photo files without ever making them public."""

from django.core.files.storage import FileSystemStorage
from django.db.models.fields.files import FieldFile
from django.urls import reverse

from gallery.models import Photo

VARIANTS = ("original", "thumbnail", "preview")


def photo_file_url(photo: Photo, variant: str) -> str:
    """Return a URL that shows this file to the photo's owner only.

    Files in a local folder go through a view that checks the owner. Files in
    S3 are fetched straight from the bucket with a presigned URL that expires
    within minutes; a thumbnail not made yet still goes through the view,
    which makes it.
    """
    field: FieldFile = getattr(photo, variant)
    if not field or isinstance(field.storage, FileSystemStorage):
        return reverse("gallery:photo_file", args=[photo.pk, variant])
    return field.storage.url(field.name)
