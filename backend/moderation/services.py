from __future__ import annotations

import json
from typing import Any
from uuid import UUID

from django.db import IntegrityError, transaction
from django.utils import timezone

from backend.accounts.models import ApiClient, Role, User
from backend.core import errors as problems
from backend.core import live
from backend.core.errors import Conflict, InvalidInput, NotAllowed, NotFound, UserBanned
from backend.moderation.models import VOLUNTEER_REASONS, Action, AuditEntry, Report
from backend.tasks.models import LABEL_TYPES, RANK_TYPES, Task, TaskStatus
from backend.trees import corrections, rules
from backend.trees import services as trees
from backend.trees.models import Message, MessageRevision, MessageTree
from backend.trees.rules import State


def announce_report(message_id: UUID) -> None:
    """Tell the moderators' open queues (live) that `message_id` has a new report, once the
    current transaction commits."""
    live.broadcast(live.MODERATION_GROUP, {"type": "report.created", "message_id": str(message_id)})


def report_message(
    *,
    message: Message,
    reporter: User,
    reason: str,
    text: str = "",
    client: ApiClient | None = None,
) -> Report:
    """Put a message in front of the moderators. One open report per person and message.
    A banned account may not report: it could flood the moderators' queue."""
    if reporter.is_banned:
        raise UserBanned("This account is banned from contributing.")
    if reason not in VOLUNTEER_REASONS:
        raise InvalidInput(
            "Say why you report it.",
            fields={"reason": [problems.one_of(VOLUNTEER_REASONS)]},
        )
    try:
        with transaction.atomic():
            report = Report.objects.create(
                message=message,
                reporter=reporter,
                api_client=client,
                reason=reason,
                text=text.strip()[:2000],
            )
    except IntegrityError:
        raise Conflict("You reported this message already; a moderator will look at it.") from None
    announce_report(message.pk)
    from backend.moderation.automod import Trigger, enqueue_check  # automod uses this module

    enqueue_check(message.pk, Trigger.RED_FLAGS)  # every report is a red flag
    return report


# --- Moderator actions ---------------------------------------------------------------------
#
# Each checks the actor's role, does its work under the tree locks the task engine uses,
# and appends one audit entry in the same transaction: an action without its entry cannot
# happen, nor the other way round.


def ensure_moderator(user: User) -> None:
    if not user.is_moderator:
        raise NotAllowed("Only moderators may do this.")


def _reason(reason: str, *, required: bool = True) -> str:
    reason = (reason or "").strip()
    if required and not reason:
        raise InvalidInput(
            "Say why (it goes into the audit log).", fields={"reason": [problems.REQUIRED]}
        )
    if len(reason) > 1000:
        raise InvalidInput(
            "The reason is too long.", fields={"reason": ["At most 1000 characters."]}
        )
    return reason


def audit(
    *,
    actor: User | None,
    action: str,
    target: Message | MessageTree | User | Report,
    reason: str = "",
    client: ApiClient | None = None,
    **details: Any,
) -> AuditEntry:
    target_type = {
        Message: "message",
        MessageTree: "tree",
        User: "user",
        Report: "report",
    }[type(target)]
    return AuditEntry.objects.create(
        actor_id=actor.pk if actor else None,
        actor_name=actor.username if actor else "auto-moderation",
        api_client_id=client.pk if client else None,
        api_client_name=client.name if client else "",
        action=action,
        target_type=target_type,
        target_id=str(target.pk),
        reason=reason,
        details=json.loads(json.dumps(details, default=str)),
    )


def locked_message(message_id: UUID) -> tuple[MessageTree, Message]:
    """Tree lock first, then the message (the engine's lock order)."""
    tree_id = Message.objects.filter(pk=message_id).values_list("tree_id", flat=True).first()
    if tree_id is None:
        raise NotFound("No such message.")
    tree = trees.lock_tree(tree_id)
    message = Message.objects.select_for_update(no_key=True).get(pk=message_id)
    return tree, message


@transaction.atomic
def edit_message(
    *, moderator: User, message_id: UUID, text: str, reason: str, client: ApiClient | None = None
) -> Message:
    """Change a message's text; the old text is kept as a revision. In a live tree its
    reviews and the rankings that compared it go stale and it is reviewed again."""
    ensure_moderator(moderator)
    reason = _reason(reason)
    from backend.tasks.services import validate_text

    text = validate_text(text)
    tree, message = locked_message(message_id)
    if text == message.text:
        raise InvalidInput("The text is unchanged.", fields={"text": [problems.UNCHANGED]})
    MessageRevision.objects.create(
        message=message, previous_text=message.text, editor=moderator, reason=reason
    )
    stale_reviews, stale_rankings = corrections.edit_text(tree=tree, message=message, text=text)
    trees.advance_tree(tree)
    audit(
        actor=moderator,
        client=client,
        action=Action.MESSAGE_EDIT,
        target=message,
        reason=reason,
        tree_id=tree.pk,
        previous_text=message.text,
        stale_reviews=stale_reviews,
        stale_rankings=stale_rankings,
    )
    message.refresh_from_db()
    return message


@transaction.atomic
def delete_message(
    *,
    moderator: User | None,
    message_id: UUID,
    reason: str,
    action: str = Action.MESSAGE_DELETE,
    details: dict[str, Any] | None = None,
    client: ApiClient | None = None,
) -> Message:
    """Hide a message and everything below it. Deleting a first prompt halts its tree.
    Without a moderator it is auto-moderation's act (`action` says which, `details` go
    into the audit entry)."""
    if moderator is not None:
        ensure_moderator(moderator)
    reason = _reason(reason)
    tree, message = locked_message(message_id)
    if message.deleted:
        raise Conflict("The message is deleted already.")
    changed = _delete_subtree(message)
    if message.parent_id is None and tree.state not in (
        State.HALTED_BY_MODERATOR,
        *rules.TERMINAL_STATES,
    ):
        tree.state_before_halt = tree.state
        trees.set_state(tree, State.HALTED_BY_MODERATOR)
    else:
        trees.advance_tree(tree)
    audit(
        actor=moderator,
        client=client, action=action, target=message, reason=reason,
        tree_id=tree.pk, messages=len(changed), **(details or {}),
    )  # fmt: skip
    message.refresh_from_db()
    return message


def _delete_subtree(message: Message) -> list[UUID]:
    """Delete the message with everything below it (the ids changed), and end the open
    tasks on them as the deletion ended their leases: their time is up now, the expiry job
    closes them, and their holders are told the message was removed."""
    changed = corrections.set_deleted(message=message, deleted=True)
    now = timezone.now()
    Task.objects.filter(slot_id__in=changed, status=TaskStatus.LEASED, expires_at__gt=now).update(
        expires_at=now
    )
    return changed


@transaction.atomic
def undelete_message(
    *, moderator: User, message_id: UUID, reason: str, client: ApiClient | None = None
) -> Message:
    """Restore a deleted message with everything below it, if its place is still free."""
    ensure_moderator(moderator)
    reason = _reason(reason)
    tree, message = locked_message(message_id)
    if not message.deleted:
        raise Conflict("The message is not deleted.")
    if message.parent_id is not None:
        parent = Message.objects.get(pk=message.parent_id)
        if parent.deleted:
            raise Conflict("Its parent is deleted: restore that first.")
        limit = (
            tree.max_children_prompter if parent.role == "prompter" else tree.max_children_assistant
        )
        if message.review_result is not False and parent.children_count >= limit:
            raise Conflict("Its parent has all the replies it may have now.")
    changed = corrections.set_deleted(message=message, deleted=False)
    trees.advance_tree(tree)
    audit(
        actor=moderator,
        client=client, action=Action.MESSAGE_UNDELETE, target=message, reason=reason,
        tree_id=tree.pk, messages=len(changed),
    )  # fmt: skip
    message.refresh_from_db()
    return message


@transaction.atomic
def halt_tree(
    *, moderator: User, tree_id: UUID, reason: str = "", client: ApiClient | None = None
) -> MessageTree:
    reason = _reason(reason, required=False)
    tree = trees.halt_tree(tree_id=tree_id, moderator=moderator)
    audit(actor=moderator, client=client, action=Action.TREE_HALT, target=tree, reason=reason)
    return tree


@transaction.atomic
def resume_tree(
    *, moderator: User, tree_id: UUID, reason: str = "", client: ApiClient | None = None
) -> MessageTree:
    reason = _reason(reason, required=False)
    tree = trees.resume_tree(tree_id=tree_id, moderator=moderator)
    audit(
        actor=moderator,
        client=client,
        action=Action.TREE_RESUME,
        target=tree,
        reason=reason,
        state=tree.state,
    )
    return tree


# Tree settings a moderator may change, with their bounds.
TREE_SETTINGS: dict[str, tuple[type, float, float]] = {
    "reviews_needed": (int, 1, 20),
    "acceptance_threshold": (float, 0.0, 1.0),
    "max_depth": (int, 1, 20),
    "max_children_prompter": (int, 1, 10),
    "max_children_assistant": (int, 1, 10),
    "goal_size": (int, 1, 500),
    "rankings_needed": (int, 1, 20),
    "rank_prompter_replies": (bool, 0, 1),
}


@transaction.atomic
def change_tree_settings(
    *,
    moderator: User,
    tree_id: UUID,
    changes: dict[str, Any],
    reason: str,
    client: ApiClient | None = None,
) -> MessageTree:
    """Change one tree's limits (copied from the deployment's settings at its creation)."""
    ensure_moderator(moderator)
    reason = _reason(reason)
    errors: dict[str, list[str]] = {}
    clean: dict[str, Any] = {}
    for name, value in changes.items():
        if name not in TREE_SETTINGS:
            errors[name] = [f"Not a tree setting; one of: {', '.join(TREE_SETTINGS)}."]
            continue
        kind, low, high = TREE_SETTINGS[name]
        if kind is bool:
            if not isinstance(value, bool):
                errors[name] = ["Must be true or false."]
            else:
                clean[name] = value
        elif (
            isinstance(value, bool)
            or not isinstance(value, int | float)
            or (kind is int and not float(value).is_integer())
        ):
            errors[name] = [problems.WHOLE_NUMBER if kind is int else problems.NUMBER]
        elif not low <= value <= high:
            errors[name] = [problems.between(low, high)]
        else:
            clean[name] = kind(value)
    if errors or not clean:
        raise InvalidInput(
            "Some settings are not valid.", fields=errors or {"settings": ["Empty."]}
        )
    tree = trees.lock_tree(tree_id)
    before = {name: getattr(tree, name) for name in clean}
    for name, value in clean.items():
        setattr(tree, name, value)
    tree.save(update_fields=list(clean))
    trees.advance_tree(tree)
    audit(
        actor=moderator,
        client=client, action=Action.TREE_SETTINGS, target=tree, reason=reason,
        before=before, after=clean,
    )  # fmt: skip
    return tree


def _ensure_may_act_on(moderator: User, user: User) -> None:
    ensure_moderator(moderator)
    if user.pk == moderator.pk:
        raise NotAllowed("Moderators cannot ban or purge themselves.")
    if user.is_moderator and moderator.role != Role.ADMIN:
        raise NotAllowed("Only admins may ban or purge moderators.")


def _close_open_tasks(user: User) -> int:
    from backend.tasks.services import skip_task

    open_tasks = list(
        Task.objects.filter(user=user, status=TaskStatus.LEASED).values_list("id", flat=True)
    )
    for task_id in open_tasks:
        skip_task(task_id=task_id, user=user, reason="other", note="account banned")
    return len(open_tasks)


@transaction.atomic
def ban_user(
    *, moderator: User, user_id: UUID, reason: str, client: ApiClient | None = None
) -> User:
    reason = _reason(reason)
    user = User.objects.select_for_update().filter(pk=user_id).first()
    if user is None:
        raise NotFound("No such user.")
    _ensure_may_act_on(moderator, user)
    if user.is_banned:
        raise Conflict("The user is banned already.")
    user.is_banned = True
    user.banned_reason = reason
    user.save(update_fields=["is_banned", "banned_reason"])
    closed = _close_open_tasks(user)
    audit(
        actor=moderator,
        client=client,
        action=Action.USER_BAN,
        target=user,
        reason=reason,
        tasks_closed=closed,
    )
    return user


@transaction.atomic
def unban_user(
    *, moderator: User, user_id: UUID, reason: str, client: ApiClient | None = None
) -> User:
    reason = _reason(reason)
    user = User.objects.select_for_update().filter(pk=user_id).first()
    if user is None:
        raise NotFound("No such user.")
    _ensure_may_act_on(moderator, user)
    if not user.is_banned:
        raise Conflict("The user is not banned.")
    user.is_banned = False
    user.banned_reason = ""
    user.save(update_fields=["is_banned", "banned_reason"])
    audit(actor=moderator, client=client, action=Action.USER_UNBAN, target=user, reason=reason)
    return user


@transaction.atomic
def purge_user(
    *, moderator: User, user_id: UUID, reason: str, client: ApiClient | None = None
) -> dict[str, int]:
    """Ban a user and delete all they contributed: their messages (with the replies below
    them), reviews, rankings, reactions and reports. Every tree they touched is recounted
    and re-evaluated: a message that loses the reviews it was accepted on is reviewed
    again, a sibling set that loses rankings is ranked again while its tree is ranking."""
    reason = _reason(reason)
    user = User.objects.select_for_update().filter(pk=user_id).first()
    if user is None:
        raise NotFound("No such user.")
    _ensure_may_act_on(moderator, user)
    if not user.is_banned:
        user.is_banned = True
        user.banned_reason = reason
        user.save(update_fields=["is_banned", "banned_reason"])
    tasks_closed = _close_open_tasks(user)
    # Every tree involved, locked in one order (by id), as any two purges would.
    tree_ids = corrections.trees_touched_by(user.pk)
    locked = {tree_id: trees.lock_tree(tree_id) for tree_id in tree_ids}
    deleted = 0
    for message in Message.objects.filter(author=user, deleted=False).order_by("depth"):
        message.refresh_from_db()
        if not message.deleted:  # not already gone under an earlier one of theirs
            deleted += len(_delete_subtree(message))
    removed = corrections.remove_votes_of(user_id=user.pk)
    Task.objects.filter(
        user=user, status=TaskStatus.SUBMITTED, type__in=[*LABEL_TYPES, *RANK_TYPES]
    ).update(status=TaskStatus.PURGED)
    reports = Report.objects.filter(reporter=user).delete()[0]
    for tree in locked.values():
        tree.refresh_from_db()
        trees.advance_tree(tree)
    summary = {"messages": deleted, **removed, "reports": reports, "tasks_closed": tasks_closed}
    audit(
        actor=moderator,
        client=client,
        action=Action.USER_PURGE,
        target=user,
        reason=reason,
        **summary,
    )
    return summary


@transaction.atomic
def resolve_reports(
    *, moderator: User, message_id: UUID, note: str = "", client: ApiClient | None = None
) -> int:
    """Close the open reports of a message (after acting on it, or judging it fine)."""
    ensure_moderator(moderator)
    message = Message.objects.filter(pk=message_id).first()
    if message is None:
        raise NotFound("No such message.")
    count = Report.objects.filter(message=message, resolved_at=None).update(
        resolved_at=timezone.now(), resolved_by=moderator
    )
    if not count:
        raise Conflict("The message has no open reports.")
    audit(
        actor=moderator,
        client=client, action=Action.REPORT_RESOLVE, target=message, reason=note.strip()[:1000],
        reports=count,
    )  # fmt: skip
    return count
