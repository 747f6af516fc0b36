"""Celery jobs for dataset exports: thin wrappers that take ids and call one service."""

from __future__ import annotations

from uuid import UUID

from celery import shared_task

from backend.exports import publishing, selectors, services


# No automatic retry: a failed export is marked failed and a person starts a new one (a
# retry would need the row back in "pending", which would hide that the first run failed).
@shared_task(acks_late=True)
def run_export_job(export_id: str) -> int | None:
    return services.run_export(export_id=UUID(export_id)).version


@shared_task
def recover_stale_exports_job() -> int:
    lost = services.recover_stale_exports()
    services.requeue_waiting_exports()
    return lost


# The token comes from settings on the worker, never through the broker. A failed push
# changes nothing and can simply be queued again, so there is no automatic retry.
@shared_task(acks_late=True)
def push_export_job(
    export_id: str, repo_id: str | None = None, private: bool = True, revision: str | None = None
) -> str:
    pushed = publishing.push_export(
        export=selectors.get_export(UUID(export_id)),
        repo_id=repo_id or publishing.default_repo(),
        token=publishing.default_token(),
        private=private,
        revision=revision,
    )
    return pushed.pushed_revision
