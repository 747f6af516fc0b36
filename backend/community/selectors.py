"""A volunteer's standing: streak of active days and rank among volunteers.

These are computed from the task table for now; the leaderboards (points per day, week,
month, kept up to date incrementally) will replace the rank's source.
"""

from __future__ import annotations

from datetime import date, timedelta

from django.db import connection
from django.db.models.functions import TruncDate
from django.utils import timezone

from backend.accounts.models import User
from backend.tasks.models import Task, TaskStatus

# Looking further back than this for a streak would cost more than it tells.
STREAK_WINDOW_DAYS = 366


def streak_days(user: User, *, today: date | None = None) -> int:
    """Consecutive days (UTC) with at least one submitted task, ending today or yesterday:
    a streak is not broken until a whole day passes without work."""
    today = today or timezone.now().date()
    since = today - timedelta(days=STREAK_WINDOW_DAYS)
    days = set(
        Task.objects.filter(user=user, status=TaskStatus.SUBMITTED, done_at__date__gte=since)
        .annotate(day=TruncDate("done_at"))
        .values_list("day", flat=True)
        .distinct()
    )
    day = today if today in days else today - timedelta(days=1)
    count = 0
    while day in days:
        count += 1
        day -= timedelta(days=1)
    return count


def contribution_rank(user: User) -> tuple[int | None, int]:
    """(rank, volunteers): the user's place by submitted tasks among everyone who has
    submitted one (1 is the most), None before their first."""
    with connection.cursor() as cursor:
        cursor.execute(
            """
            WITH counts AS (
                SELECT user_id, count(*) AS n FROM tasks_task
                WHERE status = %(submitted)s GROUP BY user_id
            )
            SELECT
                (SELECT n FROM counts WHERE user_id = %(user)s),
                (SELECT count(*) FROM counts WHERE n > coalesce(
                    (SELECT n FROM counts WHERE user_id = %(user)s), 0)),
                (SELECT count(*) FROM counts)
            """,
            {"submitted": TaskStatus.SUBMITTED.value, "user": user.pk},
        )
        mine, ahead, total = cursor.fetchone()
    if not mine:
        return None, total
    return ahead + 1, total
