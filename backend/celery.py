"""The Celery application. Jobs live in each app's jobs.py (the word "task" is the volunteers')."""

import logging
import os
from typing import Any

from celery import Celery, signals

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "backend.settings")

app = Celery("chorus")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks(related_name="jobs")


@signals.setup_logging.connect
def configure_logging(loglevel: int | None = None, **kwargs: Any) -> None:
    """Workers and beat log as the web processes do (settings.LOGGING: LOG_FORMAT, LOG_LEVEL)
    instead of through Celery's own handlers; `-l` can only make them more verbose."""
    from django.conf import settings

    from backend.core.logs import configure

    configure(settings.LOGGING)
    root = logging.getLogger()
    if loglevel is not None and loglevel < root.getEffectiveLevel():
        root.setLevel(loglevel)


@signals.task_prerun.connect
def _job_started(task_id: str, **kwargs: Any) -> None:
    from backend.core import metrics

    metrics.job_started(task_id)


@signals.task_postrun.connect
def _job_finished(task_id: str, task: Any, state: str | None = None, **kwargs: Any) -> None:
    from backend.core import metrics

    metrics.job_finished(task_id, task.name, state)
