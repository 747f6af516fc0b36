"""An export's progress: stored as it runs, about every 1% of the messages, never 1.0
before the version is published."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from backend.exports.models import DatasetExport, ExportStatus
from backend.exports.services import _Progress

pytestmark = pytest.mark.django_db


def stored(export: DatasetExport) -> float:
    export.refresh_from_db()
    return export.progress


def test_progress_is_stored_as_messages_are_read_and_stops_short_of_done():
    export = DatasetExport.objects.create(seed=1, status=ExportStatus.RUNNING)
    progress = _Progress(export, total=1000)

    progress.advance(5)
    assert stored(export) == 0.0  # under one step: not written yet
    progress.advance(245)
    assert stored(export) == 0.25
    progress.advance(750)
    assert stored(export) == 0.99  # only publishing says 1.0


def test_progress_costs_at_most_a_hundred_updates_however_many_messages():
    export = DatasetExport.objects.create(seed=1, status=ExportStatus.RUNNING)
    progress = _Progress(export, total=50_000)

    with CaptureQueriesContext(connection) as queries:
        for _ in range(50_000 // 7):
            progress.advance(7)

    assert 95 <= len(queries) <= 100
