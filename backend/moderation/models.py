from __future__ import annotations

from django.conf import settings
from django.db import models

from backend.accounts.models import api_client_field


class ReportReason(models.TextChoices):
    SPAM = "spam", "Spam"
    OFFENSIVE = "offensive", "Offensive or hateful"
    PERSONAL_DATA = "personal_data", "Contains personal data"
    WRONG_LANGUAGE = "wrong_language", "Wrong language"
    INCORRECT = "incorrect", "Factually wrong or harmful advice"
    OTHER = "other", "Other"
    # Only auto-moderation files these.
    RED_FLAGS = "red_flags", "Red flags from several volunteers"
    SKIPS = "skips", "Skipped by several volunteers"


# The reasons a person may give; the others are auto-moderation's.
VOLUNTEER_REASONS = [
    ReportReason.SPAM,
    ReportReason.OFFENSIVE,
    ReportReason.PERSONAL_DATA,
    ReportReason.WRONG_LANGUAGE,
    ReportReason.INCORRECT,
    ReportReason.OTHER,
]


class Report(models.Model):
    """A report of a message, waiting for a moderator: a volunteer's, or auto-moderation's
    (no reporter) when it flagged personal data or acted on red flags or skips."""

    message = models.ForeignKey("trees.Message", on_delete=models.CASCADE, related_name="reports")
    reporter = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="reports",
    )
    # The API client (key) it came through, if any; the acting user is `reporter`.
    api_client = api_client_field()
    reason = models.CharField(max_length=32, choices=ReportReason.choices)
    text = models.CharField(max_length=2000, blank=True)
    # Auto-moderation's findings, e.g. {"pii": ["email", "phone"]} (kinds, never values) or
    # {"action": "auto_hide", "red_flags": 3}.
    details = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    resolved_at = models.DateTimeField(null=True, blank=True)
    resolved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        indexes = [models.Index(fields=["resolved_at", "created_at"], name="report_queue")]
        constraints = [
            models.UniqueConstraint(
                fields=["message", "reporter"],
                condition=models.Q(resolved_at__isnull=True),
                name="one_open_report_per_user",
            )
        ]

    def __str__(self) -> str:
        return f"{self.reason} report on {self.message_id}"


class Action(models.TextChoices):
    MESSAGE_EDIT = "message_edit", "Edited a message"
    MESSAGE_DELETE = "message_delete", "Deleted a message"
    MESSAGE_UNDELETE = "message_undelete", "Restored a message"
    TREE_HALT = "tree_halt", "Halted a tree"
    TREE_RESUME = "tree_resume", "Resumed a tree"
    TREE_SETTINGS = "tree_settings", "Changed a tree's settings"
    USER_BAN = "user_ban", "Banned a user"
    USER_UNBAN = "user_unban", "Lifted a ban"
    USER_PURGE = "user_purge", "Purged a user's contributions"
    REPORT_RESOLVE = "report_resolve", "Resolved reports"
    AUTO_HIDE = "auto_hide", "Hid a message automatically"
    AUTO_HALT = "auto_halt", "Halted a tree automatically"
    AUTO_FLAG = "auto_flag", "Flagged a message automatically"


class AuditEntry(models.Model):
    """One moderator, admin or automatic action. Append-only: a database trigger refuses
    UPDATE and DELETE (migration 0002), so not even the application can rewrite history.

    Who and what are stored as plain values, not foreign keys: the entry must outlive the
    user or message it names (a purge deletes rows) without ever being updated.
    """

    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    actor_id = models.UUIDField(null=True, blank=True)  # None: the system (auto-moderation)
    actor_name = models.CharField(max_length=150)
    # The API client the actor acted through (None: a page, or the system), as plain
    # values like the actor.
    api_client_id = models.UUIDField(null=True, blank=True)
    api_client_name = models.CharField(max_length=120, blank=True)
    action = models.CharField(max_length=32, choices=Action.choices)
    target_type = models.CharField(max_length=16)  # message, tree, user, report
    target_id = models.CharField(max_length=64)
    reason = models.CharField(max_length=1000, blank=True)
    details = models.JSONField(default=dict, blank=True)

    class Meta:
        indexes = [
            models.Index(fields=["action", "created_at"], name="audit_action"),
            models.Index(fields=["actor_id", "created_at"], name="audit_actor"),
            models.Index(fields=["target_type", "target_id"], name="audit_target"),
        ]

    def __str__(self) -> str:
        return f"{self.actor_name}: {self.action} {self.target_type} {self.target_id}"
