from __future__ import annotations

from django.conf import settings
from django.db import models


class ReportReason(models.TextChoices):
    SPAM = "spam", "Spam"
    OFFENSIVE = "offensive", "Offensive or hateful"
    PERSONAL_DATA = "personal_data", "Contains personal data"
    WRONG_LANGUAGE = "wrong_language", "Wrong language"
    INCORRECT = "incorrect", "Factually wrong or harmful advice"
    OTHER = "other", "Other"


class Report(models.Model):
    """A volunteer's report of a message, waiting for a moderator."""

    message = models.ForeignKey("trees.Message", on_delete=models.CASCADE, related_name="reports")
    reporter = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="reports"
    )
    reason = models.CharField(max_length=32, choices=ReportReason.choices)
    text = models.CharField(max_length=2000, blank=True)
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
