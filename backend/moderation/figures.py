"""Reads behind the moderators' figures: the trollboard, quality and platform statistics.

Every figure is one aggregate query (or a handful per page) however many volunteers,
messages and tasks there are: no loop over users runs a query.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any
from uuid import UUID

from django.db import connection
from django.db.models import Avg, Count, F, IntegerField, Q, Value
from django.db.models.functions import Cast, Floor, Least, TruncDate
from django.utils import timezone

from backend.core.errors import InvalidInput
from backend.tasks.models import SkipReason, Task, TaskStatus, TaskType
from backend.trees.models import Message, MessageTree
from backend.trees.rules import State

WINDOWS = ("day", "week", "month", "all")
_WINDOW_DAYS = {"day": 1, "week": 7, "month": 30}
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

# Review labels that flag a message as harmful rather than merely poor.
FLAG_LABELS = ("not_appropriate", "hate_speech", "sexual_content", "pii")
# How much each kind of signal weighs on the trollboard: a report is a person going out of
# their way, a flag or spam verdict a reviewer's judgement, a down-vote or a disagreement
# with the crowd a weaker hint on its own.
WEIGHTS = {
    "reports": 3,
    "flags": 2,
    "spam": 2,
    "downvotes": 1,
    "disagreeing_reviews": 1,
    "rankings_against": 1,
}


def window_start(window: str, *, now: datetime | None = None) -> datetime:
    """The first moment a window counts (InvalidInput for an unknown window)."""
    if window not in WINDOWS:
        raise InvalidInput(
            "Unknown time window.", fields={"window": [f"Must be one of {', '.join(WINDOWS)}."]}
        )
    if window == "all":
        return _EPOCH
    return (now or timezone.now()) - timedelta(days=_WINDOW_DAYS[window])


@dataclass(frozen=True)
class TrollRow:
    user_id: UUID
    username: str
    is_banned: bool
    reports: int
    flags: int
    spam: int
    downvotes: int
    decided_reviews: int
    disagreeing_reviews: int
    rankings: int
    rankings_against: int
    ranking_agreement: float | None
    score: int

    @property
    def review_disagreement(self) -> float | None:
        return self.disagreeing_reviews / self.decided_reviews if self.decided_reviews else None


# One row per signal (UNION ALL), summed per user: a single scan of each table. A review's
# own verdict is OpenAssistant's acceptance rule applied to that review alone; it disagrees
# when it differs from the message's decided result.
_FLAGGED = ", ".join(f"COALESCE((v.values->>'{name}')::float, 0)" for name in FLAG_LABELS)
_TROLLBOARD_SQL = f"""
WITH signals AS (
    SELECT m.author_id AS user_id, 1 AS reports, 0 AS flags, 0 AS spam, 0 AS downvotes,
           0 AS decided, 0 AS disagreeing, 0 AS rankings, 0 AS against,
           NULL::float AS agreement
    FROM moderation_report r JOIN trees_message m ON m.id = r.message_id
    WHERE r.created_at >= %(since)s
  UNION ALL
    SELECT m.author_id, 0,
           (GREATEST({_FLAGGED}) >= 0.5)::int,
           (COALESCE((v.values->>'spam')::float, 0) >= 0.5)::int,
           0, 0, 0, 0, 0, NULL
    FROM trees_review v JOIN trees_message m ON m.id = v.message_id
    WHERE NOT v.is_stale AND v.created_at >= %(since)s
  UNION ALL
    SELECT m.author_id, 0, (x.emoji = 'red_flag')::int, 0, (x.emoji = '-1')::int,
           0, 0, 0, 0, NULL
    FROM trees_reaction x JOIN trees_message m ON m.id = x.message_id
    WHERE x.emoji IN ('red_flag', '-1') AND x.created_at >= %(since)s
  UNION ALL
    SELECT v.user_id, 0, 0, 0, 0, 1,
           ((1 - COALESCE((v.values->>'spam')::float, 0)
               - COALESCE((v.values->>'lang_mismatch')::float, 0) > t.acceptance_threshold)
            <> m.review_result)::int,
           0, 0, NULL
    FROM trees_review v
    JOIN trees_message m ON m.id = v.message_id
    JOIN trees_messagetree t ON t.id = m.tree_id
    WHERE NOT v.is_stale AND m.review_result IS NOT NULL AND v.created_at >= %(since)s
  UNION ALL
    SELECT g.user_id, 0, 0, 0, 0, 0, 0, 1, (g.agreement_with_consensus < 0)::int,
           g.agreement_with_consensus
    FROM trees_ranking g
    WHERE NOT g.is_stale AND g.agreement_with_consensus IS NOT NULL
      AND g.created_at >= %(since)s
), totals AS (
    SELECT user_id, SUM(reports) AS reports, SUM(flags) AS flags, SUM(spam) AS spam,
           SUM(downvotes) AS downvotes, SUM(decided) AS decided,
           SUM(disagreeing) AS disagreeing, SUM(rankings) AS rankings,
           SUM(against) AS against, AVG(agreement) AS agreement
    FROM signals WHERE user_id IS NOT NULL GROUP BY user_id
)
SELECT u.id, u.username, u.is_banned, t.reports, t.flags, t.spam, t.downvotes,
       t.decided, t.disagreeing, t.rankings, t.against, t.agreement,
       %(w_reports)s * t.reports + %(w_flags)s * t.flags + %(w_spam)s * t.spam
       + %(w_downvotes)s * t.downvotes + %(w_disagreeing_reviews)s * t.disagreeing
       + %(w_rankings_against)s * t.against AS score
FROM totals t JOIN accounts_user u ON u.id = t.user_id
WHERE CASE WHEN %(against_only)s
            THEN t.reports + t.flags + t.spam + t.downvotes + t.disagreeing + t.against > 0
            ELSE t.decided + t.rankings > 0 END
ORDER BY score DESC, u.username
LIMIT %(limit)s
"""  # noqa: S608 - the interpolated names are this module's constants


def trollboard(*, window: str = "week", limit: int = 50) -> list[TrollRow]:
    """Users ranked by the signals against them in the window: reports on their messages,
    reviews flagging them (harmful or spam), red-flag and thumbs-down reactions, and their
    own reviews and rankings that went against the crowd. One query."""
    return _signal_totals(window=window, against_only=True, limit=limit)


def _signal_totals(*, window: str, against_only: bool, limit: int | None) -> list[TrollRow]:
    """The trollboard's sums per user: with `against_only`, the users with a signal against
    them; otherwise everyone with a decided review or a scored ranking. LIMIT NULL is all."""
    params: dict[str, Any] = {
        "since": window_start(window),
        "limit": limit,
        "against_only": against_only,
    }
    params.update({f"w_{name}": weight for name, weight in WEIGHTS.items()})
    with connection.cursor() as cursor:
        cursor.execute(_TROLLBOARD_SQL, params)
        rows = cursor.fetchall()
    return [
        TrollRow(
            user_id=row[0],
            username=row[1],
            is_banned=row[2],
            reports=int(row[3]),
            flags=int(row[4]),
            spam=int(row[5]),
            downvotes=int(row[6]),
            decided_reviews=int(row[7]),
            disagreeing_reviews=int(row[8]),
            rankings=int(row[9]),
            rankings_against=int(row[10]),
            ranking_agreement=row[11],
            score=int(row[12]),
        )
        for row in rows
    ]


# --- Quality -------------------------------------------------------------------------------

AGREEMENT_BUCKETS = 10


def agreement_histogram() -> list[int]:
    """How many scored sibling sets have a Kendall's W in each tenth of [0, 1] (one query,
    one row per bucket)."""
    counts = [0] * AGREEMENT_BUCKETS
    bucket = Least(
        Cast(Floor(F("replies_agreement") * AGREEMENT_BUCKETS), IntegerField()),
        Value(AGREEMENT_BUCKETS - 1),
    )
    rows = (
        Message.objects.filter(replies_agreement__isnull=False)
        .annotate(bucket=bucket)
        .values("bucket")
        .annotate(n=Count("id"))
        .order_by()
    )
    for row in rows:
        counts[max(row["bucket"], 0)] += row["n"]
    return counts


def worst_sibling_sets(*, limit: int = 10) -> list[Message]:
    """The parents whose replies' rankings agree least (lowest Kendall's W), with the tree."""
    return list(
        Message.objects.filter(replies_agreement__isnull=False)
        .select_related("tree")
        .only("id", "text", "lang", "tree__id", "tree__state", "replies_agreement", "ranking_count")
        .order_by("replies_agreement", "id")[:limit]
    )


@dataclass(frozen=True)
class VolunteerAgreement:
    user_id: UUID
    username: str
    rankings: int
    ranking_agreement: float | None
    decided_reviews: int
    disagreeing_reviews: int

    @property
    def review_disagreement(self) -> float | None:
        return self.disagreeing_reviews / self.decided_reviews if self.decided_reviews else None


def volunteer_agreement(*, window: str = "all", limit: int = 20, minimum: int = 3) -> dict:
    """The volunteers whose rankings agree least with the consensus and whose reviews most
    often went against the decided verdict, among those with at least `minimum` of them.
    Read from the trollboard's query (one query), unweighted."""
    rows = _signal_totals(window=window, against_only=False, limit=None)
    people = [
        VolunteerAgreement(
            user_id=r.user_id,
            username=r.username,
            rankings=r.rankings,
            ranking_agreement=r.ranking_agreement,
            decided_reviews=r.decided_reviews,
            disagreeing_reviews=r.disagreeing_reviews,
        )
        for r in rows
    ]
    rankers = [p for p in people if p.rankings >= minimum and p.ranking_agreement is not None]
    reviewers = [p for p in people if p.decided_reviews >= minimum]
    return {
        "rankings": sorted(rankers, key=lambda p: (p.ranking_agreement, p.username))[:limit],
        "reviews": sorted(reviewers, key=lambda p: (-(p.review_disagreement or 0), p.username))[
            :limit
        ],
    }


def acceptance_rates() -> list[dict[str, Any]]:
    """Per language and role: messages accepted, rejected and still in review (one query)."""
    rows = (
        Message.objects.filter(deleted=False)
        .values("lang", "role")
        .annotate(
            accepted=Count("id", filter=Q(review_result=True)),
            rejected=Count("id", filter=Q(review_result=False)),
            pending=Count("id", filter=Q(review_result=None)),
        )
        .order_by("lang", "role")
    )
    return [
        {
            **row,
            "rate": row["accepted"] / decided
            if (decided := row["accepted"] + row["rejected"])
            else None,
        }
        for row in rows
    ]


def skip_rates(*, window: str = "all") -> list[dict[str, Any]]:
    """Per task type: tasks handed out, skipped, the share skipped and the count per reason.
    A task still leased is not counted: nobody has decided about it yet (one query)."""
    reasons = {
        f"reason_{reason.value}": Count("id", filter=Q(skip_reason=reason.value))
        for reason in SkipReason
    }
    rows = (
        Task.objects.filter(created_at__gte=window_start(window))
        .exclude(status=TaskStatus.LEASED)
        .values("type")
        .annotate(
            handed_out=Count("id"),
            skipped=Count("id", filter=Q(status=TaskStatus.SKIPPED)),
            **reasons,
        )
        .order_by("type")
    )
    out = []
    for row in rows:
        counts: dict[str, Any] = dict(row)
        out.append(
            {
                "type": row["type"],
                "handed_out": row["handed_out"],
                "skipped": row["skipped"],
                "rate": row["skipped"] / row["handed_out"],
                "reasons": {r.value: counts[f"reason_{r.value}"] for r in SkipReason},
            }
        )
    return out


# --- Statistics ----------------------------------------------------------------------------

BACKLOG_STATES = {
    "in_review": (State.INITIAL_PROMPT_REVIEW,),
    "in_lottery": (State.PROMPT_LOTTERY_WAITING,),
    "growing": (State.GROWING,),
    "waiting_for_ranking": (State.RANKING, State.BACKLOG_RANKING),
}


def trees_by_state_and_language() -> list[dict[str, Any]]:
    """[{state, lang, trees}] (one query)."""
    rows = MessageTree.objects.values("state", "lang").annotate(trees=Count("id")).order_by()
    return [dict(row) for row in rows]


def backlog(by_state: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per language, the trees waiting at each step (from trees_by_state_and_language)."""
    langs: dict[str, dict[str, Any]] = {}
    for row in by_state:
        entry = langs.setdefault(
            row["lang"], {"lang": row["lang"], **dict.fromkeys(BACKLOG_STATES, 0)}
        )
        for name, states in BACKLOG_STATES.items():
            if row["state"] in states:
                entry[name] += row["trees"]
    return sorted(langs.values(), key=lambda e: e["lang"])


def contributions(*, days: int, today: date | None = None) -> dict[str, Any]:
    """Submitted tasks in the last `days` days (today included): per day, every day present
    (zero when nothing happened), and per task type (one query)."""
    today = today or timezone.localdate()
    first = today - timedelta(days=days - 1)
    start = datetime.combine(first, datetime.min.time(), tzinfo=timezone.get_current_timezone())
    rows = (
        Task.objects.filter(status=TaskStatus.SUBMITTED, done_at__gte=start)
        .annotate(day=TruncDate("done_at"))
        .values("day", "type")
        .annotate(n=Count("id"))
        .order_by()
    )
    per_day = {first + timedelta(days=i): 0 for i in range(days)}
    per_type = dict.fromkeys(TaskType.values, 0)
    for row in rows:
        if row["day"] in per_day:
            per_day[row["day"]] += row["n"]
            per_type[row["type"]] = per_type.get(row["type"], 0) + row["n"]
    return {"per_day": list(per_day.items()), "per_type": list(per_type.items())}


def active_volunteers(*, now: datetime | None = None) -> dict[str, int]:
    """Volunteers who submitted at least one task in the last day, week and month (one query)."""
    now = now or timezone.now()
    counts = Task.objects.filter(
        status=TaskStatus.SUBMITTED, done_at__gte=now - timedelta(days=30)
    ).aggregate(
        **{
            window: Count("user", distinct=True, filter=Q(done_at__gte=now - timedelta(days=days)))
            for window, days in _WINDOW_DAYS.items()
        }
    )
    return {window: int(counts[window]) for window in _WINDOW_DAYS}


def ranking_agreement_overall() -> dict[str, Any]:
    """The mean Kendall's W over scored sibling sets and the number of sets (one query)."""
    return Message.objects.filter(replies_agreement__isnull=False).aggregate(
        sets=Count("id"), mean=Avg(F("replies_agreement"))
    )


CONTRIBUTION_DAYS = (30, 90)


def parse_days(raw: str) -> int:
    """The contributions chart's span, 30 or 90 days (InvalidInput otherwise)."""
    if raw not in {str(days) for days in CONTRIBUTION_DAYS}:
        raise InvalidInput("Unknown span.", fields={"days": ["Must be 30 or 90."]})
    return int(raw)
