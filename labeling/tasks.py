"""Label photos in the background."""

import logging

from celery import shared_task
from celery.app.task import Task
from django.conf import settings
from django.db import OperationalError

from gallery.models import Photo, PhotoEvent
from gallery.services import record_event
from labeling import services
from labeling.labelers import LabelerError, LabelerUnavailable

logger = logging.getLogger(__name__)


def queue_photo(photo_id: int, labeler_name: str = "") -> None:
    """Queue a photo for labelling and note it on its timeline."""
    record_event(photo_id, PhotoEvent.Kind.QUEUED)
    process_photo.delay(photo_id, labeler_name)


@shared_task(bind=True, max_retries=None)
def process_photo(
    self: Task[[int, str], None], photo_id: int, labeler_name: str = ""
) -> None:
    """Make thumbnails for a photo and label it."""
    try:
        services.label_photo(photo_id, labeler_name)
    except Photo.DoesNotExist:
        logger.info("Photo %s is gone; nothing to label", photo_id)
    except (LabelerUnavailable, OSError, OperationalError) as error:
        attempts = self.request.retries + 1
        if attempts > settings.LABEL_TASK_MAX_RETRIES:
            reason = f"{error} (gave up after {attempts} attempts)"
            services.mark_failed(photo_id, reason)
            return
        countdown = min(2**attempts, 60)
        services.note_retry(photo_id, str(error), countdown)
        raise self.retry(exc=error, countdown=countdown) from error
    except LabelerError as error:
        services.mark_failed(photo_id, str(error))
    except Exception:
        # Anything else is a bug; the photo must not look pending for ever.
        logger.exception("Labelling photo %s failed unexpectedly", photo_id)
        services.mark_failed(photo_id, "Labelling failed unexpectedly.")


@shared_task(bind=True, max_retries=None)
def label_stored_object(self: Task[[str, str], None], bucket: str, key: str) -> None:
    """Start labelling the photo S3 stored at key, once its row exists."""
    if bucket != settings.PHOTOS_BUCKET:
        logger.warning("Notification for %s in unknown bucket %s ignored", key, bucket)
        return
    photo = Photo.objects.filter(original=key).values("pk", "status").first()
    if photo is None:
        # S3 can announce an object before the upload's transaction commits.
        waited = seconds_waited(self.request.retries)
        if waited >= settings.PHOTO_EVENT_WAIT_SECONDS:
            logger.warning("No photo has key %s after %s s; giving up", key, waited)
            return
        logger.info("No photo has key %s yet; waiting for its row", key)
        raise self.retry(countdown=wait_countdown(self.request.retries))
    if photo["status"] != Photo.Status.PENDING:
        # S3 delivers at least once, so the same object can be announced twice.
        logger.info("Photo %s is already %s", photo["pk"], photo["status"])
        return
    logger.info("Photo %s stored at %s; queueing its labelling", photo["pk"], key)
    queue_photo(photo["pk"])


def wait_countdown(retries: int) -> int:
    """Return the seconds to wait before looking for a photo's row again."""
    return int(min(2**retries, 60))


def seconds_waited(retries: int) -> int:
    return sum(wait_countdown(attempt) for attempt in range(retries))
