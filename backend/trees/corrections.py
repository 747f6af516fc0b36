"""Services that correct a tree after the fact: a moderator's edit, deletion or restoration
of messages, and the removal of a person's reviews and rankings.

They keep every counter the task engine relies on (`trees.invariants`) true: a reply's
place under its parent, the reviews and rankings that count, the verdicts. The caller holds
the tree's lock (`services.lock_tree`); permission checks and the audit log are the
moderation app's.
"""

from __future__ import annotations

from collections.abc import Iterable
from uuid import UUID

from django.db import connection
from django.db.models import Count, F, Q
from django.utils import timezone

from backend.trees import fingerprint, rules
from backend.trees.models import Message, MessageTree, PromptKey, Ranking, Reaction, Review
from backend.trees.rules import State

SUBTREE_SQL = """
WITH RECURSIVE sub AS (
    SELECT id FROM trees_message WHERE id = %s
    UNION ALL
    SELECT m.id FROM trees_message m JOIN sub ON m.parent_id = sub.id
)
SELECT id FROM sub
"""


def subtree_ids(message_id: UUID) -> list[UUID]:
    """The message and everything below it."""
    with connection.cursor() as cursor:
        cursor.execute(SUBTREE_SQL, [message_id])
        return [row[0] for row in cursor.fetchall()]


def edit_text(*, tree: MessageTree, message: Message, text: str) -> tuple[int, int]:
    """Replace the text, and ask again for the judgements of the old one that the tree still
    collects. While messages are reviewed (a prompt in review, a growing tree) the message's
    reviews become stale and it goes back to review; while the tree is ranked, the rankings
    that compared it (among its siblings, or as the context of its replies) become stale
    and are asked for again (its verdict stands: ranking does not wait for reviews). A
    finished tree keeps everything. Returns (stale reviews, stale rankings)."""
    Message.objects.filter(pk=message.pk).update(text=text)
    if message.parent_id is None:  # a first prompt: its near-duplicate keys follow the text
        edited = Message(pk=message.pk, text=text, lang=message.lang)
        PromptKey.objects.filter(message_id=message.pk).delete()
        PromptKey.objects.bulk_create(
            PromptKey(message_id=message.pk, key=key)
            for key in fingerprint.band_keys(edited.text, lang=edited.lang)
        )
    if tree.state in (State.INITIAL_PROMPT_REVIEW, State.GROWING):
        reviews = Review.objects.filter(message=message, is_stale=False).update(is_stale=True)
        recount_reviews(tree, [message.pk])
        return reviews, 0
    if tree.state == State.RANKING:
        parents = [message.pk] + ([message.parent_id] if message.parent_id else [])
        rankings = Ranking.objects.filter(parent_id__in=parents, is_stale=False).update(
            is_stale=True
        )
        recount_rankings(parents)
        return 0, rankings
    return 0, 0


def recount_reviews(tree: MessageTree, message_ids: Iterable[UUID]) -> None:
    """Rebuild review counts, label means and verdicts from the reviews that still count,
    and the parents' reply counts that follow from the verdicts. A message whose verdict
    is withdrawn is marked as reopened (its replies stay)."""
    ids = list(message_ids)
    reviews: dict[UUID, list[dict[str, float]]] = {i: [] for i in ids}
    for message_id, values in (
        Review.objects.filter(message_id__in=ids, is_stale=False)
        .order_by("created_at")
        .values_list("message_id", "values")
    ):
        reviews[message_id].append(values)
    now = timezone.now()
    for message in Message.objects.filter(pk__in=ids).order_by("depth"):
        summary: dict[str, dict[str, float]] = {}
        for values in reviews[message.pk]:
            summary = rules.add_to_summary(summary, values)
        count = len(reviews[message.pk])
        verdict = (
            rules.is_accepted(summary, tree.acceptance_threshold)
            if count >= tree.reviews_needed
            else None
        )
        before = message.review_result
        fields = {"review_count": count, "label_summary": summary, "review_result": verdict}
        if before is not None and verdict != before:
            fields["review_reopened_at"] = now
        Message.objects.filter(pk=message.pk).update(**fields)
        if message.parent_id and not message.deleted and verdict != before:
            _move_between_counts(message.parent_id, before=before, after=verdict)


def _move_between_counts(parent_id: UUID, *, before: bool | None, after: bool | None) -> None:
    """A reply's verdict changed: `children_count` counts replies not rejected,
    `accepted_children_count` the accepted ones."""
    live = int(after is not False) - int(before is not False)
    accepted = int(after is True) - int(before is True)
    Message.objects.filter(pk=parent_id).update(
        children_count=F("children_count") + live,
        accepted_children_count=F("accepted_children_count") + accepted,
    )


def recount_rankings(parent_ids: Iterable[UUID]) -> None:
    ids = list(parent_ids)
    counts = dict(
        Ranking.objects.filter(parent_id__in=ids, is_stale=False)
        .values_list("parent_id")
        .annotate(n=Count("id"))
    )
    for parent_id in ids:
        Message.objects.filter(pk=parent_id).update(ranking_count=counts.get(parent_id, 0))


def recount_children(message_ids: Iterable[UUID]) -> None:
    """Set both reply counts of these messages from their actual replies."""
    ids = list(message_ids)
    counts = {
        row["parent_id"]: row
        for row in Message.objects.filter(parent_id__in=ids)
        .values("parent_id")
        .annotate(
            live=Count("id", filter=Q(deleted=False) & ~Q(review_result=False)),
            accepted=Count("id", filter=Q(deleted=False, review_result=True)),
        )
    }
    for message_id in ids:
        row = counts.get(message_id, {"live": 0, "accepted": 0})
        Message.objects.filter(pk=message_id).update(
            children_count=row["live"], accepted_children_count=row["accepted"]
        )


def set_deleted(*, message: Message, deleted: bool) -> list[UUID]:
    """Delete or restore a message with everything below it; returns the ids changed.

    Deleting also ends the leases on those messages: nobody may work on them any more, and
    a tree whose only pending work was there can move on (moderation ends their tasks)."""
    ids = subtree_ids(message.pk)
    changed = list(
        Message.objects.filter(pk__in=ids).exclude(deleted=deleted).values_list("id", flat=True)
    )
    no_lease = {"lease_task_id": None, "lease_until": None} if deleted else {}
    Message.objects.filter(pk__in=ids).update(deleted=deleted, **no_lease)
    recount_children(ids)
    if message.parent_id:
        recount_children([message.parent_id])
    return changed


def remove_votes_of(*, user_id: UUID) -> dict[str, int]:
    """Delete a person's reviews, rankings and reactions, and recount what they counted
    towards. The caller holds the locks of every tree involved."""
    review_targets = list(
        Review.objects.filter(user_id=user_id)
        .values_list("message_id", "message__tree_id")
        .distinct()
    )
    ranking_parents = list(
        Ranking.objects.filter(user_id=user_id).values_list("parent_id", flat=True).distinct()
    )
    reaction_targets = list(
        Reaction.objects.filter(user_id=user_id).values_list("message_id", flat=True).distinct()
    )
    removed = {
        "reviews": Review.objects.filter(user_id=user_id).delete()[0],
        "rankings": Ranking.objects.filter(user_id=user_id).delete()[0],
        "reactions": Reaction.objects.filter(user_id=user_id).delete()[0],
    }
    by_tree: dict[UUID, list[UUID]] = {}
    for message_id, tree_id in review_targets:
        by_tree.setdefault(tree_id, []).append(message_id)
    for tree in MessageTree.objects.filter(pk__in=list(by_tree)):
        recount_reviews(tree, by_tree[tree.pk])
    recount_rankings(ranking_parents)
    recount_emojis(reaction_targets)
    return removed


def recount_emojis(message_ids: Iterable[UUID]) -> None:
    ids = list(message_ids)
    counts: dict[UUID, dict[str, int]] = {i: {} for i in ids}
    for message_id, emoji, n in (
        Reaction.objects.filter(message_id__in=ids)
        .values_list("message_id", "emoji")
        .annotate(n=Count("id"))
    ):
        counts[message_id][emoji] = n
    for message_id, emojis in counts.items():
        Message.objects.filter(pk=message_id).update(emojis=emojis)


def trees_touched_by(user_id: UUID) -> list[UUID]:
    """Trees a person wrote in, reviewed or ranked: a purge must lock them all."""
    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT tree_id FROM trees_message WHERE author_id = %(u)s
            UNION SELECT m.tree_id FROM trees_review r
                JOIN trees_message m ON m.id = r.message_id WHERE r.user_id = %(u)s
            UNION SELECT m.tree_id FROM trees_ranking r
                JOIN trees_message m ON m.id = r.parent_id WHERE r.user_id = %(u)s
            UNION SELECT m.tree_id FROM trees_reaction r
                JOIN trees_message m ON m.id = r.message_id WHERE r.user_id = %(u)s
            ORDER BY 1
            """,
            {"u": user_id},
        )
        return [row[0] for row in cursor.fetchall()]
