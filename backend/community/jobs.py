"""Celery jobs for points: thin wrappers that take ids and call one service."""

from __future__ import annotations

from uuid import UUID

from celery import Task as CeleryTask
from celery import shared_task

from backend.community import services


@shared_task(bind=True, acks_late=True, max_retries=8)
def award_scoring_bonuses_job(self: CeleryTask, tree_id: str) -> int:
    """Queued with the scoring job; if a worker runs it first, it waits and tries again."""
    awarded = services.award_scoring_bonuses(tree_id=UUID(tree_id))
    if awarded is not None:
        return awarded
    if self.request.is_eager:
        return 0  # eager jobs run in order, so the scoring job failed; the sweep follows up
    raise self.retry(countdown=min(5 * 2**self.request.retries, 600))


@shared_task(acks_late=True)
def award_decision_bonuses_job(message_id: str) -> int:
    return services.award_decision_bonuses(message_id=UUID(message_id))


@shared_task
def award_recent_scoring_bonuses_job() -> int:
    return services.award_recent_scoring_bonuses()
