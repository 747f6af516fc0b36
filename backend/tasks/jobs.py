from __future__ import annotations

from celery import shared_task

from backend.tasks import services


@shared_task
def expire_tasks_job() -> int:
    return services.expire_tasks()
