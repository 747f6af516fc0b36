from __future__ import annotations

import uuid

from django.conf import settings
from django.contrib.postgres.fields import ArrayField
from django.db import models
from django.db.models import Q
from django.utils import timezone

from backend.accounts.models import api_client_field
from backend.trees.rules import State


class Role(models.TextChoices):
    PROMPTER = "prompter", "Prompter"
    ASSISTANT = "assistant", "Assistant"


class Origin(models.TextChoices):
    VOLUNTEERS = "volunteers", "Written by volunteers"
    IMPORT = "import", "Imported from a dataset"


class MessageTree(models.Model):
    """A root prompt and all replies below it. Its limits are copied from the deployment's
    settings when it is created so a moderator can change them for this tree alone."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    state = models.CharField(
        max_length=32, choices=[(s.value, s.value) for s in State], default=State.GROWING
    )
    # The state a halted tree returns to when a moderator resumes it.
    state_before_halt = models.CharField(max_length=32, blank=True)
    lang = models.CharField(max_length=16)
    origin = models.CharField(max_length=16, choices=Origin.choices, default=Origin.VOLUNTEERS)
    created_at = models.DateTimeField(default=timezone.now)
    state_changed_at = models.DateTimeField(default=timezone.now)

    # Per-tree limits (DESIGN.md §3).
    reviews_needed = models.PositiveSmallIntegerField(default=3)
    acceptance_threshold = models.FloatField(default=0.6)
    max_depth = models.PositiveSmallIntegerField(default=5)
    max_children_prompter = models.PositiveSmallIntegerField(default=3)
    max_children_assistant = models.PositiveSmallIntegerField(default=1)
    goal_size = models.PositiveSmallIntegerField(default=12)
    rankings_needed = models.PositiveSmallIntegerField(default=3)
    # OpenAssistant ranks only assistant replies by default; user replies can be ranked too.
    rank_prompter_replies = models.BooleanField(default=False)

    class Meta:
        indexes = [models.Index(fields=["lang", "state"], name="tree_lang_state")]

    def __str__(self) -> str:
        return f"tree {self.id} ({self.state})"


class Message(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    tree = models.ForeignKey(MessageTree, on_delete=models.CASCADE, related_name="messages")
    parent = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.CASCADE, related_name="children"
    )
    role = models.CharField(max_length=16, choices=Role.choices)
    text = models.TextField()
    lang = models.CharField(max_length=16)
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="messages",
    )
    # The API client (key) it came through, if any; the acting user is `author`.
    api_client = api_client_field()
    depth = models.PositiveSmallIntegerField(default=0)
    created_at = models.DateTimeField()

    # Review: the running label means {name: {"value", "count"}} and the verdict once
    # `review_count` reaches the tree's `reviews_needed` (None while pending).
    review_count = models.PositiveSmallIntegerField(default=0)
    review_result = models.BooleanField(null=True, blank=True)
    label_summary = models.JSONField(default=dict, blank=True)
    # A moderator's edit (or a purge of reviewers) reopened the review: replies written
    # under the earlier verdict stay where they are while it is reviewed again.
    review_reopened_at = models.DateTimeField(null=True, blank=True)

    # Live (not deleted, not rejected) replies, and of those the accepted ones.
    children_count = models.PositiveSmallIntegerField(default=0)
    accepted_children_count = models.PositiveSmallIntegerField(default=0)
    ranking_count = models.PositiveSmallIntegerField(default=0)

    # Consensus among siblings: 0 is best; strength is the Bradley-Terry score in [0, 1].
    rank = models.PositiveSmallIntegerField(null=True, blank=True)
    consensus_strength = models.FloatField(null=True, blank=True)
    # Agreement (Kendall's W) among the rankings of this message's replies, once scored.
    replies_agreement = models.FloatField(null=True, blank=True)

    synthetic = models.BooleanField(default=False)
    model_name = models.CharField(max_length=200, null=True, blank=True)
    deleted = models.BooleanField(default=False)
    emojis = models.JSONField(default=dict, blank=True)
    # Fields of an imported message that Chorus does not model (events, detoxify, ...),
    # kept so an export gives them back.
    source_extra = models.JSONField(default=dict, blank=True)

    # The open slot on this message (a review of it, a reply under it, or a ranking of its
    # children) is leased to one task at a time; the claim is a conditional UPDATE.
    lease_task_id = models.UUIDField(null=True, blank=True)
    lease_until = models.DateTimeField(null=True, blank=True)

    # When auto-moderation acted on this message (hid it or halted its tree): it acts once.
    auto_moderated_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [
            models.Index(fields=["tree", "parent"], name="message_tree_parent"),
            models.Index(fields=["author", "created_at"], name="message_author_created"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(role__in=["prompter", "assistant"]), name="message_role_valid"
            ),
            models.CheckConstraint(
                condition=Q(parent__isnull=True, depth=0) | Q(parent__isnull=False, depth__gt=0),
                name="message_depth_matches_parent",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.role}: {self.text[:40]}"


class PromptKey(models.Model):
    """One LSH band key of a first prompt's text (trees/fingerprint.py): a new prompt finds
    the prompts it may nearly repeat with one lookup of its keys in this index. A table of
    its own rather than an array column, because a btree answers `key = ANY(...)` with a
    plan that does not depend on the planner's guess of how common the keys are."""

    message = models.ForeignKey(Message, on_delete=models.CASCADE, related_name="prompt_keys")
    key = models.BigIntegerField()

    class Meta:
        indexes = [models.Index(fields=["key", "message"], name="promptkey_lookup")]

    def __str__(self) -> str:
        return f"{self.key} of {self.message_id}"


class StateChange(models.Model):
    """One transition of a tree, appended whenever its state changes: the tree's history."""

    tree = models.ForeignKey(MessageTree, on_delete=models.CASCADE, related_name="state_changes")
    source = models.CharField(max_length=32, blank=True)  # "" for the state it was created in
    target = models.CharField(max_length=32)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        indexes = [models.Index(fields=["tree", "created_at"], name="statechange_tree")]

    def __str__(self) -> str:
        return f"{self.tree_id}: {self.source or '-'} -> {self.target}"


class MessageRevision(models.Model):
    """An earlier text of an edited message, with who changed it and why."""

    message = models.ForeignKey(Message, on_delete=models.CASCADE, related_name="revisions")
    previous_text = models.TextField()
    editor = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL)
    reason = models.CharField(max_length=1000)  # as long as the audit log's reason
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"revision of {self.message_id} at {self.created_at:%Y-%m-%d %H:%M}"


class Review(models.Model):
    """One volunteer's labels for one message (a submitted label_* task)."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    message = models.ForeignKey(Message, on_delete=models.CASCADE, related_name="reviews")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="reviews"
    )
    # The API client (key) it came through, if any; the acting user is `user`.
    api_client = api_client_field()
    task_id = models.UUIDField(null=True, blank=True)
    values = models.JSONField()
    created_at = models.DateTimeField(auto_now_add=True)
    # A moderator edited the message after this review: it no longer counts (kept as
    # history), and the message is reviewed again.
    is_stale = models.BooleanField(default=False)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["message", "user"],
                condition=Q(is_stale=False),
                name="one_review_per_user",
            )
        ]

    def __str__(self) -> str:
        return f"review of {self.message_id} by {self.user_id}"


class Ranking(models.Model):
    """One volunteer's order of a parent's replies, best first."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    parent = models.ForeignKey(Message, on_delete=models.CASCADE, related_name="rankings")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="rankings"
    )
    # The API client (key) it came through, if any; the acting user is `user`.
    api_client = api_client_field()
    task_id = models.UUIDField(null=True, blank=True)
    ordered_ids = ArrayField(models.UUIDField())
    # The volunteer judged every reply unacceptable: no order is implied.
    not_rankable = models.BooleanField(default=False)
    # Kendall's tau between this ranking and the consensus, written when the tree is scored.
    agreement_with_consensus = models.FloatField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    # A moderator edited one of the ranked replies (or their parent) after this ranking: it
    # no longer counts, and the replies are ranked again while the tree is in ranking.
    is_stale = models.BooleanField(default=False)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["parent", "user"],
                condition=Q(is_stale=False),
                name="one_ranking_per_user",
            )
        ]

    def __str__(self) -> str:
        return f"ranking under {self.parent_id} by {self.user_id}"


class Emoji(models.TextChoices):
    THUMBS_UP = "+1"
    THUMBS_DOWN = "-1"
    RED_FLAG = "red_flag"
    HUNDRED = "100"
    ROFL = "rofl"
    CLAP = "clap"
    DIAMOND = "diamond"
    HEART_EYES = "heart_eyes"
    DISAPPOINTED = "disappointed"
    POOP = "poop"
    SKULL = "skull"


class Reaction(models.Model):
    message = models.ForeignKey(Message, on_delete=models.CASCADE, related_name="reactions")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="reactions"
    )
    # The API client (key) it came through, if any; the acting user is `user`.
    api_client = api_client_field()
    emoji = models.CharField(max_length=16, choices=Emoji.choices)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["message", "user", "emoji"], name="one_emoji_each")
        ]

    def __str__(self) -> str:
        return f"{self.emoji} on {self.message_id}"
