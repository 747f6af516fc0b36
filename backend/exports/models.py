from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone


class ExportStatus(models.TextChoices):
    PENDING = "pending", "Waiting for a worker"
    RUNNING = "running", "Writing the dataset folder"
    DONE = "done", "Published as a version"
    FAILED = "failed", "Failed; no version was published"


class DatasetExport(models.Model):
    """One run of the dataset export and, once done, the version folder it published.

    The version is handed out when the run finishes (the next after the highest done
    one), so failed runs leave no gaps and versions follow the order exports finished in:
    each version's "changes since the previous version" compares with what came out last.
    """

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    version = models.PositiveIntegerField(null=True, blank=True, unique=True)
    status = models.CharField(
        max_length=16, choices=ExportStatus.choices, default=ExportStatus.PENDING
    )
    # ExportOptions.to_json(): filters, branch policy and split fractions.
    filters = models.JSONField(default=dict)
    # Decides each tree's split; not secret (unlike the salt for user ids, never stored).
    seed = models.BigIntegerField()
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    path = models.CharField(max_length=1000, blank=True)
    stats = models.JSONField(default=dict, blank=True)
    progress = models.FloatField(default=0.0)
    error = models.TextField(blank=True)
    # The last push of this version to the Hugging Face Hub: the dataset repo, when, and
    # the Hub commit it made. Blank until a push succeeds.
    pushed_repo = models.CharField(max_length=200, blank=True)
    pushed_at = models.DateTimeField(null=True, blank=True)
    pushed_revision = models.CharField(max_length=100, blank=True)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=Q(progress__gte=0.0, progress__lte=1.0), name="export_progress_range"
            ),
            models.CheckConstraint(
                condition=Q(status=ExportStatus.DONE, version__isnull=False)
                | (~Q(status=ExportStatus.DONE) & Q(version__isnull=True)),
                name="export_version_iff_done",
            ),
        ]

    def __str__(self) -> str:
        return f"export v{self.version}" if self.version else f"export {self.id} ({self.status})"


class Takedown(models.Model):
    """A message removed from every dataset version made after this row was written.

    The id is kept without a foreign key: the message may later be purged from the
    database, and the takedown must still apply to anything that brings it back (say, a
    re-import of an old export).
    """

    message_id = models.UUIDField(unique=True)
    reason = models.CharField(max_length=500)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return f"takedown of {self.message_id}"
