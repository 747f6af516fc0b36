"""Structured logs: one JSON object per line (LOG_FORMAT=json; settings.LOGGING wires it).

Every line has `timestamp` (UTC, RFC 3339), `level`, `logger` and `message`; a line logged
while a request is served also has its `method`, `path` and `user_id` (when the request
has already looked its user up), one logged inside a Celery job its `job` and `job_id`, and
an exception its traceback as text in `exc_info`. The access log (`chorus.access`, see
backend.core.monitoring) adds `route`, `status` and `duration_ms`.

Nothing here imports Django's models: logging is configured before the apps load.
"""

from __future__ import annotations

import logging
import logging.config
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any

from pythonjsonlogger.core import RESERVED_ATTRS
from pythonjsonlogger.orjson import OrjsonFormatter

if TYPE_CHECKING:
    from django.http import HttpRequest

# The request this thread (or task) is serving; set by RequestMonitoringMiddleware.
current_request: ContextVar[HttpRequest | None] = ContextVar("current_request", default=None)


def configure(config: dict[str, Any]) -> None:
    """Django's LOGGING_CONFIG (and Celery's, in backend/celery.py): settings.LOGGING, and in
    json mode Python's warnings through it too, so that nothing on stderr is plain text."""
    from django.conf import settings

    logging.config.dictConfig(config)
    logging.captureWarnings(settings.LOG_FORMAT == "json")


class JsonFormatter(OrjsonFormatter):
    """python-json-logger's orjson formatter with Chorus's field names."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("fmt", "%(levelname)s %(name)s %(message)s")
        kwargs.setdefault("rename_fields", {"levelname": "level", "name": "logger"})
        kwargs.setdefault("timestamp", True)
        # Not data for a log line: django.request's request object and django.server's
        # time (for other handlers), uvicorn's message again with terminal colours.
        kwargs.setdefault(
            "reserved_attrs", [*RESERVED_ATTRS, "request", "server_time", "color_message"]
        )
        super().__init__(**kwargs)


class ContextFilter(logging.Filter):
    """Adds the request (method, path, user) or Celery job (name, id) a line belongs to."""

    def filter(self, record: logging.LogRecord) -> bool:
        request = current_request.get()
        if request is not None and not hasattr(record, "method"):
            record.method = request.method
            record.path = request.path
            user_id = request_user_id(request)
            if user_id is not None:
                record.user_id = user_id
        job = _current_job()
        if job is not None:
            record.job, record.job_id = job
        return True


def request_user_id(request: HttpRequest) -> str | None:
    """The signed-in user's id, but only if the request already looked the user up: the
    log never costs a session or database query."""
    from django.utils.functional import empty

    user = request.__dict__.get("user")
    if user is None or getattr(user, "_wrapped", None) is empty:
        return None
    pk = getattr(user, "pk", None)
    return None if pk is None else str(pk)


def _current_job() -> tuple[str, str] | None:
    from celery import current_task

    task = current_task._get_current_object()  # None outside a job
    if task is None or task.request.id is None:
        return None
    return task.name, task.request.id
