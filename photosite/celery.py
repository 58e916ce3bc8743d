"""Configure the Celery application that runs photosite's background work."""

import os

from celery import Celery

from labeling.consumers import PhotoEventConsumer

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "photosite.settings")

app = Celery("photosite")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
# Consumes S3's photo notifications beside the tasks, when a queue is set.
app.steps["consumer"].add(PhotoEventConsumer)
