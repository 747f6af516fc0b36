"""Checks that hold over the whole database whatever volunteers did, one SQL query each.

Tests run them after simulated crowds; benchmarks and soak runs after their load. Each
check returns the rows that break it, so an empty report means the data is consistent.
"""

from __future__ import annotations

from django.db import connection

from backend.trees import rules
from backend.trees.rules import State

# name -> SQL returning one row per violation (first column identifies it).
CHECKS: dict[str, str] = {
    "children_count matches live replies": """
        SELECT p.id, p.children_count, count(c.id) FILTER (
            WHERE NOT c.deleted AND c.review_result IS NOT FALSE)
        FROM trees_message p LEFT JOIN trees_message c ON c.parent_id = p.id
        GROUP BY p.id HAVING p.children_count <> count(c.id) FILTER (
            WHERE NOT c.deleted AND c.review_result IS NOT FALSE)
    """,
    "accepted_children_count matches accepted replies": """
        SELECT p.id FROM trees_message p LEFT JOIN trees_message c ON c.parent_id = p.id
        GROUP BY p.id HAVING p.accepted_children_count <> count(c.id) FILTER (
            WHERE NOT c.deleted AND c.review_result)
    """,
    "ranking_count matches rankings": """
        SELECT p.id FROM trees_message p
        LEFT JOIN trees_ranking r ON r.parent_id = p.id AND NOT r.is_stale
        GROUP BY p.id HAVING p.ranking_count <> count(r.id)
    """,
    "review_count matches reviews (volunteer trees)": """
        SELECT m.id FROM trees_message m JOIN trees_messagetree t ON t.id = m.tree_id
        LEFT JOIN trees_review r ON r.message_id = m.id AND NOT r.is_stale
        WHERE t.origin = 'volunteers'
        GROUP BY m.id HAVING m.review_count <> count(r.id)
    """,
    "reviews never exceed the target": """
        SELECT m.id FROM trees_message m JOIN trees_messagetree t ON t.id = m.tree_id
        WHERE t.origin = 'volunteers' AND m.review_count > t.reviews_needed
    """,
    "rankings never exceed the target": """
        SELECT m.id FROM trees_message m JOIN trees_messagetree t ON t.id = m.tree_id
        WHERE m.ranking_count > t.rankings_needed
    """,
    "a verdict exactly when the reviews are in (volunteer trees)": """
        SELECT m.id FROM trees_message m JOIN trees_messagetree t ON t.id = m.tree_id
        WHERE t.origin = 'volunteers'
          AND (m.review_result IS NULL) <> (m.review_count < t.reviews_needed)
    """,
    "replies within the children limit": """
        SELECT p.id FROM trees_message p JOIN trees_messagetree t ON t.id = p.tree_id
        WHERE p.children_count > CASE WHEN p.role = 'prompter'
            THEN t.max_children_prompter ELSE t.max_children_assistant END
    """,
    "depth is the parent's plus one, within the limit": """
        SELECT c.id FROM trees_message c JOIN trees_messagetree t ON t.id = c.tree_id
        LEFT JOIN trees_message p ON p.id = c.parent_id
        WHERE (p.id IS NULL AND c.depth <> 0) OR (p.id IS NOT NULL AND c.depth <> p.depth + 1)
           OR (t.origin = 'volunteers' AND c.depth > t.max_depth)
    """,
    "roles alternate and the root is a prompt": """
        SELECT c.id FROM trees_message c LEFT JOIN trees_message p ON p.id = c.parent_id
        WHERE (p.id IS NULL AND c.role <> 'prompter') OR (p.id IS NOT NULL AND c.role = p.role)
           OR (p.id IS NOT NULL AND p.tree_id <> c.tree_id)
    """,
    "replies only under accepted messages (volunteer trees)": """
        SELECT c.id FROM trees_message c JOIN trees_message p ON p.id = c.parent_id
        JOIN trees_messagetree t ON t.id = c.tree_id
        WHERE t.origin = 'volunteers' AND p.review_result IS NOT TRUE
          AND p.review_reopened_at IS NULL
    """,
    "tree size within its goal (volunteer trees)": """
        SELECT t.id FROM trees_messagetree t JOIN trees_message m ON m.tree_id = t.id
        WHERE t.origin = 'volunteers' AND NOT m.deleted AND m.review_result IS NOT FALSE
        GROUP BY t.id HAVING count(*) > t.goal_size
    """,
    "nobody reviews their own message": """
        SELECT r.id FROM trees_review r JOIN trees_message m ON m.id = r.message_id
        WHERE r.user_id = m.author_id
    """,
    "nobody ranks a set with their own reply": """
        SELECT r.id FROM trees_ranking r JOIN trees_message c ON c.parent_id = r.parent_id
        WHERE c.author_id = r.user_id
    """,
    "a lease belongs to a leased task of that slot": """
        SELECT m.id FROM trees_message m LEFT JOIN tasks_task k ON k.id = m.lease_task_id
        WHERE m.lease_task_id IS NOT NULL AND m.lease_until > now()
          AND (k.id IS NULL OR k.status <> 'leased' OR k.slot_id <> m.id)
    """,
    "a live leased task holds its slot": """
        SELECT k.id FROM tasks_task k JOIN trees_message m ON m.id = k.slot_id
        WHERE k.status = 'leased' AND k.expires_at > now() AND m.lease_task_id <> k.id
    """,
    "each submitted task produced exactly one result": """
        SELECT k.id FROM tasks_task k WHERE k.status = 'submitted' AND (k.result_id IS NULL
            OR (k.type IN ('initial_prompt', 'assistant_reply', 'prompter_reply')
                AND NOT EXISTS (SELECT 1 FROM trees_message m WHERE m.id = k.result_id))
            OR (k.type LIKE 'label_%%'
                AND NOT EXISTS (SELECT 1 FROM trees_review r WHERE r.id = k.result_id))
            OR (k.type LIKE 'rank_%%'
                AND NOT EXISTS (SELECT 1 FROM trees_ranking r WHERE r.id = k.result_id)))
    """,
    "no result from two tasks": """
        SELECT result_id FROM tasks_task WHERE status = 'submitted'
        GROUP BY result_id HAVING count(*) > 1
    """,
    "every written message came from one submitted task (volunteer trees)": """
        SELECT m.id FROM trees_message m JOIN trees_messagetree t ON t.id = m.tree_id
        WHERE t.origin = 'volunteers' AND m.synthetic = false AND NOT EXISTS (
            SELECT 1 FROM tasks_task k WHERE k.result_id = m.id AND k.status = 'submitted')
    """,
    "finished trees have consensus ranks for their ranked sets": """
        SELECT p.id FROM trees_message p JOIN trees_messagetree t ON t.id = p.tree_id
        JOIN trees_message c ON c.parent_id = p.id AND NOT c.deleted AND c.review_result
        WHERE t.state = 'ready_for_export' AND EXISTS (
            SELECT 1 FROM trees_ranking r WHERE r.parent_id = p.id AND NOT r.not_rankable)
          AND c.rank IS NULL
    """,
}


def state_history_violations() -> list[str]:
    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT t.id, t.state, t.origin,
                   array_agg(s.source ORDER BY s.created_at, s.id),
                   array_agg(s.target ORDER BY s.created_at, s.id)
            FROM trees_messagetree t JOIN trees_statechange s ON s.tree_id = t.id
            GROUP BY t.id
            UNION ALL
            SELECT t.id, t.state, t.origin, ARRAY[''], ARRAY[t.state::text]
            FROM trees_messagetree t
            WHERE t.origin = 'volunteers' AND t.state <> 'initial_prompt_review'
              AND NOT EXISTS (SELECT 1 FROM trees_statechange s WHERE s.tree_id = t.id)
            """
        )
        rows = cursor.fetchall()
    problems = []
    for tree_id, state, origin, sources, targets in rows:
        # Volunteer trees are born in initial_prompt_review (creation writes no row).
        if origin == "volunteers" and sources[0] != State.INITIAL_PROMPT_REVIEW:
            problems.append(f"{tree_id}: history starts from {sources[0]!r}")
        for index, (source, target) in enumerate(zip(sources, targets, strict=True)):
            if index and source != targets[index - 1]:
                problems.append(f"{tree_id}: history jumps from {targets[index - 1]} to {source}")
            if source and not rules.is_legal_transition(State(source), State(target)):
                problems.append(f"{tree_id}: illegal transition {source} -> {target}")
        if targets[-1] != state:
            problems.append(f"{tree_id}: history ends at {targets[-1]}, tree is {state}")
    return problems


def growing_limit_violations() -> list[str]:
    from django.conf import settings

    limit = settings.CHORUS_TREE["max_active_trees"]
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT lang, count(*) FROM trees_messagetree WHERE state = 'growing' "
            "GROUP BY lang HAVING count(*) > %s",
            [limit],
        )
        return [f"{lang}: {n} growing trees (limit {limit})" for lang, n in cursor.fetchall()]


def check_invariants() -> dict[str, list[str]]:
    """Every broken invariant with (up to 10 of) the rows that break it; {} when all hold."""
    report: dict[str, list[str]] = {}
    with connection.cursor() as cursor:
        for name, sql in CHECKS.items():
            cursor.execute(sql)
            rows = cursor.fetchmany(10)
            if rows:
                report[name] = [str(row) for row in rows]
    for name, problems in (
        ("tree state histories are legal", state_history_violations()),
        ("growing trees within the per-language limit", growing_limit_violations()),
    ):
        if problems:
            report[name] = problems[:10]
    return report
