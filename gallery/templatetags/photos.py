from django import template

from gallery.models import Photo
from gallery.storage import photo_file_url

register = template.Library()


@register.simple_tag
def photo_url(photo: Photo, variant: str = "thumbnail") -> str:
    return photo_file_url(photo, variant)
