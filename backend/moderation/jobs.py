"""Celery jobs of moderation: thin wrappers that take ids and call one service."""

from __future__ import annotations

import logging
from uuid import UUID

from celery import Task, shared_task

from backend.moderation import automod

log = logging.getLogger(__name__)


@shared_task(bind=True, acks_late=True, max_retries=5)
def automoderate_job(self: Task, message_id: str, trigger: str) -> str | None:
    """Count a message's red flags or skips after an event and act at the threshold. Runs
    after the event's commit; a failure never reaches the volunteer who caused it."""
    try:
        return automod.check_message(message_id=UUID(message_id), trigger=trigger)
    except Exception as error:
        if self.request.is_eager:  # in the web process: log it; the next event re-counts
            log.exception("auto-moderation of message %s failed", message_id)
            return None
        raise self.retry(exc=error, countdown=30) from error
