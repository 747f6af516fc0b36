"""Automatic moderation: personal data flagged at submission, and an action (hide the
message, or halt its tree) once enough volunteers raise red flags or skip it.

A red flag on a message is one person's signal that it should not be in the data: an open
report (not yet resolved by a moderator), a review that sets one of RED_FLAG_LABELS, or a
red-flag reaction. Each person counts once, whatever mix of these they gave, so no one can
trigger an action alone. A skip counts when its reason is about the content
(COUNTED_SKIP_REASONS), not about the volunteer ("I do not know enough", "too long").

An action happens once per message (`Message.auto_moderated_at`, set under the tree and
message locks), runs in a job after the commit of the event that crossed the threshold (so
it can never undo or fail that event), is written to the audit log with no actor, and files
a report without a reporter, so the message waits in the moderators' queue until a person
confirms it (resolves the report) or reverts it (restores the message or resumes the tree).
"""

from __future__ import annotations

import logging
from typing import Any
from uuid import UUID

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from backend.moderation.models import Action, Report, ReportReason
from backend.moderation.services import announce_report, audit, delete_message, locked_message
from backend.tasks.models import SkipReason, TaskStatus
from backend.trees import rules
from backend.trees import services as trees
from backend.trees.models import Message
from backend.trees.rules import State

log = logging.getLogger(__name__)

RED_FLAG_LABELS = ("spam", "pii", "not_appropriate", "hate_speech", "sexual_content")
COUNTED_SKIP_REASONS = (SkipReason.INAPPROPRIATE, SkipReason.WRONG_LANGUAGE)


class Trigger:
    RED_FLAGS = "red_flags"
    SKIPS = "skips"


def is_red_flag_review(values: dict[str, float]) -> bool:
    return any(values.get(name, 0) >= 1 for name in RED_FLAG_LABELS)


def counts_as_skip(reason: str) -> bool:
    return reason in COUNTED_SKIP_REASONS


# The people who raised a red flag on one message, each once (three index lookups).
_RED_FLAGS_SQL = f"""
SELECT count(DISTINCT who) FROM (
    SELECT reporter_id AS who FROM moderation_report
    WHERE message_id = %(m)s AND resolved_at IS NULL AND reporter_id IS NOT NULL
  UNION ALL
    SELECT user_id FROM trees_review
    WHERE message_id = %(m)s AND NOT is_stale
      AND GREATEST({", ".join(f"(values->>'{name}')::float" for name in RED_FLAG_LABELS)}) >= 1
  UNION ALL
    SELECT user_id FROM trees_reaction WHERE message_id = %(m)s AND emoji = 'red_flag'
) flags
"""  # noqa: S608 - the interpolated names are this module's constants


def count_red_flags(message_id: UUID) -> int:
    with connection.cursor() as cursor:
        cursor.execute(_RED_FLAGS_SQL, {"m": message_id})
        return int(cursor.fetchone()[0])


def count_skips(message_id: UUID) -> int:
    """Volunteers who skipped a task on this message for a reason about its content (a
    volunteer is never given the same slot twice, so tasks are people)."""
    from backend.tasks.models import Task

    return Task.objects.filter(
        slot_id=message_id, status=TaskStatus.SKIPPED, skip_reason__in=COUNTED_SKIP_REASONS
    ).count()


def enqueue_check(message_id: UUID, trigger: str) -> None:
    """Re-count the message's red flags or skips after this transaction commits."""
    if _threshold(trigger) <= 0:
        return
    from backend.moderation import jobs

    jobs.automoderate_job.delay_on_commit(str(message_id), trigger)


def _threshold(trigger: str) -> int:
    if trigger == Trigger.RED_FLAGS:
        return int(settings.CHORUS_AUTOMOD_RED_FLAGS)
    return int(settings.CHORUS_AUTOMOD_SKIPS)


def check_message(*, message_id: UUID, trigger: str) -> str | None:
    """Act on the message if its red flags (or skips) reached the threshold and nothing
    acted on it before. Returns the action taken (an audit action), None when none."""
    threshold = _threshold(trigger)
    if threshold <= 0:
        return None
    count = count_red_flags(message_id) if trigger == Trigger.RED_FLAGS else count_skips(message_id)
    if count < threshold:
        return None
    return _act(message_id=message_id, trigger=trigger, count=count)


@transaction.atomic
def _act(*, message_id: UUID, trigger: str, count: int) -> str | None:
    tree, message = locked_message(message_id)
    if message.auto_moderated_at is not None or message.deleted:
        return None  # acted on before, or a moderator removed it already
    Message.objects.filter(pk=message.pk).update(auto_moderated_at=timezone.now())
    what = f"{count} red flags" if trigger == Trigger.RED_FLAGS else f"skipped by {count}"
    details: dict[str, Any] = {"trigger": trigger, "count": count}
    if settings.CHORUS_AUTOMOD_ACTION != "halt":
        action = Action.AUTO_HIDE
        delete_message(
            moderator=None, message_id=message.pk, reason=what, action=action, details=details
        )
    elif tree.state not in (State.HALTED_BY_MODERATOR, *rules.TERMINAL_STATES):
        action = Action.AUTO_HALT
        tree.state_before_halt = tree.state
        trees.set_state(tree, State.HALTED_BY_MODERATOR)
        audit(actor=None, action=action, target=tree, reason=what, message_id=message.pk, **details)
    else:
        # A halted or finished tree cannot be halted: the report below still asks a person.
        action = Action.AUTO_FLAG
        audit(actor=None, action=action, target=message, reason=what, **details)
    Report.objects.create(
        message=message,
        reporter=None,
        reason=ReportReason.RED_FLAGS if trigger == Trigger.RED_FLAGS else ReportReason.SKIPS,
        details={"action": str(action), **details},
    )
    announce_report(message.pk)
    log.info("auto-moderation: %s on message %s (%s)", action, message.pk, what)
    return str(action)


def flag_personal_data(*, message: Message, kinds: list[str]) -> Report:
    """File a report for a message in which personal data was found (kinds only: the values
    stay in the message alone), in the submission's transaction."""
    report = Report.objects.create(
        message=message, reporter=None, reason=ReportReason.PERSONAL_DATA, details={"pii": kinds}
    )
    audit(actor=None, action=Action.AUTO_FLAG, target=message, reason="personal data", pii=kinds)
    announce_report(message.pk)
    return report
