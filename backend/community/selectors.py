"""A volunteer's standing and the leaderboards, read from the points totals; the streak of
active days; and the check that the incremental totals equal a recomputation."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

from django.db import connection
from django.db.models.functions import TruncDate
from django.utils import timezone

from backend.accounts.models import User
from backend.community.models import PointAward, PointTotal
from backend.community.points import Kind, Period, period_start
from backend.tasks.models import Task, TaskStatus

# Looking further back than this for a streak would cost more than it tells.
STREAK_WINDOW_DAYS = 366
BOARD_SIZE = 50
MAX_BOARD_SIZE = 200

# Who may appear on a board: people who chose to, and neither banned, imported nor gone.
# The others, as the partial index user_unlisted has them (imported authors never have
# points, so they need no discounting).
_UNLISTED_SQL = "(NOT u.show_on_leaderboard OR NOT u.is_active OR u.is_banned)"
_LISTED = {
    "user__show_on_leaderboard": True,
    "user__is_active": True,
    "user__is_banned": False,
    "user__is_imported": False,
}


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


@dataclass(frozen=True)
class Board:
    period: Period
    lang: str  # "" for all languages
    start: date


def board(period: Period | str, lang: str = "", *, today: date | None = None) -> Board:
    """The board of the current `period` (UTC) in `lang`."""
    period = Period(period)
    return Board(period, lang, period_start(period, today or timezone.now().date()))


@dataclass
class Entry:
    rank: int
    user_id: Any
    name: str
    points: int
    tasks: int
    breakdown: dict[str, int] = field(default_factory=dict)


def leaderboard(which: Board, *, limit: int = BOARD_SIZE) -> list[Entry]:
    """The top `limit` listed volunteers of a board; equal points share a rank. One query."""
    totals = (
        PointTotal.objects.filter(
            period=which.period, lang=which.lang, start=which.start, points__gt=0, **_LISTED
        )
        .select_related("user")
        .only(
            *(["points", "tasks", "user__username", "user__display_name"]),
            *(f"{kind.value}_points" for kind in Kind),
        )
        .order_by("-points", "user_id")[:limit]
    )
    entries: list[Entry] = []
    for position, total in enumerate(totals, start=1):
        tied = entries and entries[-1].points == total.points
        entries.append(
            Entry(
                rank=entries[-1].rank if tied else position,
                user_id=total.user_id,
                name=total.user.public_name,
                points=total.points,
                tasks=total.tasks,
                breakdown=total.breakdown(),
            )
        )
    return entries


@dataclass
class Standing:
    """A user's own place on a board. `rank` is where they stand among listed volunteers
    (where they would stand, if they hide themselves); None before their first points."""

    points: int
    tasks: int
    breakdown: dict[str, int]
    rank: int | None
    volunteers: int
    is_listed: bool


def standing(user: User, which: Board) -> Standing:
    """The user's points, breakdown and rank on a board, in one query.

    The rank and the number of volunteers are counts over the whole board: they come from
    the board's index alone (an index-only scan, no join), and the few people left off the
    board though they have points are then taken away, found through their own partial
    index (accounts' user_unlisted). Joining every total to its user instead cost 150 ms on
    a board of 100,000 volunteers."""
    kinds = [f"{kind.value}_points" for kind in Kind]
    bucket = "t.period = %(period)s AND t.lang = %(lang)s AND t.start = %(start)s"
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            WITH mine AS (
                SELECT points, tasks, {", ".join(kinds)} FROM community_pointtotal t
                WHERE t.user_id = %(user)s AND {bucket}
            ), board AS (
                SELECT count(*) AS everyone,
                       count(*) FILTER (WHERE t.points > (SELECT points FROM mine)) AS ahead
                FROM community_pointtotal t
                WHERE {bucket} AND t.points > 0
            ), unlisted AS (
                SELECT count(*) AS everyone,
                       count(*) FILTER (WHERE t.points > (SELECT points FROM mine)) AS ahead
                FROM {User._meta.db_table} u
                JOIN community_pointtotal t ON t.user_id = u.id AND {bucket}
                WHERE {_UNLISTED_SQL} AND t.points > 0
            )
            SELECT mine.*, board.ahead - unlisted.ahead, board.everyone - unlisted.everyone
            FROM (SELECT 1) AS one LEFT JOIN mine ON true CROSS JOIN board CROSS JOIN unlisted
            """,  # noqa: S608 (built from constants; values go in as parameters)
            {
                "user": user.pk,
                "period": which.period.value,
                "lang": which.lang,
                "start": which.start,
            },
        )
        row = cursor.fetchone()
    points, tasks, *parts, ahead, listed = row
    is_listed = _is_listed(user)
    has_points = bool(points)
    return Standing(
        points=points or 0,
        tasks=tasks or 0,
        breakdown={kind.value: value or 0 for kind, value in zip(Kind, parts, strict=True)},
        rank=ahead + 1 if has_points else None,
        volunteers=listed + (1 if has_points and not is_listed else 0),
        is_listed=is_listed,
    )


def _is_listed(user: User) -> bool:
    return (
        user.show_on_leaderboard and user.is_active and not user.is_banned and not user.is_imported
    )


# --- Consistency ---------------------------------------------------------------------------


def points_discrepancies(*, limit: int = 20) -> dict[str, list]:
    """Where the incremental bookkeeping differs from a recomputation: awards the data has
    earned that the ledger lacks or has otherwise ("awards"), and totals that differ from
    sums over the ledger ("totals"). Both empty when all is consistent."""
    from backend.community.services import BUCKETS_SQL, TOTAL_COLUMNS, expected_awards

    expected = {
        (a.kind.value, a.source_id): (a.user_id, a.lang, a.points)
        for a in expected_awards()
        if a.points
    }
    stored = {
        (kind, source): (user, lang, value)
        for kind, source, user, lang, value in PointAward.objects.values_list(
            "kind", "source_id", "user_id", "lang", "points"
        ).iterator()
    }
    awards = [
        {"award": key, "expected": expected.get(key), "stored": stored.get(key)}
        for key in sorted(expected.keys() | stored.keys(), key=str)
        if expected.get(key) != stored.get(key)
    ][:limit]
    differs = " OR ".join(f"e.{c} IS DISTINCT FROM t.{c}" for c in TOTAL_COLUMNS)
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            WITH e AS ({BUCKETS_SQL.format(source="community_pointaward")})
            SELECT coalesce(e.user_id, t.user_id), coalesce(e.lang, t.lang),
                   coalesce(e.period, t.period), coalesce(e.start, t.start),
                   e.points, t.points
            FROM e FULL OUTER JOIN community_pointtotal t
              ON (e.user_id, e.lang, e.period, e.start) = (t.user_id, t.lang, t.period, t.start)
            WHERE {differs}
            LIMIT %s
            """,  # noqa: S608 (built from constants)
            [limit],
        )
        totals = cursor.fetchall()
    return {"awards": awards, "totals": totals}
