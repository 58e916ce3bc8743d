"""Label photos in the background."""

import logging

from celery import shared_task
from celery.app.task import Task
from django.conf import settings

from gallery.models import Photo
from labeling import services
from labeling.labelers import LabelerError, LabelerUnavailable

logger = logging.getLogger(__name__)


@shared_task(bind=True, max_retries=None)
def process_photo(self: Task, photo_id: int, labeler_name: str = "") -> None:
    """Make thumbnails for a photo and label it."""
    try:
        services.label_photo(photo_id, labeler_name)
    except Photo.DoesNotExist:
        logger.info("Photo %s is gone; nothing to label", photo_id)
    except (LabelerUnavailable, OSError) as error:
        attempts = self.request.retries + 1
        if attempts > settings.LABEL_TASK_MAX_RETRIES:
            reason = f"{error} (gave up after {attempts} attempts)"
            services.mark_failed(photo_id, reason)
            return
        logger.warning("Labelling photo %s will be retried: %s", photo_id, error)
        raise self.retry(exc=error, countdown=min(2**attempts, 60))
    except LabelerError as error:
        services.mark_failed(photo_id, str(error))
