"""Awarding points: when a task is submitted, when a review decides a message, when a tree
is scored; and the backfill that awards what existing data earned.

Every award goes through `store_awards`: one statement inserts the awards into the ledger
(skipping any already there, so each is given once) and adds the new ones to the user's
totals for each period and for their language and all languages. Totals rows are locked
in one order (user, language, period, start), so concurrent awards never deadlock.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

from django.db import connection, transaction
from django.db.models import Exists, Max, OuterRef, QuerySet
from django.utils import timezone

from backend.community import points
from backend.community.points import TASK_KINDS, Kind
from backend.tasks.models import RANK_TYPES, Task, TaskStatus
from backend.trees.models import Message, MessageTree, Ranking, Review
from backend.trees.rules import State

log = logging.getLogger(__name__)

# Rows read per query by the backfill.
BATCH = 2000


@dataclass(frozen=True)
class Award:
    user_id: UUID
    lang: str
    kind: Kind
    points: int
    source_id: UUID
    awarded_at: datetime


# The per-bucket sums of a relation of awards (user_id, lang, kind, points, awarded_at):
# each award counts in its language and in "" (all), in its UTC day, ISO week, month and
# all time. Shared by the incremental update, the rebuild and the consistency check.
_KIND_SUMS = ",\n".join(
    f"coalesce(sum(a.points) FILTER (WHERE a.kind = '{kind.value}'), 0) AS {kind.value}_points"
    for kind in Kind
)
_TASK_KINDS = ", ".join(f"'{kind.value}'" for kind in sorted(TASK_KINDS))
BUCKETS_SQL = f"""
SELECT a.user_id, l.lang, p.period, p.start,
       sum(a.points) AS points,
       count(*) FILTER (WHERE a.kind IN ({_TASK_KINDS})) AS tasks,
       {_KIND_SUMS}
FROM {{source}} a
CROSS JOIN LATERAL (VALUES (a.lang), ('')) AS l(lang)
CROSS JOIN LATERAL (VALUES
    ('day', (a.awarded_at AT TIME ZONE 'UTC')::date),
    ('week', date_trunc('week', a.awarded_at AT TIME ZONE 'UTC')::date),
    ('month', date_trunc('month', a.awarded_at AT TIME ZONE 'UTC')::date),
    ('all', DATE '{points.ALL_TIME_START.isoformat()}')
) AS p(period, start)
GROUP BY 1, 2, 3, 4
"""  # noqa: S608 (built from constants; values go in as parameters)
TOTAL_COLUMNS = ["points", "tasks", *(f"{kind.value}_points" for kind in Kind)]
_ADD_TOTALS_SQL = f"""
INSERT INTO community_pointtotal AS t (user_id, lang, period, start, {", ".join(TOTAL_COLUMNS)})
{BUCKETS_SQL}
ORDER BY 1, 2, 3, 4
ON CONFLICT (user_id, period, lang, start) DO UPDATE SET
{", ".join(f"{c} = t.{c} + EXCLUDED.{c}" for c in TOTAL_COLUMNS)}
"""
# Imported authors never earn points (they did no work here): the rule every award source
# follows, kept here too, as the leaderboards count on it (community.selectors.standing).
_NEW_AWARDS_SQL = """
new AS (
    INSERT INTO community_pointaward (user_id, lang, kind, points, source_id, awarded_at)
    SELECT a.* FROM unnest(
        %(users)s::uuid[], %(langs)s::varchar[], %(kinds)s::varchar[],
        %(points)s::smallint[], %(sources)s::uuid[], %(ats)s::timestamptz[]
    ) AS a(user_id, lang, kind, points, source_id, awarded_at)
    JOIN accounts_user u ON u.id = a.user_id AND NOT u.is_imported
    ON CONFLICT (kind, source_id) DO NOTHING
    RETURNING user_id, lang, kind, points, awarded_at
)
"""


def store_awards(
    awards: Iterable[Award],
    *,
    add_to_totals: bool = True,
    along_with: tuple[str, dict[str, Any]] | None = None,
) -> int:
    """Record the awards not recorded yet and add them to the totals; returns how many were
    new. Runs inside the caller's transaction. `along_with` is a data-modifying statement
    (its SQL and named parameters) run in the same round trip, as a CTE: the submission's
    own UPDATE, so that a task loop pays no extra statement for the leaderboards."""
    awards = [a for a in awards if a.points]
    params: dict[str, Any] = dict(along_with[1]) if along_with else {}
    ctes = [f"along AS ({along_with[0]})"] if along_with else []
    if awards:
        params |= {
            "users": [a.user_id for a in awards],
            "langs": [a.lang for a in awards],
            "kinds": [a.kind.value for a in awards],
            "points": [a.points for a in awards],
            "sources": [a.source_id for a in awards],
            "ats": [a.awarded_at for a in awards],
        }
        ctes.append(_NEW_AWARDS_SQL)
        if add_to_totals:
            ctes.append(f"totals AS ({_ADD_TOTALS_SQL.format(source='new')})")
    if not ctes:
        return 0
    count = "(SELECT count(*) FROM new)" if awards else "0"
    with connection.cursor() as cursor:
        # Built from this module's constants and the caller's SQL; values are parameters.
        cursor.execute(f"WITH {', '.join(ctes)} SELECT {count}", params)
        return int(cursor.fetchone()[0])


# --- What earns points ---------------------------------------------------------------------


def task_awards(tasks: Iterable[Task]) -> Iterator[Award]:
    """The points for submitted tasks (their type's points, in their language, when done)."""
    for task in tasks:
        kind, value = points.task_points(task.type)
        assert task.done_at is not None
        yield Award(task.user_id, task.lang, kind, value, task.id, task.done_at)


def decision_awards(messages: QuerySet[Message], *, at: datetime | None = None) -> list[Award]:
    """For messages whose review is decided: the accepted bonus for the author and the
    agreement bonus for each reviewer whose own verdict matches. `at` defaults to the time
    of each message's last review."""
    rows = list(
        messages.filter(review_result__isnull=False)
        .annotate(last_review_at=Max("reviews__created_at"))
        .values(
            "id",
            "lang",
            "author_id",
            "author__is_imported",
            "synthetic",
            "review_result",
            "tree__acceptance_threshold",
            "created_at",
            "last_review_at",
        )
    )
    if not rows:
        return []
    reviews: dict[UUID, list[dict[str, Any]]] = {}
    for review in Review.objects.filter(
        message_id__in=[row["id"] for row in rows], user__is_imported=False
    ).values("id", "message_id", "user_id", "values"):
        reviews.setdefault(review["message_id"], []).append(dict(review))
    awards = []
    for row in rows:
        when = at or row["last_review_at"] or row["created_at"]
        author = row["author_id"]
        is_person = author and not row["author__is_imported"] and not row["synthetic"]
        if row["review_result"] and is_person:
            awards.append(
                Award(author, row["lang"], Kind.ACCEPTED, points.ACCEPTED_POINTS, row["id"], when)
            )
        threshold = row["tree__acceptance_threshold"]
        for verdict in reviews.get(row["id"], []):
            if points.review_verdict(verdict["values"], threshold) == row["review_result"]:
                awards.append(
                    Award(
                        verdict["user_id"],
                        row["lang"],
                        Kind.AGREEMENT,
                        points.REVIEW_AGREEMENT_POINTS,
                        verdict["id"],
                        when,
                    )
                )
    return awards


def scoring_awards(trees: QuerySet[MessageTree], *, at: datetime | None = None) -> list[Award]:
    """For scored trees: the agreement bonus for rankings close to the consensus, and the
    top-reply bonus for replies ranked first among two or more. `at` defaults to the time
    each tree last changed state (when it was scored)."""
    trees = trees.filter(state=State.READY_FOR_EXPORT)
    awards = []
    for ranking in Ranking.objects.filter(
        parent__tree__in=trees, agreement_with_consensus__isnull=False, user__is_imported=False
    ).values(
        "id",
        "user_id",
        "agreement_with_consensus",
        "parent__lang",
        "parent__tree__state_changed_at",
    ):
        value = points.ranking_agreement_points(ranking["agreement_with_consensus"])
        when = at or ranking["parent__tree__state_changed_at"]
        awards.append(
            Award(
                ranking["user_id"],
                ranking["parent__lang"],
                Kind.AGREEMENT,
                value,
                ranking["id"],
                when,
            )
        )
    runner_up = Message.objects.filter(parent_id=OuterRef("parent_id"), rank=1)
    for message in (
        Message.objects.filter(
            tree__in=trees,
            rank=0,
            parent__isnull=False,
            deleted=False,
            synthetic=False,
            author__isnull=False,
            author__is_imported=False,
        )
        .filter(Exists(runner_up))
        .values("id", "author_id", "lang", "tree__state_changed_at")
    ):
        when = at or message["tree__state_changed_at"]
        awards.append(
            Award(
                message["author_id"],
                message["lang"],
                Kind.TOP_REPLY,
                points.TOP_REPLY_POINTS,
                message["id"],
                when,
            )
        )
    return awards


# --- When -----------------------------------------------------------------------------------


def award_submission(*, task: Task, decided: bool, along_with: tuple[str, dict[str, Any]]) -> None:
    """Points for a task just submitted, in the submission's transaction and in one statement
    with `along_with` (the task's own UPDATE). Bonuses follow after commit, as jobs: those of a
    review that `decided` its message, and those of the tree's scoring after its last ranking."""
    from backend.community import jobs  # jobs import services

    store_awards(task_awards([task]), along_with=along_with)
    if decided and task.slot_id is not None:
        jobs.award_decision_bonuses_job.delay_on_commit(str(task.slot_id))
    tree = task.tree
    if task.type in RANK_TYPES and tree is not None and tree.state == State.READY_FOR_SCORING:
        # Queued after the scoring job (on-commit callbacks run in order), and retried if
        # a worker picks it up first.
        jobs.award_scoring_bonuses_job.delay_on_commit(str(tree.id))


@transaction.atomic
def award_decision_bonuses(*, message_id: UUID) -> int:
    """The bonuses of a decided review: for the author when accepted, and for each reviewer
    whose own verdict is the message's."""
    return store_awards(decision_awards(Message.objects.filter(pk=message_id)))


@transaction.atomic
def award_scoring_bonuses(*, tree_id: UUID) -> int | None:
    """The scoring bonuses of one tree; None while it waits for the scoring job. (A tree
    whose scoring failed is scored again by the reconcile job; the sweep then pays.)"""
    state = MessageTree.objects.filter(pk=tree_id).values_list("state", flat=True).first()
    if state == State.READY_FOR_SCORING:
        return None
    return store_awards(scoring_awards(MessageTree.objects.filter(pk=tree_id), at=timezone.now()))


@transaction.atomic
def award_recent_scoring_bonuses(*, hours: int = 24) -> int:
    """A sweep for trees scored outside a submission (by the reconcile job, after a retry):
    their bonuses, if not given yet."""
    since = timezone.now() - timedelta(hours=hours)
    trees = MessageTree.objects.filter(state=State.READY_FOR_EXPORT, state_changed_at__gte=since)
    return store_awards(scoring_awards(trees))


# --- Backfill and rebuild -------------------------------------------------------------------


def expected_awards() -> Iterator[Award]:
    """Every award the data in the database has earned, recomputed from tasks, reviews and
    rankings (times approximated where the data keeps none: a decision at its last review,
    a scoring at the tree's last state change)."""
    submitted = Task.objects.filter(status=TaskStatus.SUBMITTED, user__is_imported=False)
    for chunk in _chunks(submitted.order_by("pk").only("id", "user_id", "lang", "type", "done_at")):
        yield from task_awards(chunk)
    decided = Message.objects.filter(review_result__isnull=False)
    for ids in _id_chunks(decided):
        yield from decision_awards(Message.objects.filter(pk__in=ids))
    for ids in _id_chunks(MessageTree.objects.filter(state=State.READY_FOR_EXPORT)):
        yield from scoring_awards(MessageTree.objects.filter(pk__in=ids))


def _chunks(queryset: QuerySet[Task]) -> Iterator[list[Task]]:
    chunk: list[Task] = []
    for item in queryset.iterator(chunk_size=BATCH):
        chunk.append(item)
        if len(chunk) == BATCH:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _id_chunks(queryset: QuerySet) -> Iterator[list[UUID]]:
    ids = list(queryset.order_by("pk").values_list("pk", flat=True))
    for i in range(0, len(ids), BATCH):
        yield ids[i : i + BATCH]


def backfill_points() -> dict[str, int]:
    """Award whatever existing data earned and is not in the ledger yet, then rebuild the
    totals from the ledger. Safe to run again, and while volunteers work."""
    added = 0
    batch: list[Award] = []
    for award in expected_awards():
        batch.append(award)
        if len(batch) == BATCH:
            added += _store_batch(batch)
            batch = []
    added += _store_batch(batch)
    totals = rebuild_totals()
    log.info("backfill: %s awards added, %s totals rows", added, totals)
    return {"awards_added": added, "totals": totals}


@transaction.atomic
def _store_batch(batch: list[Award]) -> int:
    return store_awards(batch, add_to_totals=False)


@transaction.atomic
def rebuild_totals() -> int:
    """Recompute every total from the ledger. The table lock waits for awards in flight and
    holds new ones back until the rebuild commits, so none is lost or counted twice."""
    with connection.cursor() as cursor:
        cursor.execute("LOCK TABLE community_pointtotal IN EXCLUSIVE MODE")
        cursor.execute("DELETE FROM community_pointtotal")
        cursor.execute(_ADD_TOTALS_SQL.format(source="community_pointaward"))
        return cursor.rowcount
