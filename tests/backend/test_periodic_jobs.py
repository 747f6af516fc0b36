"""The periodic jobs beat sends: a late copy is dropped, never queued behind the next."""

from __future__ import annotations

from celery.beat import ScheduleEntry

from backend.celery import app


def test_each_periodic_job_expires_when_its_next_run_is_due() -> None:
    schedule = app.conf.beat_schedule
    assert set(schedule) >= {"reconcile-trees", "expire-tasks"}
    for name, spec in schedule.items():
        entry = ScheduleEntry(name=name, app=app, **spec)
        # What beat passes to apply_async with each message it sends.
        expires = entry.options["expires"]
        assert 0 < expires <= entry.schedule.run_every.total_seconds(), name
