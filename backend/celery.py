"""The Celery application. Jobs live in each app's jobs.py (the word "task" is the volunteers')."""

import functools
import logging
import os
from typing import Any

from celery import Celery, signals
from celery.contrib.django.task import DjangoTask
from django.db import transaction
from kombu.exceptions import OperationalError

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "backend.settings")

log = logging.getLogger(__name__)


class ChorusJob(DjangoTask):
    """Jobs sent after commit by requests never fail the request that sent them.

    The request's work is committed by then; a broker that cannot be reached (Redis down,
    RabbitMQ restarting) within CELERY_BROKER_CONNECTION_TIMEOUT loses the job with an
    error in the log, and the beat jobs (reconcile_trees_job, expire_tasks_job) redo what
    it would have done. `delay()` called directly still raises, for callers that must know.
    """

    def delay_on_commit(self, *args: Any, **kwargs: Any) -> None:
        transaction.on_commit(functools.partial(self._send_after_commit, args, kwargs))

    def _send_after_commit(self, args: tuple, kwargs: dict) -> None:
        try:
            self.apply_async(args, kwargs)
        except (OperationalError, OSError) as exc:
            log.error("job %s not sent, the broker is unreachable: %s", self.name, exc)


app = Celery("chorus", task_cls=ChorusJob)
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


@signals.worker_process_init.connect
def _prepare_pool_process(**kwargs: Any) -> None:
    """What a pool process would otherwise load during some job, done as it starts: its
    memory is then there from the start (the soak measures growth after a warm-up), and no
    job waits for it. Jobs that send live updates (auto-moderation hiding a message, the
    expiry of a lease) need the channel layer: channels_redis, and through it the
    `cryptography` library, about 7 MB (backend.core.live.load_channel_layer)."""
    from backend.core import live

    live.load_channel_layer()


@signals.task_prerun.connect
def _job_started(task_id: str, **kwargs: Any) -> None:
    from backend.core import metrics

    metrics.job_started(task_id)


@signals.task_postrun.connect
def _job_finished(task_id: str, task: Any, state: str | None = None, **kwargs: Any) -> None:
    from backend.core import metrics

    metrics.job_finished(task_id, task.name, state)


@signals.task_postrun.connect
def _return_database_connections(task: Any, **kwargs: Any) -> None:
    """After each job, what Django does after each request: connections that broke or
    outlived CONN_MAX_AGE are closed, a pooled one goes back to its pool. Celery's own
    cleanup is left to CELERY_DB_REUSE_MAX (settings): in a pool process it would also
    close Django's whole connection pool after every job (celery/celery#10554), so each
    job would open a new pool, its threads and a new connection."""
    if getattr(task.request, "is_eager", False):
        return  # in the caller's process, whose connection is the caller's business
    from django.db import close_old_connections

    close_old_connections()
