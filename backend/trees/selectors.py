"""Reads of trees and messages: the facts the rules need, conversations, permission checks."""

from __future__ import annotations

from collections.abc import Sequence
from uuid import UUID

from django.db import connection
from django.db.models import Q, QuerySet

from backend.accounts.models import User
from backend.core.errors import NotFound
from backend.trees import fingerprint
from backend.trees.models import Message, MessageTree
from backend.trees.rules import State, TreeFacts

# One pass over a tree's messages gives every fact the transition table needs.
_FACTS_SQL = """
SELECT
  -- The root's verdict: true (accepted), false (rejected or deleted), null (pending).
  bool_or(CASE WHEN m.parent_id IS NULL THEN
    CASE WHEN m.deleted THEN false ELSE m.review_result END END) AS root_result,
  count(*) FILTER (WHERE live AND m.review_result) AS accepted,
  count(*) FILTER (WHERE live AND m.review_result IS NULL) AS pending_review,
  count(*) FILTER (WHERE live AND m.review_result AND m.lease_until > now()) AS reply_leases,
  coalesce(bool_or(
    live AND m.review_result AND m.depth < t.max_depth
    AND m.children_count < CASE WHEN m.role = 'prompter'
        THEN t.max_children_prompter ELSE t.max_children_assistant END
  ), false) AS open_reply_slot,
  count(*) FILTER (WHERE live AND m.review_result AND m.accepted_children_count >= 2
    AND (m.role = 'prompter' OR t.rank_prompter_replies)) AS rankable,
  count(*) FILTER (
    WHERE live AND m.review_result AND m.accepted_children_count >= 2
      AND (m.role = 'prompter' OR t.rank_prompter_replies)
      AND m.ranking_count < t.rankings_needed
      -- A sibling set that came with ranks (an imported dataset) is already decided.
      AND NOT EXISTS (
        SELECT 1 FROM trees_message c WHERE c.parent_id = m.id AND c.rank IS NOT NULL
      )
  ) AS needing_rankings
FROM trees_message m JOIN trees_messagetree t ON t.id = m.tree_id,
  LATERAL (SELECT NOT m.deleted AS live) l
WHERE m.tree_id = %s
"""


def tree_facts(
    tree: MessageTree,
    *,
    has_growing_capacity: bool = False,
    has_ranking_capacity: bool = False,
    scoring_succeeded: bool | None = None,
) -> TreeFacts:
    with connection.cursor() as cursor:
        cursor.execute(_FACTS_SQL, [tree.id])
        row = cursor.fetchone()
    root_result, accepted, pending, reply_leases, open_slot, rankable, need = row
    return TreeFacts(
        state=State(tree.state),
        root_review_result=root_result,
        accepted_count=accepted or 0,
        # An outstanding reply lease counts as pending work: growth is not over while a
        # volunteer is still writing.
        pending_review_count=(pending or 0) + (reply_leases or 0),
        has_open_reply_slot=bool(open_slot),
        rankable_parent_count=rankable or 0,
        parents_needing_rankings=need or 0,
        goal_size=tree.goal_size,
        has_growing_capacity=has_growing_capacity,
        has_ranking_capacity=has_ranking_capacity,
        scoring_succeeded=scoring_succeeded,
    )


def conversation(message_id: UUID) -> list[Message]:
    """The message and its ancestors, root first, in one recursive query."""
    return conversation_with(message_id, others=[])[0]


def conversation_with(
    message_id: UUID, *, others: Sequence[UUID]
) -> tuple[list[Message], list[Message]]:
    """The conversation up to `message_id`, and the `others` messages in their given order
    (a rank task's replies), together in one query."""
    rows = list(
        Message.objects.raw(
            """
            WITH RECURSIVE chain AS (
              SELECT * FROM trees_message WHERE id = %s
              UNION ALL
              SELECT m.* FROM trees_message m JOIN chain c ON m.id = c.parent_id
            )
            SELECT *, false AS is_other FROM chain
            UNION ALL
            SELECT *, true FROM trees_message WHERE id = ANY(%s)
            """,
            [message_id, list(others)],
        )
    )
    # `is_other` is the query's extra column, not a model field.
    chain = sorted((m for m in rows if not getattr(m, "is_other")), key=lambda m: m.depth)  # noqa: B009
    by_id = {m.id: m for m in rows if getattr(m, "is_other")}  # noqa: B009
    return chain, [by_id[i] for i in others if i in by_id]


def _visible_messages_q(user: User) -> Q:
    if user.is_moderator:
        return Q()
    # Volunteers see accepted messages, and their own wherever they stand in review.
    return Q(deleted=False) & (Q(review_result=True) | Q(author=user))


def visible_trees(user: User) -> QuerySet[MessageTree]:
    """Moderators see every tree; volunteers see live trees whose root they may see."""
    trees = MessageTree.objects.all()
    if not user.is_moderator:
        roots = Message.objects.filter(_visible_messages_q(user), parent=None)
        trees = trees.exclude(
            state__in=[State.HALTED_BY_MODERATOR, State.ABORTED_LOW_GRADE]
        ).filter(id__in=roots.values("tree_id"))
    return trees.order_by("-created_at")


def access_tree(*, user: User, tree_id: UUID) -> tuple[MessageTree, list[Message]]:
    """A tree and the messages this user may see, or NotFound (never reveals hidden trees)."""
    tree = visible_trees(user).filter(pk=tree_id).first()
    if tree is None:
        raise NotFound("No such tree.")
    messages = list(
        Message.objects.filter(_visible_messages_q(user), tree=tree)
        .select_related("author")
        .order_by("depth", "created_at")
    )
    return tree, messages


def access_message(*, user: User, message_id: UUID) -> Message:
    message = (
        Message.objects.filter(_visible_messages_q(user), pk=message_id)
        .select_related("tree", "author")
        .first()
    )
    if message is None or (
        not user.is_moderator
        and message.tree.state in (State.HALTED_BY_MODERATOR, State.ABORTED_LOW_GRADE)
    ):
        raise NotFound("No such message.")
    return message


# Candidates verified per new prompt, those sharing the most band keys first: a genuine
# near-duplicate shares several, an unrelated prompt rarely more than one.
DUPLICATE_CANDIDATES = 10
READ_AT_MOST = 200

# Live first prompts in a language sharing a band key with the new text, most shared
# first. The matching keys are found through the promptkey_lookup index and counted per
# prompt, then the READ_AT_MOST prompts sharing the most are read by primary key: the
# work grows with the key matches (small rows), never with the table, and the row reads
# are capped (LIMIT 1 keeps the planner from turning them into a hash join over every
# message).
# Prompts deleted or rejected in review do not count: writing them better is welcome.
_DUPLICATE_CANDIDATES_SQL = """
SELECT m.id, m.tree_id, m.text, m.lang, k.shared
FROM (
  SELECT message_id, count(*) AS shared FROM trees_promptkey
  WHERE key = ANY(%(keys)s) GROUP BY message_id
  ORDER BY shared DESC LIMIT %(read_at_most)s
) k
CROSS JOIN LATERAL (
  SELECT id, tree_id, text, lang, created_at FROM trees_message
  WHERE id = k.message_id AND lang = %(lang)s AND parent_id IS NULL
    AND NOT deleted AND review_result IS DISTINCT FROM false
  LIMIT 1
) m
ORDER BY k.shared DESC, m.created_at
LIMIT %(limit)s
"""


def duplicate_candidates(*, text: str, lang: str) -> list[Message]:
    keys = fingerprint.band_keys(text, lang=lang)
    params = {
        "keys": keys,
        "lang": lang,
        "limit": DUPLICATE_CANDIDATES,
        "read_at_most": READ_AT_MOST,
    }
    return list(Message.objects.raw(_DUPLICATE_CANDIDATES_SQL, params))


def find_duplicate_prompt(*, text: str, lang: str) -> Message | None:
    """A live first prompt in `lang` that `text` nearly duplicates, or None: one indexed
    query, then the rule in `fingerprint.is_near_duplicate` on its few candidates."""
    candidates = duplicate_candidates(text=text, lang=lang)
    return next((m for m in candidates if fingerprint.is_near_duplicate(text, m.text)), None)
