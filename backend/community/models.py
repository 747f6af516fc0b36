"""Points: a ledger of every award and running totals per user, language and period.

The ledger (`PointAward`) says why each point was given and makes every award idempotent:
one row per (kind, source), so a retried job or a re-run backfill never counts twice.
The totals (`PointTotal`) are what leaderboards read: one row per user, language
(plus "" for all languages), period (day, week, month, all time) and the period's first day,
kept up to date in the same statement that writes the award. A leaderboard is then one
index range read, whatever the number of contributions.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models

from backend.community.points import Kind, Period


class PointAward(models.Model):
    id = models.BigAutoField(primary_key=True)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+", db_index=False
    )  # indexed first in the composite indexes below
    lang = models.CharField(max_length=16)
    kind = models.CharField(max_length=16, choices=[(k.value, k.value) for k in Kind])
    points = models.SmallIntegerField()
    # What earned it: the task (for task kinds), the message (accepted, top_reply), the review
    # or ranking (agreement).
    source_id = models.UUIDField()
    awarded_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["kind", "source_id"], name="pointaward_once"),
        ]
        indexes = [models.Index(fields=["user", "awarded_at"], name="pointaward_user")]

    def __str__(self) -> str:
        return f"{self.points} {self.kind} for {self.user_id}"


class PointTotal(models.Model):
    id = models.BigAutoField(primary_key=True)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+", db_index=False
    )  # indexed first in the composite indexes below
    # "" sums every language.
    lang = models.CharField(max_length=16, blank=True)
    period = models.CharField(max_length=8, choices=[(p.value, p.value) for p in Period])
    start = models.DateField()
    points = models.IntegerField(default=0)
    # Submitted tasks counted in `points`.
    tasks = models.IntegerField(default=0)
    # The breakdown: points per kind (columns named <kind>_points).
    prompt_points = models.IntegerField(default=0)
    reply_points = models.IntegerField(default=0)
    review_points = models.IntegerField(default=0)
    ranking_points = models.IntegerField(default=0)
    accepted_points = models.IntegerField(default=0)
    agreement_points = models.IntegerField(default=0)
    top_reply_points = models.IntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["user", "period", "lang", "start"], name="pointtotal_bucket"
            ),
        ]
        indexes = [
            # A board: equality on (period, lang, start), read in points order.
            models.Index(
                "period",
                "lang",
                "start",
                models.F("points").desc(),
                "user",
                name="pointtotal_board",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.user_id} {self.period} {self.start} {self.lang or '*'}: {self.points}"

    def breakdown(self) -> dict[str, int]:
        return {kind.value: getattr(self, f"{kind.value}_points") for kind in Kind}
