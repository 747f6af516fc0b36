"""Reads about tasks: what a volunteer can get now, why there is nothing, a task's context."""

from __future__ import annotations

from dataclasses import dataclass, field
from uuid import UUID

from django.conf import settings
from django.db import connection
from django.db.models import Count
from django.utils import timezone

from backend.accounts.models import User
from backend.core.errors import NotFound, NotYourTask
from backend.tasks import slots
from backend.tasks.models import Task, TaskType
from backend.trees.models import Message, MessageTree
from backend.trees.rules import State
from backend.trees.selectors import access_message, conversation_with


def availability(*, user: User, lang: str) -> dict[str, dict[str, int]]:
    """Per task type: open slots in the language, free ones, and those `user` may take."""
    counts = {t.value: {"open": 0, "free": 0, "available": 0} for t in TaskType}
    with connection.cursor() as cursor:
        cursor.execute(slots.AVAILABILITY_SQL, {"lang": lang, "user": user.pk})
        for kind, open_, free, yours in cursor.fetchall():
            counts[kind] = {"open": open_, "free": free, "available": yours}
    room = _prompt_room(lang)
    counts[TaskType.INITIAL_PROMPT] = {"open": room, "free": room, "available": room}
    return counts


def _prompt_room(lang: str) -> int:
    conf = settings.CHORUS_TREE
    states = dict(
        MessageTree.objects.filter(
            lang=lang, state__in=[State.INITIAL_PROMPT_REVIEW, State.PROMPT_LOTTERY_WAITING]
        )
        .values_list("state")
        .annotate(n=Count("id"))
    )
    leased = Task.objects.filter(
        lang=lang, type=TaskType.INITIAL_PROMPT, status="leased", expires_at__gt=timezone.now()
    ).count()
    in_review = states.get(State.INITIAL_PROMPT_REVIEW, 0) + leased
    in_lottery = states.get(State.PROMPT_LOTTERY_WAITING, 0)
    review_room = conf["max_prompts_in_review"] - in_review
    lottery_room = conf["max_prompts_in_lottery"] - in_review - in_lottery
    return max(0, min(review_room, lottery_room))


def why_no_task(*, user: User, lang: str, task_type: str) -> list[dict[str, str]]:
    """Reasons, most specific first, that nothing of `task_type` could be handed out."""
    return reasons_from_counts(availability(user=user, lang=lang), lang=lang, task_type=task_type)


def reasons_from_counts(
    counts: dict[str, dict[str, int]], *, lang: str, task_type: str
) -> list[dict[str, str]]:
    """why_no_task from counts already read with `availability`."""
    wanted = [t for t in counts if task_type in ("random", t)]
    reasons: list[dict[str, str]] = []
    for kind in wanted:
        c = counts[kind]
        label = TaskType(kind).label.lower()
        if kind == TaskType.INITIAL_PROMPT:
            if c["available"] == 0:
                reasons.append(
                    {
                        "code": "prompt_queue_full",
                        "message": f"The queue of new prompts in {lang!r} is full; "
                        "prompts are reviewed first.",
                    }
                )
        elif c["open"] == 0:
            reasons.append({"code": "nothing_open", "message": f"Nothing to {label} in {lang!r}."})
        elif c["free"] == 0:
            reasons.append(
                {
                    "code": "all_taken",
                    "message": f"All {c['open']} open slots to {label} are being worked on.",
                }
            )
        elif c["available"] == 0:
            reasons.append(
                {
                    "code": "already_done_or_own",
                    "message": f"The {c['free']} free slots to {label} are your own messages "
                    "or ones you have had already.",
                }
            )
    if not reasons:
        reasons.append(
            {"code": "contention", "message": "Other volunteers took the last slots; try again."}
        )
    return reasons


@dataclass
class TaskContext:
    task: Task
    conversation: list[Message] = field(default_factory=list)
    replies: list[Message] = field(default_factory=list)


def access_task(*, user: User, task_id: UUID) -> Task:
    task = Task.objects.filter(pk=task_id).first()
    if task is None:
        raise NotFound("No such task.")
    if task.user_id != user.pk:
        raise NotYourTask("This task was handed to someone else.")
    return task


def access_reportable_message(*, user: User, message_id: UUID, task_id: UUID | None) -> Message:
    """A message the user may see, or one their own task shows them (a reply waiting for
    their review is not public yet, but they must be able to report it); else NotFound."""
    try:
        return access_message(user=user, message_id=message_id)
    except NotFound:
        if task_id is None:
            raise
    try:
        task = access_task(user=user, task_id=task_id)
    except NotYourTask:
        raise NotFound("No such message.") from None
    context = task_context(task)
    for message in [*context.conversation, *context.replies]:
        if message.id == message_id:
            return message
    raise NotFound("No such message.")


def task_context(task: Task) -> TaskContext:
    """The conversation up to the slot, and the replies offered for ranking, in one query."""
    if task.slot_id is None:
        return TaskContext(task=task)
    chain, replies = conversation_with(task.slot_id, others=task.offered_ids)
    return TaskContext(task=task, conversation=chain, replies=replies)
