"""Configure the Celery application that runs photosite's background work."""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "photosite.settings")

app = Celery("photosite")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
