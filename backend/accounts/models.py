from __future__ import annotations

import uuid

from django.contrib.auth.models import AbstractUser
from django.contrib.postgres.fields import ArrayField
from django.db import models


class Role(models.TextChoices):
    VOLUNTEER = "volunteer", "Volunteer"
    MODERATOR = "moderator", "Moderator"
    ADMIN = "admin", "Admin"


class User(AbstractUser):
    """A person (or an imported author) who contributes to trees."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    display_name = models.CharField(max_length=100, blank=True)
    # Languages the volunteer writes and reviews in (ISO 639-1 codes, e.g. "en", "de").
    languages = ArrayField(models.CharField(max_length=16), default=list, blank=True)
    role = models.CharField(max_length=16, choices=Role.choices, default=Role.VOLUNTEER)
    accepted_terms_version = models.PositiveIntegerField(null=True, blank=True)
    # The onboarding tutorial is done once, before the first real task.
    tutorial_completed_at = models.DateTimeField(null=True, blank=True)
    # The interface language chosen in the settings; empty follows the browser.
    ui_language = models.CharField(max_length=8, blank=True)
    is_banned = models.BooleanField(default=False)
    banned_reason = models.CharField(max_length=1000, blank=True)
    show_on_leaderboard = models.BooleanField(default=True)
    # When set, the person withdrew consent to publish their contributions: exports made
    # from then on leave them out.
    data_consent_withdrawn_at = models.DateTimeField(null=True, blank=True)
    # Authors that came with an imported dataset rather than signing up.
    is_imported = models.BooleanField(default=False)

    class Meta(AbstractUser.Meta):
        indexes = [
            # The few people a leaderboard leaves out though they have points (see
            # community.selectors.standing): found without reading every user. Imported
            # authors are not among them: they never earn points.
            models.Index(
                fields=["id"],
                condition=(
                    models.Q(show_on_leaderboard=False)
                    | models.Q(is_active=False)
                    | models.Q(is_banned=True)
                ),
                name="user_unlisted",
            ),
        ]

    @property
    def is_moderator(self) -> bool:
        return self.role in (Role.MODERATOR, Role.ADMIN)

    @property
    def public_name(self) -> str:
        return self.display_name or self.username


class ApiClient(models.Model):
    """A key for a bot or an integration. The key itself is shown once and stored hashed.

    A client acts as its owner, or, when `can_act_for_users` is set (a trusted integration
    such as a chat bot), as the user it names in the X-Chorus-User header.
    """

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    name = models.CharField(max_length=100)
    owner = models.ForeignKey(User, on_delete=models.CASCADE, related_name="api_clients")
    key_prefix = models.CharField(max_length=16, unique=True)
    key_hash = models.CharField(max_length=64)
    can_act_for_users = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"{self.name} ({self.key_prefix})"


def api_client_field() -> models.ForeignKey:
    """The API client (key) a row came through, if any; the row's user is the acting user.
    Not indexed: looked up rarely (an audit of one key), not worth a write per insert."""
    return models.ForeignKey(
        ApiClient,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        db_index=False,
    )
