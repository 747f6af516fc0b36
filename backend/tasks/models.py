from __future__ import annotations

import uuid

from django.conf import settings
from django.contrib.postgres.fields import ArrayField
from django.db import models
from django.db.models import Q

from backend.accounts.models import api_client_field


class TaskType(models.TextChoices):
    INITIAL_PROMPT = "initial_prompt", "Write a first prompt"
    ASSISTANT_REPLY = "assistant_reply", "Reply as the assistant"
    PROMPTER_REPLY = "prompter_reply", "Reply as the user"
    LABEL_INITIAL_PROMPT = "label_initial_prompt", "Review a first prompt"
    LABEL_ASSISTANT_REPLY = "label_assistant_reply", "Review an assistant reply"
    LABEL_PROMPTER_REPLY = "label_prompter_reply", "Review a user reply"
    RANK_ASSISTANT_REPLIES = "rank_assistant_replies", "Rank assistant replies"
    RANK_PROMPTER_REPLIES = "rank_prompter_replies", "Rank user replies"


REPLY_TYPES = frozenset({TaskType.ASSISTANT_REPLY, TaskType.PROMPTER_REPLY})
LABEL_TYPES = frozenset(
    {
        TaskType.LABEL_INITIAL_PROMPT,
        TaskType.LABEL_ASSISTANT_REPLY,
        TaskType.LABEL_PROMPTER_REPLY,
    }
)
RANK_TYPES = frozenset({TaskType.RANK_ASSISTANT_REPLIES, TaskType.RANK_PROMPTER_REPLIES})
WRITE_TYPES = REPLY_TYPES | {TaskType.INITIAL_PROMPT}


class TaskStatus(models.TextChoices):
    LEASED = "leased", "Handed out, waiting for the volunteer"
    SUBMITTED = "submitted", "Done"
    SKIPPED = "skipped", "Skipped by the volunteer"
    EXPIRED = "expired", "Lease ran out"
    CANCELLED = "cancelled", "Tree moved on before submission"
    PURGED = "purged", "Submitted, but its review or ranking went when its author was purged"


class SkipReason(models.TextChoices):
    NOT_KNOWLEDGEABLE = "not_knowledgeable", "I do not know enough about this topic"
    INAPPROPRIATE = "inappropriate", "The content is inappropriate"
    WRONG_LANGUAGE = "wrong_language", "It is not in my language"
    TOO_LONG = "too_long", "It would take too long"
    OTHER = "other", "Other"


class Task(models.Model):
    """A piece of work leased to one volunteer: the slot it works on is `slot` (the message to
    review, the parent to reply under or whose replies to rank), none for a first prompt."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    type = models.CharField(max_length=32, choices=TaskType.choices)
    lang = models.CharField(max_length=16)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    tree = models.ForeignKey(
        "trees.MessageTree", null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    slot = models.ForeignKey(
        "trees.Message", null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    status = models.CharField(max_length=16, choices=TaskStatus.choices, default=TaskStatus.LEASED)
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField()
    done_at = models.DateTimeField(null=True, blank=True)
    # Rank tasks: the replies offered, in the order shown; a ranking must permute exactly these.
    offered_ids = ArrayField(models.UUIDField(), default=list, blank=True)
    skip_reason = models.CharField(max_length=32, choices=SkipReason.choices, blank=True)
    skip_note = models.CharField(max_length=500, blank=True)
    # Idempotency: the client's key for the submission and what it produced.
    submission_key = models.CharField(max_length=100, null=True, blank=True)
    result_id = models.UUIDField(null=True, blank=True)
    # The API client (key) that submitted it, if any; `user` is the acting user.
    api_client = api_client_field()

    class Meta:
        indexes = [
            # "Never the same slot twice" looks a volunteer up per slot.
            models.Index(fields=["slot", "user"], name="task_slot_user"),
            models.Index(
                fields=["lang", "type"], condition=Q(status="leased"), name="task_leased_lang"
            ),
            models.Index(fields=["expires_at"], condition=Q(status="leased"), name="task_expiry"),
            models.Index(fields=["user", "created_at"], name="task_user_created"),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["user", "submission_key"],
                condition=Q(submission_key__isnull=False),
                name="task_submission_key_unique",
            ),
            models.CheckConstraint(
                condition=Q(type="initial_prompt") | Q(slot__isnull=False),
                name="task_slot_unless_initial_prompt",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.type} for {self.user_id} ({self.status})"
