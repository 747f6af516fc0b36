"""Handing out, submitting, skipping and expiring volunteer tasks.

A task leases one slot (see `slots.py`) to one volunteer until it is submitted, skipped or
expires, so no slot is worked on twice at once and no target (reviews, replies, rankings,
tree size) is overshot. Submissions are idempotent under a client-supplied key.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any
from uuid import UUID, uuid4

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from backend.accounts.models import ApiClient, User
from backend.community import services as community
from backend.core import errors as problems
from backend.core import live, metrics
from backend.core.errors import (
    ChorusError,
    DuplicatePrompt,
    IdempotencyKeyReused,
    InvalidInput,
    NoTaskAvailable,
    NotFound,
    NotYourTask,
    PromptQueueFull,
    TaskAlreadyDone,
    TaskExpired,
    TreeHalted,
    TreeMovedOn,
    UserBanned,
)
from backend.moderation import automod, pii
from backend.tasks import slots
from backend.tasks.models import (
    LABEL_TYPES,
    RANK_TYPES,
    REPLY_TYPES,
    SkipReason,
    Task,
    TaskStatus,
    TaskType,
)
from backend.trees import labels
from backend.trees import selectors as tree_selectors
from backend.trees import services as trees
from backend.trees.models import Message, MessageTree
from backend.trees.rules import State

RANDOM = "random"
SLOT_TYPES = [t.value for t in TaskType if t != TaskType.INITIAL_PROMPT]
# Reply slots tried per request; each try that loses a race costs two statements.
CLAIM_ATTEMPTS = 2


def lease_duration() -> timedelta:
    return timedelta(minutes=settings.CHORUS_TASK_LEASE_MINUTES)


def counts_changed(lang: str) -> None:
    """Tell the dashboards of `lang` that the tasks open to them changed (live updates).
    Every change is sent; each connection reads its counts at most once a second."""
    live.broadcast(live.task_group(lang), {"type": "counts.changed"})


def ensure_can_work(user: User) -> None:
    if user.is_banned:
        raise UserBanned("This account is banned from contributing.")


def validate_lang(lang: str) -> str:
    if lang not in settings.CHORUS_LANGUAGES:
        raise InvalidInput(
            f"Chorus does not collect data in {lang!r}.",
            fields={"lang": [problems.one_of(settings.CHORUS_LANGUAGES)]},
        )
    return lang


# --- Handing out ---------------------------------------------------------------------------


def request_task(*, user: User, task_type: str, lang: str) -> Task:
    """Lease a task of `task_type` (or any, for "random") in `lang` to `user`.

    Raises UserBanned, InvalidInput, NoTaskAvailable (with the reasons).
    """
    try:
        task = _request_task(user=user, task_type=task_type, lang=lang)
    except ChorusError as error:
        metrics.TASK_REQUESTS.labels(metrics.task_type_label(task_type), error.code).inc()
        raise
    metrics.TASK_REQUESTS.labels(task.type, "handed_out").inc()
    return task


def _request_task(*, user: User, task_type: str, lang: str) -> Task:
    ensure_can_work(user)
    validate_lang(lang)
    if task_type != RANDOM and task_type not in TaskType.values:
        raise InvalidInput(
            f"Unknown task type {task_type!r}.",
            fields={"type": [problems.one_of(["random", *TaskType.values])]},
        )
    if task_type != TaskType.INITIAL_PROMPT:
        kinds = SLOT_TYPES if task_type == RANDOM else [task_type]
        task = _lease_slot(user=user, lang=lang, kinds=kinds)
        if task is not None:
            counts_changed(lang)
            return task
    if task_type in (RANDOM, TaskType.INITIAL_PROMPT):
        task = _lease_initial_prompt(user=user, lang=lang)
        if task is not None:
            counts_changed(lang)
            return task
    from backend.tasks.selectors import why_no_task

    code_reasons = why_no_task(user=user, lang=lang, task_type=task_type)
    raise NoTaskAvailable(
        f"No {task_type.replace('_', ' ')} task in {lang!r} for you right now.",
        reasons=code_reasons,
    )


def _lease_slot(*, user: User, lang: str, kinds: list[str]) -> Task | None:
    params: dict[str, Any] = {
        "lang": lang,
        "user": user.pk,
        "until": timezone.now() + lease_duration(),
    }
    quick = [kind for kind in kinds if kind not in REPLY_TYPES]
    replies = [kind for kind in kinds if kind in REPLY_TYPES]
    if quick:
        # Rankings and reviews come first (they finish what is started) and need no tree lock.
        with connection.cursor() as cursor:
            cursor.execute(slots.PICK_AND_CLAIM_SQL, {**params, "task": uuid4(), "kinds": quick})
            row = cursor.fetchone()
        if row is not None:
            return _leased_task(row, user=user, lang=lang, until=params["until"])
    if not replies:
        return None
    with connection.cursor() as cursor:
        cursor.execute(slots.CANDIDATES_SQL, {**params, "kinds": replies, "limit": CLAIM_ATTEMPTS})
        candidates = cursor.fetchall()
    for message_id, tree_id, kind in candidates:
        task = _claim(params, message_id=message_id, tree_id=tree_id, kind=kind)
        if task is not None:
            return _leased_task(task, user=user, lang=lang, until=params["until"])
    return None


@transaction.atomic
def _claim(params: dict[str, Any], *, message_id: UUID, tree_id: UUID, kind: str) -> tuple | None:
    """Lease one candidate slot, re-checked under the tree lock; None if it was taken."""
    with connection.cursor() as cursor:
        cursor.execute(slots.LOCK_TREE_SQL, [tree_id])
        cursor.execute(
            slots.CLAIM_SQL, {**params, "task": uuid4(), "message": message_id, "kind": kind}
        )
        return cursor.fetchone()


def _leased_task(row: tuple, *, user: User, lang: str, until: Any) -> Task:
    """The Task the claim statement inserted, built from its RETURNING row (no re-read)."""
    task_id, task_type, tree_id, slot_id, offered_ids, created_at = row
    task = Task(
        id=task_id,
        type=task_type,
        lang=lang,
        user=user,
        tree_id=tree_id,
        slot_id=slot_id,
        status=TaskStatus.LEASED,
        created_at=created_at,
        expires_at=until,
        offered_ids=list(offered_ids),
    )
    task._state.adding = False
    task._state.db = "default"
    return task


@transaction.atomic
def _lease_initial_prompt(*, user: User, lang: str) -> Task | None:
    """A new prompt, while the language's review queue and lottery have room for it."""
    if not _prompt_queue_has_room(lang):
        return None
    return Task.objects.create(
        type=TaskType.INITIAL_PROMPT,
        lang=lang,
        user=user,
        expires_at=timezone.now() + lease_duration(),
    )


def _prompt_queue_has_room(lang: str) -> bool:
    """Whether one more prompt may enter review in `lang`; holds the language's prompt lock
    to the end of the transaction, so the caller's new prompt is counted before anyone's."""
    conf = settings.CHORUS_TREE
    with connection.cursor() as cursor:
        # One writer per language decides at a time, so the queue limits hold exactly.
        cursor.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", [f"prompts:{lang}"])
        cursor.execute(
            """
            SELECT
              (SELECT count(*) FROM trees_messagetree
               WHERE lang = %(lang)s AND state = 'initial_prompt_review')
              + (SELECT count(*) FROM tasks_task
                 WHERE lang = %(lang)s AND type = 'initial_prompt' AND status = 'leased'
                   AND expires_at > now()),
              (SELECT count(*) FROM trees_messagetree
               WHERE lang = %(lang)s AND state = 'prompt_lottery_waiting')
            """,
            {"lang": lang},
        )
        in_review, in_lottery = cursor.fetchone()
    # Every prompt in review may join the lottery, so both count against its cap.
    return bool(
        in_review < conf["max_prompts_in_review"]
        and in_review + in_lottery < conf["max_prompts_in_lottery"]
    )


@transaction.atomic
def propose_prompt(*, user: User, text: str, lang: str) -> Message:
    """A first prompt that comes from elsewhere than a task (a chat turn its owner offers):
    the same text rules and queue limits, then the same review.

    Raises UserBanned, InvalidInput, PromptQueueFull, DuplicatePrompt.
    """
    ensure_can_work(user)
    validate_lang(lang)
    text = validate_text(text)
    if not _prompt_queue_has_room(lang):
        raise PromptQueueFull(
            f"The prompts waiting for review in {lang!r} are at their limit; try again later."
        )
    prompt = _new_prompt(author=user, text=text, lang=lang)
    counts_changed(lang)
    return prompt


# --- Submitting ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Submission:
    task: Task
    result_id: UUID
    replayed: bool = False


def submit_task(
    *,
    task_id: UUID,
    user: User,
    key: str | None,
    payload: dict[str, Any],
    client: ApiClient | None = None,
) -> Submission:
    """Do the task's work. The same key again returns the first result (a safe retry).
    `client`: the API client it came through; the task and what it made record it.

    Raises NotFound, NotYourTask, TaskAlreadyDone, TaskExpired, TreeHalted, TreeMovedOn,
    InvalidInput, DuplicatePrompt, IdempotencyKeyReused, UserBanned.
    """
    try:
        ensure_can_work(user)
        try:
            submission = _submit(
                task_id=task_id, user=user, key=key, payload=payload, client=client
            )
        except IntegrityError as error:
            if "task_submission_key_unique" in str(error):
                raise IdempotencyKeyReused(
                    "This idempotency key was used for another task.", fields={"key": ["Reused."]}
                ) from error
            raise
    except ChorusError as error:
        metrics.TASK_SUBMISSIONS.labels("unknown", error.code).inc()
        raise
    outcome = "replayed" if submission.replayed else "submitted"
    metrics.TASK_SUBMISSIONS.labels(submission.task.type, outcome).inc()
    return submission


@transaction.atomic
def _submit(
    *,
    task_id: UUID,
    user: User,
    key: str | None,
    payload: dict[str, Any],
    client: ApiClient | None,
) -> Submission:
    task = _lock_task(task_id)
    if task.user_id != user.pk:
        raise NotYourTask("This task was handed to someone else.")
    if task.status == TaskStatus.SUBMITTED:
        if key is not None and key == task.submission_key:
            assert task.result_id is not None
            return Submission(task=task, result_id=task.result_id, replayed=True)
        raise TaskAlreadyDone("This task was submitted already.", result_id=str(task.result_id))
    removed = task.slot is not None and task.slot.deleted
    if removed and task.status in (TaskStatus.LEASED, TaskStatus.EXPIRED):
        # Deleting the message ended the task and its lease: say why, also once the expiry
        # job closed it (moderation.services._delete_subtree).
        raise TreeMovedOn("The message this task works on was removed; ask for a new task.")
    if task.status == TaskStatus.EXPIRED:
        raise TaskExpired("The task's time ran out; ask for a new one.")
    if task.status != TaskStatus.LEASED:
        raise TaskAlreadyDone(f"This task is {task.status}; ask for a new one.")
    now = timezone.now()
    if task.expires_at <= now:
        raise TaskExpired("The task's time ran out; ask for a new one.")
    _validate_payload(task, payload)

    if task.type == TaskType.INITIAL_PROMPT:
        result_id = _new_prompt(author=user, text=payload["text"], lang=task.lang, client=client).id
    else:
        _check_slot(task)
        assert task.tree is not None
        assert task.slot is not None
        result_id = _do_slot_work(
            task=task, tree=task.tree, slot=task.slot, user=user, payload=payload, client=client
        )

    # Decided by this review: the slot was read (locked) before the review was recorded.
    decided = (
        task.type in LABEL_TYPES
        and task.slot is not None
        and task.tree is not None
        and task.slot.review_result is None
        and task.slot.review_count + 1 >= task.tree.reviews_needed
    )
    task.status = TaskStatus.SUBMITTED
    task.done_at = now
    task.submission_key = key
    task.result_id = result_id
    task.api_client = client
    # The task's UPDATE travels with its points (one statement; see community.store_awards).
    mark_done = (
        "UPDATE tasks_task SET status = %(t_status)s, done_at = %(t_done)s,"
        " submission_key = %(t_key)s, result_id = %(t_result)s, api_client_id = %(t_client)s"
        " WHERE id = %(t_id)s",
        {
            "t_status": task.status,
            "t_done": now,
            "t_key": key,
            "t_result": result_id,
            "t_client": client.pk if client else None,
            "t_id": task.pk,
        },
    )
    community.award_submission(task=task, decided=decided, along_with=mark_done)
    counts_changed(task.lang)
    return Submission(task=task, result_id=result_id)


def _new_prompt(*, author: User, text: str, lang: str, client: ApiClient | None = None) -> Message:
    """A new tree from a first prompt, whatever brought it (a task, a chat turn): refused
    when it nearly repeats a live prompt, flagged when it holds personal data."""
    _ensure_new_prompt(text, lang=lang)
    prompt = trees.create_tree(author=author, text=text, lang=lang, api_client=client)
    _flag_personal_data(prompt)
    return prompt


def _flag_personal_data(message: Message) -> None:
    """The text is accepted; personal data in it puts it in front of a moderator (two
    statements, only when some is found)."""
    if not settings.CHORUS_AUTOMOD_PII:
        return
    kinds = pii.detect(message.text)
    if kinds:
        automod.flag_personal_data(message=message, kinds=[str(kind) for kind in kinds])


def _ensure_new_prompt(text: str, *, lang: str) -> None:
    """Refuse a prompt that nearly repeats a live one (raising rolls the submission back,
    so the task stays open for a rewrite). Two near-identical prompts submitted in the
    same instant may both pass: reviewers and moderators catch that rare pair."""
    if not settings.CHORUS_REJECT_DUPLICATE_PROMPTS:
        return
    duplicate = tree_selectors.find_duplicate_prompt(text=text, lang=lang)
    if duplicate is not None:
        raise DuplicatePrompt(
            "A prompt like this one exists already; write a different one.",
            fields={"text": ["Nearly the same as an existing prompt."]},
            duplicate_of={"message_id": str(duplicate.id), "tree_id": str(duplicate.tree_id)},
        )


def _lock_task(task_id: UUID) -> Task:
    """Lock the task, its tree and its slot in one statement, in the module's lock order
    (task, tree, message); rows locked are read at their latest committed version."""
    locked = Task.objects.select_for_update(no_key=True)
    try:
        return (
            locked.select_related("tree", "slot")
            .select_for_update(of=("self", "tree", "slot"), no_key=True)
            .get(pk=task_id, tree__state__isnull=False, slot__role__isnull=False)
        )
    except Task.DoesNotExist:
        pass
    try:  # a first prompt has no tree or slot yet
        return locked.get(pk=task_id)
    except Task.DoesNotExist:
        raise NotFound("No such task.") from None


def _check_slot(task: Task) -> None:
    """The task's lease still holds and its tree still wants this work."""
    tree, slot = task.tree, task.slot
    assert tree is not None
    assert slot is not None
    if tree.state == State.HALTED_BY_MODERATOR:
        raise TreeHalted("A moderator halted this tree; its tasks are closed.")
    if slot.lease_task_id != task.id:
        raise TaskExpired("The task's lease ran out and its slot went to someone else.")
    expected = {
        "review": (State.INITIAL_PROMPT_REVIEW, State.GROWING),
        "reply": (State.GROWING,),
        "rank": (State.RANKING,),
    }[_family(task.type)]
    if tree.state not in expected:
        raise TreeMovedOn(f"The tree moved on (it is {tree.state}); ask for a new task.")


def _family(task_type: str) -> str:
    if task_type in LABEL_TYPES:
        return "review"
    return "rank" if task_type in RANK_TYPES else "reply"


def _do_slot_work(
    *,
    task: Task,
    tree: MessageTree,
    slot: Message,
    user: User,
    payload: dict[str, Any],
    client: ApiClient | None,
) -> UUID:
    family = _family(task.type)
    if family == "reply":
        # Growth cannot end with a new message pending review: no transition to check.
        reply = trees.add_reply(
            tree=tree, parent=slot, author=user, text=payload["text"], api_client=client
        )
        _flag_personal_data(reply)
        return reply.id
    if family == "review":
        review, decided = trees.record_review(
            tree=tree,
            message=slot,
            user=user,
            values=payload["labels"],
            task_id=task.id,
            api_client=client,
        )
        if automod.is_red_flag_review(payload["labels"]):
            automod.enqueue_check(slot.pk, automod.Trigger.RED_FLAGS)
        if decided:
            trees.advance_tree(tree)
        return review.id
    ranking = trees.record_ranking(
        parent=slot,
        user=user,
        ordered_ids=payload.get("ranking") or [],
        not_rankable=bool(payload.get("not_rankable")),
        task_id=task.id,
        api_client=client,
    )
    trees.advance_tree(tree)
    return ranking.id


def _validate_payload(task: Task, payload: dict[str, Any]) -> None:
    if task.type in REPLY_TYPES or task.type == TaskType.INITIAL_PROMPT:
        payload["text"] = validate_text(payload.get("text"))
    elif task.type in LABEL_TYPES:
        errors = labels.validate_values(task.type, payload.get("labels"))
        if errors:
            raise InvalidInput("Some labels are not valid.", fields=errors)
        payload["labels"] = {k: float(v) for k, v in payload["labels"].items()}
    else:
        payload["ranking"] = validate_ranking(task, payload.get("ranking"), payload)


def validate_text(text: object) -> str:
    limit_min, limit_max = settings.CHORUS_MIN_TEXT_LENGTH, settings.CHORUS_MAX_TEXT_LENGTH
    if not isinstance(text, str):
        raise InvalidInput("Write some text.", fields={"text": ["Required, as a string."]})
    text = text.strip()
    if len(text) < limit_min:
        raise InvalidInput("The text is empty.", fields={"text": [problems.BLANK]})
    if len(text) > limit_max:
        raise InvalidInput(
            f"The text is {len(text)} characters long; the limit is {limit_max}.",
            fields={"text": [problems.at_most(limit_max)]},
        )
    if "\x00" in text:
        raise InvalidInput("The text contains a NUL character.", fields={"text": ["Invalid."]})
    return text


def validate_ranking(task: Task, ranking: object, payload: dict[str, Any]) -> list[UUID]:
    if payload.get("not_rankable") is True and ranking in (None, []):
        return []
    if not isinstance(ranking, list):
        raise InvalidInput(
            "Give the replies' ids in order, best first.", fields={"ranking": [problems.REQUIRED]}
        )
    try:
        ids = [UUID(str(item)) for item in ranking]
    except ValueError:
        raise InvalidInput(
            "A ranking lists message ids.", fields={"ranking": ["Not all are UUIDs."]}
        ) from None
    if sorted(ids) != sorted(task.offered_ids) or len(set(ids)) != len(ids):
        raise InvalidInput(
            "A ranking must order exactly the replies offered, each once.",
            fields={"ranking": [f"Permute these: {', '.join(map(str, task.offered_ids))}."]},
        )
    return ids


# --- Skipping and expiry -------------------------------------------------------------------


@transaction.atomic
def skip_task(*, task_id: UUID, user: User, reason: str, note: str = "") -> Task:
    """Give the task back; this volunteer will not be offered its slot again."""
    if reason not in SkipReason.values:
        raise InvalidInput(
            "Say why you skip.", fields={"reason": [problems.one_of(SkipReason.values)]}
        )
    task = Task.objects.select_for_update(no_key=True).filter(pk=task_id).first()
    if task is None:
        raise NotFound("No such task.")
    if task.user_id != user.pk:
        raise NotYourTask("This task was handed to someone else.")
    if task.status != TaskStatus.LEASED:
        raise TaskAlreadyDone(f"This task is {task.status} already.")
    task.status = TaskStatus.SKIPPED
    task.skip_reason = reason
    task.skip_note = note[:500]
    task.done_at = timezone.now()
    task.save(update_fields=["status", "skip_reason", "skip_note", "done_at"])
    _free_slot(task)
    if task.slot_id is not None and task.type not in RANK_TYPES and automod.counts_as_skip(reason):
        automod.enqueue_check(task.slot_id, automod.Trigger.SKIPS)
    counts_changed(task.lang)
    return task


def _free_slot(task: Task) -> None:
    if task.slot_id is None or task.tree_id is None:
        return
    tree = trees.lock_tree(task.tree_id)
    trees.release_lease(slot_id=task.slot_id, task_id=task.id)
    # A reply that will not come may have been all the tree was waiting for.
    trees.advance_tree(tree)


def expire_tasks() -> int:
    """Mark leased tasks past their time as expired and free their slots.

    One transaction per task: each locks one tree, so two runs never wait on each other.
    """
    due = Task.objects.filter(status=TaskStatus.LEASED, expires_at__lte=timezone.now())
    expired = 0
    for task_id in due.values_list("id", flat=True).iterator():
        with transaction.atomic():
            task = (
                Task.objects.select_for_update(skip_locked=True, no_key=True)
                .filter(pk=task_id, status=TaskStatus.LEASED, expires_at__lte=timezone.now())
                .first()
            )
            if task is None:
                continue
            task.status = TaskStatus.EXPIRED
            task.done_at = timezone.now()
            task.save(update_fields=["status", "done_at"])
            _free_slot(task)
            expired += 1
    return expired


# --- The served model's replies ------------------------------------------------------------
#
# The model fills assistant-reply slots as a volunteer does: it leases the slot (under the
# tree lock, re-checking that the slot is open, so no tree limit is overshot), writes while
# the lease holds, and its reply is added only if the lease is still its own. A lease that
# runs out frees the slot like an expired task; the reply that comes too late is dropped.


@dataclass(frozen=True)
class ModelLease:
    slot_id: UUID
    tree_id: UUID
    lease_id: UUID
    until: Any


def open_model_reply_slots(*, lang: str) -> list[tuple[UUID, UUID]]:
    """(slot id, tree id) of the assistant-reply slots the model may fill now, shuffled."""
    with connection.cursor() as cursor:
        cursor.execute(slots.MODEL_CANDIDATES_SQL, {"lang": lang})
        return [(row[0], row[1]) for row in cursor.fetchall()]


@transaction.atomic
def lease_slot_for_model(*, slot_id: UUID, tree_id: UUID, seconds: float) -> ModelLease | None:
    """Lease one reply slot to the model; None if it is no longer open or free."""
    lease = ModelLease(
        slot_id=slot_id,
        tree_id=tree_id,
        lease_id=uuid4(),
        until=timezone.now() + timedelta(seconds=seconds),
    )
    lang = MessageTree.objects.filter(pk=tree_id).values_list("lang", flat=True).first()
    with connection.cursor() as cursor:
        cursor.execute(slots.LOCK_TREE_SQL, [tree_id])
        params = {"lang": lang, "lease": lease.lease_id, "until": lease.until, "message": slot_id}
        cursor.execute(slots.MODEL_CLAIM_SQL, params)
        if cursor.fetchone() is None:
            return None
    counts_changed(lang or "")
    return lease


@transaction.atomic
def submit_model_reply(*, lease: ModelLease, text: str, model_name: str) -> Message | None:
    """Add the model's reply under the leased slot, or None (and the slot freed) when the
    lease ran out, the tree moved on, or the text breaks the text rules."""
    tree = trees.lock_tree(lease.tree_id)
    slot = Message.objects.select_for_update(no_key=True).filter(pk=lease.slot_id).first()
    holds = (
        slot is not None
        and slot.lease_task_id == lease.lease_id
        and slot.lease_until is not None
        and slot.lease_until > timezone.now()
    )
    text = text.strip()[: settings.CHORUS_MAX_TEXT_LENGTH]
    if not holds or slot is None or tree.state != State.GROWING or slot.deleted:
        _release_model_lease(tree, lease)
        return None
    try:
        text = validate_text(text)
    except InvalidInput:
        _release_model_lease(tree, lease)
        return None
    message = trees.add_reply(
        tree=tree, parent=slot, author=None, text=text, model_name=model_name or "unknown"
    )
    counts_changed(tree.lang)
    return message


@transaction.atomic
def release_model_lease(*, lease: ModelLease) -> None:
    """Give the slot back (the model could not write)."""
    _release_model_lease(trees.lock_tree(lease.tree_id), lease)


def _release_model_lease(tree: MessageTree, lease: ModelLease) -> None:
    trees.release_lease(slot_id=lease.slot_id, task_id=lease.lease_id)
    # A reply that will not come may have been all the tree was waiting for.
    trees.advance_tree(tree)
    counts_changed(tree.lang)
