"""Celery jobs for tree upkeep: thin wrappers that take ids and call one service."""

from __future__ import annotations

from uuid import UUID

from celery import shared_task

from backend.trees import services


@shared_task(acks_late=True)
def score_tree_job(tree_id: str) -> str:
    return str(services.score_tree(tree_id=UUID(tree_id)))


@shared_task(acks_late=True)
def promote_from_lottery_job(lang: str) -> int:
    return len(services.promote_from_lottery(lang=lang))


@shared_task
def reconcile_trees_job() -> dict[str, int]:
    return services.reconcile_trees()
