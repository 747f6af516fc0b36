"""Celery jobs for dataset exports: thin wrappers that take ids and call one service."""

from __future__ import annotations

from uuid import UUID

from celery import shared_task

from backend.exports import services


# No automatic retry: a failed export is marked failed and a person starts a new one (a
# retry would need the row back in "pending", which would hide that the first run failed).
@shared_task(acks_late=True)
def run_export_job(export_id: str) -> int | None:
    return services.run_export(export_id=UUID(export_id)).version
