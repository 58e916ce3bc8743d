"""Start labelling each photo once its upload has committed."""

from django.conf import settings
from django.db import transaction
from django.dispatch import receiver

from gallery.models import Photo
from gallery.signals import photo_uploaded
from labeling.callbacks import apply_pending_labels
from labeling.tasks import queue_photo


@receiver(photo_uploaded, dispatch_uid="labeling.queue_new_photo")
def queue_new_photo(sender: type[Photo], photo: Photo, **kwargs: object) -> None:
    # In AWS mode S3's own event notification starts the work instead.
    if settings.PHOTO_EVENTS == "commit":
        photo_id = photo.pk
        transaction.on_commit(lambda: queue_photo(photo_id))


@receiver(photo_uploaded, dispatch_uid="labeling.apply_labels_sent_early")
def apply_labels_sent_early(
    sender: type[Photo], photo: Photo, **kwargs: object
) -> None:
    # After the commit, never inside the upload's transaction: a callback that
    # looked for this row before the commit keeps its labels and looks again
    # after keeping them, so one of the two looks sees the other's row. Robust,
    # because the photo is stored by then and a failure must not undo that.
    transaction.on_commit(lambda: apply_pending_labels(photo), robust=True)
