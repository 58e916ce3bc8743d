"""Consume S3's photo notifications inside the Celery worker."""

from __future__ import annotations

import logging
from typing import Any

from celery import bootsteps
from django.conf import settings
from kombu import Consumer, Queue
from kombu.message import Message

from labeling import events

logger = logging.getLogger(__name__)


class PhotoEventConsumer(bootsteps.ConsumerStep):
    """Read the SNS-fed queue of S3 notifications and queue labelling tasks."""

    def include_if(self, parent: Any) -> bool:
        # Registered with every worker; the queue is only there in AWS mode.
        return str(settings.CELERY_BROKER_URL).startswith("sqs://") and bool(
            settings.PHOTO_EVENTS_QUEUE
        )

    def get_consumers(self, channel: Any) -> list[Consumer]:
        # The queue belongs to SNS, not Celery: never declare it, and take its
        # bodies as they come (JSON, but not kombu's envelope).
        queue = Queue(settings.PHOTO_EVENTS_QUEUE, no_declare=True)
        return [
            Consumer(channel, queues=[queue], accept=None, callbacks=[self.on_message])
        ]

    def on_message(self, body: Any, message: Message) -> None:
        handle_notification(body, message)


def handle_notification(body: Any, message: Message) -> None:
    """Queue the labelling a notification asks for, then delete it."""
    message_id = message.delivery_info.get("sqs_message", {}).get("MessageId")
    try:
        queued = queue_labelling(body)
    except events.NotAnS3Event as error:
        logger.warning("Notification %s is unreadable: %s", message_id, error)
        release(message)
    except Exception:
        # Raising here would stop the worker; the message comes back.
        logger.exception("Notification %s could not be handled", message_id)
        release(message)
    else:
        logger.info("Notification %s queued %s photo(s)", message_id, queued)
        message.ack()


def queue_labelling(body: str | bytes) -> int:
    """Queue a labelling task for each photo a notification announces."""
    # Imported here: the worker imports this module before Django is set up.
    from labeling.tasks import label_stored_object

    stored = events.objects_created(body, prefix=events.PHOTO_PREFIX)
    for stored_object in stored:
        label_stored_object.delay(stored_object.bucket, stored_object.key)
    return len(stored)


def release(message: Message) -> None:
    """Give a message back to SQS without deleting it.

    kombu leaves a rejected message in a queue that has a redrive policy, so
    SQS delivers it again after the visibility timeout and, once it has been
    received SQS_MAX_RECEIVES times, moves it to the dead-letter queue.
    """
    message.reject(requeue=False)
