"""Every write to trees and messages. Callers that change a tree hold its row lock
(`lock_tree`); transitions are decided by `rules.next_state` on facts read under that lock.

Lock order, everywhere: a task row, then the tree row, then its message rows. Keeping one
order is what makes concurrent hand-outs and submissions deadlock-free. Every explicit lock is
FOR NO KEY UPDATE: it excludes other writers but not the KEY SHARE locks that foreign-key
checks take when a task or reply is inserted, which would otherwise close a cycle.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from collections.abc import Mapping
from uuid import UUID

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, connection, transaction
from django.db.models import Exists, F, Model, OuterRef
from django.db.models.sql import InsertQuery
from django.utils import timezone

from backend.accounts.models import ApiClient, User
from backend.core import errors as problems
from backend.core.errors import Conflict, InvalidInput, NotAllowed, NotFound, UserBanned
from backend.trees import consensus, fingerprint, rules
from backend.trees.models import (
    Emoji,
    Message,
    MessageTree,
    PromptKey,
    Ranking,
    Reaction,
    Review,
    StateChange,
)
from backend.trees.rules import State

log = logging.getLogger(__name__)


def tree_limits() -> dict[str, int | float | bool]:
    """The deployment's default limits, as MessageTree field values."""
    conf = settings.CHORUS_TREE
    return {
        "reviews_needed": conf["reviews_per_message"],
        "acceptance_threshold": conf["acceptance_threshold"],
        "max_depth": conf["max_depth"],
        "max_children_prompter": conf["max_children_prompter"],
        "max_children_assistant": conf["max_children_assistant"],
        "goal_size": conf["goal_tree_size"],
        "rankings_needed": conf["rankings_per_parent"],
        "rank_prompter_replies": conf.get("rank_prompter_replies", False),
    }


def lock_tree(tree_id: UUID) -> MessageTree:
    """Lock the tree row for the rest of the transaction (see the module's lock order)."""
    tree = MessageTree.objects.select_for_update(no_key=True).filter(pk=tree_id).first()
    if tree is None:
        raise NotFound("No such tree.")
    return tree


def create_tree(
    *, author: User, text: str, lang: str, api_client: ApiClient | None = None
) -> Message:
    """A new tree whose root prompt waits for review."""
    now = timezone.now()
    tree = MessageTree(
        state=State.INITIAL_PROMPT_REVIEW, lang=lang, state_changed_at=now, **tree_limits()
    )
    prompt = Message(
        tree=tree,
        role="prompter",
        text=text,
        lang=lang,
        author=author,
        api_client=api_client,
        depth=0,
        created_at=now,
    )
    # The tree, its prompt and the prompt's near-duplicate keys in one statement: a
    # submission of a prompt stays within its statement budget (test_query_counts).
    inserts = [_insert_sql(tree), _insert_sql(prompt)]
    with connection.cursor() as cursor:
        cursor.execute(
            f"WITH t AS ({inserts[0][0]}), m AS ({inserts[1][0]})"
            " INSERT INTO trees_promptkey (message_id, key) SELECT %s, unnest(%s::bigint[])",
            [*inserts[0][1], *inserts[1][1], prompt.pk, fingerprint.band_keys(text, lang=lang)],
        )
    for row in (tree, prompt):
        row._state.adding = False
        row._state.db = DEFAULT_DB_ALIAS
    return prompt


def _insert_sql(row: Model) -> tuple[str, tuple]:
    """The INSERT Django would run for a new row (defaults and value preparation included)."""
    query = InsertQuery(type(row))
    query.insert_values(list(row._meta.concrete_fields), [row])
    [(sql, params)] = query.get_compiler(using=DEFAULT_DB_ALIAS).as_sql()
    return sql, tuple(params)


def store_prompt_keys(prompts: list[Message], *, replace: bool = False) -> int:
    """Write the near-duplicate keys of first prompts (one INSERT for all of them)."""
    if replace:
        PromptKey.objects.filter(message__in=prompts).delete()
    rows = [
        PromptKey(message_id=prompt.pk, key=key)
        for prompt in prompts
        for key in fingerprint.band_keys(prompt.text, lang=prompt.lang)
    ]
    PromptKey.objects.bulk_create(rows)
    return len(prompts)


def fingerprint_prompts(*, only_missing: bool = True, batch_size: int = 500) -> int:
    """Store the near-duplicate keys of first prompts written before they existed (or of
    all, after a change of the scheme). Returns how many prompts were fingerprinted."""
    roots = Message.objects.filter(parent__isnull=True).only("id", "text", "lang")
    if only_missing:
        roots = roots.exclude(Exists(PromptKey.objects.filter(message=OuterRef("pk"))))
    written = 0
    batch: list[Message] = []
    for prompt in roots.iterator(batch_size):
        batch.append(prompt)
        if len(batch) == batch_size:
            with transaction.atomic():
                written += store_prompt_keys(batch, replace=not only_missing)
            batch = []
    with transaction.atomic():
        return written + store_prompt_keys(batch, replace=not only_missing)


def add_reply(
    *,
    tree: MessageTree,
    parent: Message,
    author: User | None,
    text: str,
    model_name: str | None = None,
    api_client: ApiClient | None = None,
) -> Message:
    """A reply under `parent`; the caller holds the tree lock and `parent`'s lease. A reply
    with a `model_name` (and no author) is the served model's: `synthetic`."""
    message = Message.objects.create(
        tree=tree,
        parent=parent,
        role=rules.reply_role(parent.role),
        text=text,
        lang=tree.lang,
        author=author,
        api_client=api_client,
        depth=parent.depth + 1,
        created_at=timezone.now(),
        synthetic=model_name is not None,
        model_name=model_name,
    )
    Message.objects.filter(pk=parent.pk).update(
        children_count=F("children_count") + 1, lease_task_id=None, lease_until=None
    )
    return message


def record_review(
    *,
    tree: MessageTree,
    message: Message,
    user: User,
    values: Mapping[str, float],
    task_id: UUID,
    api_client: ApiClient | None = None,
) -> tuple[Review, bool]:
    """Store one review and fold it into the message's label means. Returns the review and
    whether this review decided the message (accepted or rejected). Caller holds the lock."""
    review = Review.objects.create(
        message=message, user=user, api_client=api_client, task_id=task_id, values=dict(values)
    )
    summary = rules.add_to_summary(message.label_summary, values)
    count = message.review_count + 1
    decided = count >= tree.reviews_needed and message.review_result is None
    result = rules.is_accepted(summary, tree.acceptance_threshold) if decided else None
    if decided and message.parent_id is not None:
        _record_verdict(message, parent_id=message.parent_id, summary=summary, accepted=result)
    else:
        Message.objects.filter(pk=message.pk).update(
            review_count=count,
            label_summary=summary,
            review_result=result if decided else message.review_result,
            lease_task_id=None,
            lease_until=None,
        )
    return review, decided


def _record_verdict(
    message: Message, *, parent_id: UUID, summary: dict, accepted: bool | None
) -> None:
    """The last review of a reply, and its effect on the parent, in one statement: a rejected
    reply frees its place under the parent; an accepted one joins the set to rank."""
    with connection.cursor() as cursor:
        cursor.execute(
            """
            UPDATE trees_message SET
              review_count = review_count + (id = %(m)s)::int,
              label_summary = CASE WHEN id = %(m)s THEN %(summary)s::jsonb ELSE label_summary END,
              review_result = CASE WHEN id = %(m)s THEN %(accepted)s ELSE review_result END,
              lease_task_id = CASE WHEN id = %(m)s THEN NULL ELSE lease_task_id END,
              lease_until = CASE WHEN id = %(m)s THEN NULL ELSE lease_until END,
              accepted_children_count = accepted_children_count
                + (id = %(p)s AND %(accepted)s)::int,
              children_count = children_count - (id = %(p)s AND NOT %(accepted)s)::int
            WHERE id IN (%(m)s, %(p)s)
            """,
            {"m": message.pk, "p": parent_id, "summary": json.dumps(summary), "accepted": accepted},
        )


def record_ranking(
    *,
    parent: Message,
    user: User,
    ordered_ids: list[UUID],
    not_rankable: bool,
    task_id: UUID,
    api_client: ApiClient | None = None,
) -> Ranking:
    ranking = Ranking.objects.create(
        parent=parent,
        user=user,
        api_client=api_client,
        task_id=task_id,
        ordered_ids=ordered_ids,
        not_rankable=not_rankable,
    )
    Message.objects.filter(pk=parent.pk).update(
        ranking_count=F("ranking_count") + 1, lease_task_id=None, lease_until=None
    )
    return ranking


def release_lease(*, slot_id: UUID, task_id: UUID) -> None:
    """Free a slot whose task was skipped or expired (only if that task still holds it)."""
    Message.objects.filter(pk=slot_id, lease_task_id=task_id).update(
        lease_task_id=None, lease_until=None
    )


# --- Transitions ---------------------------------------------------------------------------


def _capacity(tree: MessageTree) -> dict[str, bool]:
    """Language-wide facts, read only for the states whose rules need them."""
    if tree.state == State.PROMPT_LOTTERY_WAITING:
        return {"has_growing_capacity": _has_room(tree.lang, State.GROWING)}
    if tree.state == State.BACKLOG_RANKING:
        return {"has_ranking_capacity": _has_room(tree.lang, State.RANKING)}
    return {}


def _has_room(lang: str, state: State) -> bool:
    """Whether the language may have one more tree in `state`. Counted under the language's
    lottery lock, held to the end of the transaction, so two trees never take the last place.
    (Lottery draws lock trees with SKIP LOCKED under it, so holding a tree lock here is safe.)"""
    _lock_lottery(lang)
    return _count(lang, state) < settings.CHORUS_TREE["max_active_trees"]


def _lock_lottery(lang: str) -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", [f"lottery:{lang}"])


def _count(lang: str, state: State) -> int:
    return MessageTree.objects.filter(lang=lang, state=state).count()


def set_state(tree: MessageTree, target: State) -> None:
    """Apply one transition (the caller checked it is legal) and what must follow it."""
    source = State(tree.state)
    tree.state = target
    tree.state_changed_at = timezone.now()
    tree.save(update_fields=["state", "state_changed_at", "state_before_halt"])
    StateChange.objects.create(
        tree=tree, source=source, target=target, created_at=tree.state_changed_at
    )
    log.info("tree %s: %s -> %s", tree.id, source, target)
    from backend.trees import jobs  # jobs import services; imported here to avoid a cycle

    if target == State.PROMPT_LOTTERY_WAITING or source == State.GROWING:
        jobs.promote_from_lottery_job.delay_on_commit(tree.lang)
    if target == State.READY_FOR_SCORING:
        jobs.score_tree_job.delay_on_commit(str(tree.id))


def advance_tree(tree: MessageTree, *, scoring_succeeded: bool | None = None) -> State:
    """Move a locked tree through every transition its facts allow; return the final state."""
    from backend.trees.selectors import tree_facts

    if tree.state == State.HALTED_BY_MODERATOR:
        return State(tree.state)
    # A transition changes no message, so the facts read once hold for a chain of them.
    facts = tree_facts(tree, scoring_succeeded=scoring_succeeded, **_capacity(tree))
    while (target := rules.next_state(facts)) is not None:
        set_state(tree, target)
        facts = dataclasses.replace(facts, state=target, **_capacity(tree))
    return State(tree.state)


@transaction.atomic
def advance_tree_by_id(*, tree_id: UUID) -> State:
    return advance_tree(lock_tree(tree_id))


@transaction.atomic
def promote_from_lottery(*, lang: str) -> list[UUID]:
    """Draw waiting prompts at random into `growing` while the language has room."""
    # One drawer per language at a time, so the growing limit is never overshot.
    _lock_lottery(lang)
    free = settings.CHORUS_TREE["max_active_trees"] - _count(lang, State.GROWING)
    if free <= 0:
        return []
    winners = list(
        MessageTree.objects.select_for_update(skip_locked=True, no_key=True)
        .filter(lang=lang, state=State.PROMPT_LOTTERY_WAITING)
        .order_by("?")[:free]
    )
    for tree in winners:
        set_state(tree, State.GROWING)
    return [tree.id for tree in winners]


@transaction.atomic
def score_tree(*, tree_id: UUID) -> State:
    """Compute consensus ranks of every ranked sibling set and finish the tree."""
    tree = lock_tree(tree_id)
    if tree.state not in (State.READY_FOR_SCORING, State.SCORING_FAILED):
        return State(tree.state)
    try:
        with transaction.atomic():
            _write_consensus(tree)
    except Exception:
        log.exception("scoring tree %s failed", tree.id)
        return advance_tree(tree, scoring_succeeded=False)
    return advance_tree(tree, scoring_succeeded=True)


def _write_consensus(tree: MessageTree) -> None:
    rankings = list(
        Ranking.objects.filter(parent__tree=tree, not_rankable=False, is_stale=False).order_by(
            "created_at"
        )
    )
    by_parent: dict[UUID, list[Ranking]] = {}
    for ranking in rankings:
        by_parent.setdefault(ranking.parent_id, []).append(ranking)
    updates: list[Message] = []
    parents: list[Message] = []
    live = set(
        Message.objects.filter(
            parent_id__in=list(by_parent), deleted=False, review_result=True
        ).values_list("id", flat=True)
    )
    for parent_id, group in by_parent.items():
        orders = [[i for i in r.ordered_ids if i in live] for r in group]
        result = consensus.aggregate(orders)
        for rank, message_id in enumerate(result.order):
            updates.append(
                Message(id=message_id, rank=rank, consensus_strength=result.strengths[message_id])
            )
        parents.append(Message(id=parent_id, replies_agreement=result.agreement))
        for ranking, order in zip(group, orders, strict=True):
            ranking.agreement_with_consensus = consensus.volunteer_agreement(order, result.order)
    Message.objects.bulk_update(updates, ["rank", "consensus_strength"])
    Message.objects.bulk_update(parents, ["replies_agreement"])
    Ranking.objects.bulk_update(rankings, ["agreement_with_consensus"])


# --- Moderator commands --------------------------------------------------------------------


@transaction.atomic
def halt_tree(*, tree_id: UUID, moderator: User) -> MessageTree:
    if not moderator.is_moderator:
        raise NotAllowed("Only moderators may halt trees.")
    tree = lock_tree(tree_id)
    if tree.state == State.HALTED_BY_MODERATOR:
        raise Conflict("The tree is halted already.")
    if tree.state in rules.TERMINAL_STATES:
        raise Conflict(f"A tree in state {tree.state} cannot be halted.")
    tree.state_before_halt = tree.state
    set_state(tree, State.HALTED_BY_MODERATOR)
    return tree


@transaction.atomic
def resume_tree(*, tree_id: UUID, moderator: User) -> MessageTree:
    if not moderator.is_moderator:
        raise NotAllowed("Only moderators may resume trees.")
    tree = lock_tree(tree_id)
    if tree.state != State.HALTED_BY_MODERATOR:
        raise Conflict("The tree is not halted.")
    target = State(tree.state_before_halt or State.GROWING)
    if target == State.GROWING and not _has_room(tree.lang, State.GROWING):
        # Its place was given to another tree meanwhile: it waits for the next draw.
        target = State.PROMPT_LOTTERY_WAITING
    tree.state_before_halt = ""
    set_state(tree, target)
    advance_tree(tree)
    return tree


# --- Reactions -----------------------------------------------------------------------------


@transaction.atomic
def react(
    *, message: Message, user: User, emoji: str, on: bool = True, client: ApiClient | None = None
) -> dict[str, int]:
    """Add (or with on=False remove) the user's emoji; returns the message's new counts.
    A banned account may do neither: its reactions stay as the ban found them."""
    if user.is_banned:
        raise UserBanned("This account is banned from contributing.")
    if emoji not in Emoji.values:
        raise InvalidInput(
            f"Unknown emoji {emoji!r}.", fields={"emoji": [problems.one_of(Emoji.values)]}
        )
    locked = Message.objects.select_for_update(no_key=True).filter(pk=message.pk).first()
    if locked is None:
        raise NotFound("No such message.")
    if on:
        _, created = Reaction.objects.get_or_create(
            message=locked, user=user, emoji=emoji, defaults={"api_client": client}
        )
        delta = 1 if created else 0
    else:
        delta = -Reaction.objects.filter(message=locked, user=user, emoji=emoji).delete()[0]
    if delta:
        counts = dict(locked.emojis)
        counts[emoji] = max(0, counts.get(emoji, 0) + delta)
        if not counts[emoji]:
            del counts[emoji]
        Message.objects.filter(pk=locked.pk).update(emojis=counts)
        locked.emojis = counts
    if emoji == Emoji.RED_FLAG and delta > 0:
        # A red-flag reaction counts towards auto-moderation (moderation depends on trees,
        # hence the import here).
        from backend.moderation.automod import Trigger, enqueue_check

        enqueue_check(locked.pk, Trigger.RED_FLAGS)
    return locked.emojis


# --- Upkeep --------------------------------------------------------------------------------


def reconcile_trees() -> dict[str, int]:
    """Re-evaluate every tree that is not finished, so none can stall for a lost event."""
    moved = 0
    open_states = [s for s in State if s not in rules.TERMINAL_STATES]
    ids = list(MessageTree.objects.filter(state__in=open_states).values_list("id", "state"))
    for tree_id, state in ids:
        if state in (State.READY_FOR_SCORING, State.SCORING_FAILED):
            after = score_tree(tree_id=tree_id)
        else:
            after = advance_tree_by_id(tree_id=tree_id)
        moved += state != after
    langs = (
        MessageTree.objects.filter(state=State.PROMPT_LOTTERY_WAITING)
        .values_list("lang", flat=True)
        .distinct()
    )
    promoted = sum(len(promote_from_lottery(lang=lang)) for lang in langs)
    return {"checked": len(ids), "moved": moved, "promoted": promoted}
