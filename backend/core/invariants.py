# ruff: noqa: S608 (every query is built from this module's constants; none takes input)
"""The whole database checked against what must always hold, whatever volunteers, workers and
moderators did: the tree checks of `trees.invariants`, and those that span apps (tasks and
their results, the points ledger and its totals, reaction counts).

Every check is one set-based query (no per-row round trips), so the whole report takes
seconds to a minute on millions of rows. `check_database` returns the broken checks with up
to `limit` rows each that break them: an empty report means the data is consistent.
`manage.py check_invariants` prints it and fails when it is not empty.

Some facts are made true after commit by Celery jobs (points bonuses, scoring): a report
taken while jobs are queued may list them; take it when the queue is empty.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from django.db import connection

from backend.community.points import TASK_POINTS, Kind
from backend.community.services import BUCKETS_SQL, TOTAL_COLUMNS
from backend.trees import invariants as tree_invariants
from backend.trees import rules
from backend.trees.rules import State, TreeFacts

# A leased task past its time is expired by the periodic job; one still leased after this
# long means the job is not running.
STALE_LEASE_INTERVAL = "1 hour"

_TASK_KIND_VALUES = ", ".join(
    f"('{task_type}', '{kind.value}', {value})" for task_type, (kind, value) in TASK_POINTS.items()
)
_TASK_KINDS = ", ".join(sorted({f"'{kind.value}'" for kind, _ in TASK_POINTS.values()}))
_TOTALS_DIFFER = " OR ".join(f"e.{c} IS DISTINCT FROM t.{c}" for c in TOTAL_COLUMNS)

# Which slot each task type works on: (task type, the slot's role, whether it is a root).
_SLOT_SHAPES = """(VALUES
    ('label_initial_prompt', 'prompter', true),
    ('label_prompter_reply', 'prompter', false),
    ('label_assistant_reply', 'assistant', false),
    ('assistant_reply', 'prompter', NULL),
    ('prompter_reply', 'assistant', NULL),
    ('rank_assistant_replies', 'prompter', NULL),
    ('rank_prompter_replies', 'assistant', NULL)
) AS shape(type, role, is_root)"""

# name -> SQL returning one row per violation (first column identifies it).
CHECKS: dict[str, str] = {
    # --- Trees ------------------------------------------------------------------------------
    "each tree has exactly one root": """
        SELECT t.id, count(m.id) FILTER (WHERE m.parent_id IS NULL)
        FROM trees_messagetree t LEFT JOIN trees_message m ON m.tree_id = t.id
        GROUP BY t.id HAVING count(m.id) FILTER (WHERE m.parent_id IS NULL) <> 1
    """,
    "a tree's state agrees with its root's verdict (volunteer trees)": f"""
        SELECT t.id, t.state, m.review_result, m.deleted
        FROM trees_messagetree t JOIN trees_message m ON m.tree_id = t.id AND m.parent_id IS NULL
        WHERE t.origin = 'volunteers' AND m.review_reopened_at IS NULL AND (
            (t.state = '{State.INITIAL_PROMPT_REVIEW}'
                AND (m.review_result IS NOT NULL OR m.deleted))
            OR (t.state = '{State.ABORTED_LOW_GRADE}' AND m.review_result AND NOT m.deleted)
            OR (t.state IN ('{State.PROMPT_LOTTERY_WAITING}', '{State.GROWING}',
                            '{State.RANKING}', '{State.READY_FOR_SCORING}',
                            '{State.READY_FOR_EXPORT}', '{State.SCORING_FAILED}')
                AND m.review_result IS NOT TRUE))
    """,
    "a halted tree remembers the state to return to": f"""
        SELECT id FROM trees_messagetree
        WHERE (state = '{State.HALTED_BY_MODERATOR}') <> (state_before_halt <> '')
    """,
    "reaction counts match reactions (volunteer trees)": """
        WITH r AS (
            SELECT message_id, jsonb_object_agg(emoji, n) AS counts FROM (
                SELECT message_id, emoji, count(*) AS n FROM trees_reaction GROUP BY 1, 2
            ) x GROUP BY 1
        )
        SELECT m.id, m.emojis, r.counts
        FROM trees_message m JOIN trees_messagetree t ON t.id = m.tree_id
        LEFT JOIN r ON r.message_id = m.id
        WHERE t.origin = 'volunteers' AND m.emojis::jsonb <> coalesce(r.counts, '{}'::jsonb)
    """,
    "no live lease on a deleted message": """
        SELECT id FROM trees_message
        WHERE deleted AND lease_task_id IS NOT NULL AND lease_until > now()
    """,
    # --- Tasks ------------------------------------------------------------------------------
    "a task's slot is a message of its tree, of the kind its type works on": f"""
        SELECT k.id, k.type, m.role, m.parent_id IS NULL
        FROM tasks_task k JOIN trees_message m ON m.id = k.slot_id
        JOIN {_SLOT_SHAPES} ON shape.type = k.type
        WHERE m.tree_id IS DISTINCT FROM k.tree_id OR m.role <> shape.role
           OR (shape.is_root IS NOT NULL AND (m.parent_id IS NULL) <> shape.is_root)
    """,
    "a first-prompt task has no slot, every other one has": """
        SELECT id FROM tasks_task
        WHERE (type = 'initial_prompt') <> (slot_id IS NULL)
    """,
    "a live lease only on work its tree still needs": f"""
        SELECT k.id, k.type, t.state FROM tasks_task k
        JOIN trees_message m ON m.id = k.slot_id AND m.lease_task_id = k.id
        JOIN trees_messagetree t ON t.id = k.tree_id
        WHERE k.status = 'leased' AND k.expires_at > now()
          AND t.state <> '{State.HALTED_BY_MODERATOR}'
          AND NOT (
            (k.type LIKE 'label_%%' AND t.state IN ('{State.INITIAL_PROMPT_REVIEW}',
                                                   '{State.GROWING}')
                AND m.review_result IS NULL)
            OR (k.type IN ('assistant_reply', 'prompter_reply') AND t.state = '{State.GROWING}')
            OR (k.type LIKE 'rank_%%' AND t.state = '{State.RANKING}'))
    """,
    "leased tasks past their time are expired": f"""
        SELECT id, expires_at FROM tasks_task
        WHERE status = 'leased' AND expires_at < now() - interval '{STALE_LEASE_INTERVAL}'
    """,
    "only submitted tasks carry a result or a submission key": """
        SELECT id, status FROM tasks_task
        WHERE status NOT IN ('submitted', 'purged')
          AND (result_id IS NOT NULL OR submission_key IS NOT NULL)
    """,
    "a finished task has its time, an open one has not": """
        SELECT id, status FROM tasks_task WHERE (status = 'leased') <> (done_at IS NULL)
    """,
    "every review from a task is that task's one result": """
        SELECT r.id FROM trees_review r
        WHERE r.task_id IS NOT NULL AND NOT EXISTS (
            SELECT 1 FROM tasks_task k WHERE k.id = r.task_id AND k.result_id = r.id
              AND k.user_id = r.user_id AND k.slot_id = r.message_id)
    """,
    "every ranking from a task is that task's one result": """
        SELECT r.id FROM trees_ranking r
        WHERE r.task_id IS NOT NULL AND NOT EXISTS (
            SELECT 1 FROM tasks_task k WHERE k.id = r.task_id AND k.result_id = r.id
              AND k.user_id = r.user_id AND k.slot_id = r.parent_id)
    """,
    "a written message is its task's: author, parent and language": """
        SELECT m.id, k.id FROM tasks_task k JOIN trees_message m ON m.id = k.result_id
        WHERE k.status = 'submitted'
          AND k.type IN ('initial_prompt', 'assistant_reply', 'prompter_reply')
          AND (m.author_id IS DISTINCT FROM k.user_id OR m.lang <> k.lang
               OR m.parent_id IS DISTINCT FROM k.slot_id)
    """,
    "a ranking orders exactly the replies its task offered": """
        SELECT r.id FROM trees_ranking r JOIN tasks_task k ON k.id = r.task_id
        WHERE NOT r.not_rankable AND (
            cardinality(r.ordered_ids) <> cardinality(k.offered_ids)
            OR NOT (r.ordered_ids @> k.offered_ids AND r.ordered_ids <@ k.offered_ids))
    """,
    # --- Points -----------------------------------------------------------------------------
    "totals equal the sums of the ledger": f"""
        WITH e AS ({BUCKETS_SQL.format(source="community_pointaward")})
        SELECT coalesce(e.user_id, t.user_id), coalesce(e.lang, t.lang),
               coalesce(e.period, t.period), coalesce(e.start, t.start), e.points, t.points
        FROM e FULL OUTER JOIN community_pointtotal t
          ON (e.user_id, e.lang, e.period, e.start) = (t.user_id, t.lang, t.period, t.start)
        WHERE {_TOTALS_DIFFER}
    """,
    "each submitted task earned its points once": f"""
        SELECT k.id, a.points FROM tasks_task k
        JOIN accounts_user u ON u.id = k.user_id AND NOT u.is_imported
        JOIN (VALUES {_TASK_KIND_VALUES}) AS p(type, kind, points) ON p.type = k.type
        LEFT JOIN community_pointaward a ON a.source_id = k.id AND a.kind = p.kind
        WHERE k.status = 'submitted' AND (a.id IS NULL OR a.points <> p.points
            OR a.user_id <> k.user_id OR a.lang <> k.lang)
    """,
    "task points only for a task that was submitted": f"""
        SELECT a.id, a.kind, a.source_id FROM community_pointaward a
        WHERE a.kind IN ({_TASK_KINDS})
          AND NOT EXISTS (SELECT 1 FROM tasks_task k WHERE k.id = a.source_id
                          AND k.status IN ('submitted', 'purged') AND k.user_id = a.user_id)
    """,
    # Reviewed here, that is: a message imported with its verdict earned nothing.
    "accepted messages earned their author's bonus, and only they": f"""
        WITH m AS (
            SELECT m.id, m.author_id, m.review_result, m.review_reopened_at, m.synthetic
            FROM trees_message m JOIN accounts_user u ON u.id = m.author_id AND NOT u.is_imported
        ), a AS (SELECT * FROM community_pointaward WHERE kind = '{Kind.ACCEPTED}')
        SELECT m.id, m.review_result, a.id FROM m FULL OUTER JOIN a ON a.source_id = m.id
        WHERE (m.id IS NOT NULL AND m.review_result AND NOT m.synthetic AND a.id IS NULL
               AND EXISTS (SELECT 1 FROM trees_review r WHERE r.message_id = m.id))
           OR (a.id IS NOT NULL AND (m.id IS NULL OR a.user_id <> m.author_id
                OR (m.review_result IS NOT TRUE AND m.review_reopened_at IS NULL)))
    """,
}

# The facts of the transition table for every tree in a state that events move on at once
# (a decided root, a finished growth, the last ranking): one grouped pass over the messages,
# mirroring trees.selectors.tree_facts. A reply slot counts as pending while its lease is
# held by a task still leased (or by the served model), whether or not its time ran out: the
# expiry job frees it and re-evaluates the tree.
_FACTS_SQL = f"""
SELECT t.id, t.state, t.goal_size,
  bool_or(CASE WHEN m.parent_id IS NULL THEN
    CASE WHEN m.deleted THEN false ELSE m.review_result END END),
  count(*) FILTER (WHERE NOT m.deleted AND m.review_result),
  count(*) FILTER (WHERE NOT m.deleted AND m.review_result IS NULL),
  count(*) FILTER (WHERE NOT m.deleted AND m.review_result AND m.lease_task_id IS NOT NULL
    AND NOT EXISTS (SELECT 1 FROM tasks_task k WHERE k.id = m.lease_task_id
                    AND k.status <> 'leased')),
  coalesce(bool_or(
    NOT m.deleted AND m.review_result AND m.depth < t.max_depth
    AND m.children_count < CASE WHEN m.role = 'prompter'
        THEN t.max_children_prompter ELSE t.max_children_assistant END), false),
  count(*) FILTER (WHERE NOT m.deleted AND m.review_result AND m.accepted_children_count >= 2
    AND (m.role = 'prompter' OR t.rank_prompter_replies)),
  count(*) FILTER (
    WHERE NOT m.deleted AND m.review_result AND m.accepted_children_count >= 2
      AND (m.role = 'prompter' OR t.rank_prompter_replies)
      AND m.ranking_count < t.rankings_needed
      AND NOT EXISTS (
        SELECT 1 FROM trees_message c WHERE c.parent_id = m.id AND c.rank IS NOT NULL))
FROM trees_messagetree t JOIN trees_message m ON m.tree_id = t.id
WHERE t.state IN ('{State.INITIAL_PROMPT_REVIEW}', '{State.GROWING}', '{State.RANKING}')
GROUP BY t.id
"""


def _stalled_trees() -> Iterator[str]:
    """Trees in which the rules (trees.rules.next_state) demand a transition that the event
    should have made: a tree stuck there waits for the reconcile job."""
    with connection.cursor() as cursor:
        cursor.execute(_FACTS_SQL)
        while rows := cursor.fetchmany(2000):
            for tree_id, state, goal, root, accepted, pending, leases, slot, rankable, need in rows:
                facts = TreeFacts(
                    state=State(state),
                    root_review_result=root,
                    accepted_count=accepted,
                    pending_review_count=pending + leases,
                    has_open_reply_slot=slot,
                    rankable_parent_count=rankable,
                    parents_needing_rankings=need,
                    goal_size=goal,
                )
                target = rules.next_state(facts)
                if target is not None:
                    yield f"{tree_id}: {state}, its facts call for {target}"


@dataclass(frozen=True)
class Check:
    name: str
    run: Callable[[int], list[str]]


def _sql_check(sql: str) -> Callable[[int], list[str]]:
    def run(limit: int) -> list[str]:
        with connection.cursor() as cursor:
            # Only `limit` rows travel, however broken the data is.
            cursor.execute(f"SELECT * FROM ({sql}) AS violations LIMIT %s", [limit])
            return [str(row) for row in cursor.fetchall()]

    return run


def _first(produce: Callable[[], Iterator[str] | list[str]]) -> Callable[[int], list[str]]:
    def run(limit: int) -> list[str]:
        found = []
        for problem in produce():
            found.append(problem)
            if len(found) == limit:
                break
        return found

    return run


def all_checks() -> list[Check]:
    sql = {**tree_invariants.CHECKS, **CHECKS}
    return [
        *(Check(name, _sql_check(query)) for name, query in sql.items()),
        Check("tree state histories are legal", _first(tree_invariants.state_history_violations)),
        Check(
            "growing trees within the per-language limit",
            _first(tree_invariants.growing_limit_violations),
        ),
        Check("no tree waits for a transition its rules call for", _first(_stalled_trees)),
    ]


def check_database(
    *, limit: int = 10, timings: dict[str, float] | None = None
) -> dict[str, list[str]]:
    """Every broken invariant with up to `limit` of the rows that break it; {} when all hold.
    Read in one repeatable-read snapshot when called outside a transaction, so concurrent
    writes cannot make consistent data look broken. `timings`, when given, receives the
    seconds each check took."""
    report: dict[str, list[str]] = {}
    in_transaction = connection.in_atomic_block
    with connection.cursor() as cursor:
        if not in_transaction:
            cursor.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
        try:
            for check in all_checks():
                began = time.perf_counter()
                problems = check.run(limit)
                if timings is not None:
                    timings[check.name] = time.perf_counter() - began
                if problems:
                    report[check.name] = problems
        finally:
            if not in_transaction:
                cursor.execute("ROLLBACK")
    return report
