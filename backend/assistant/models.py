"""Chats with the served model. They belong to their owner alone and are not exported as
datasets; what reaches the data is what the owner offers (an up-voted turn proposed as a
prompt, which then goes through the normal review)."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone


class Chat(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="chats"
    )
    title = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)
    # The owner's "never use this chat for training": nothing of it may be proposed as data.
    excluded_from_training = models.BooleanField(default=False)
    # The model the chat was last answered by.
    model_name = models.CharField(max_length=200, blank=True)

    class Meta:
        indexes = [models.Index(fields=["owner", "-updated_at"], name="chat_owner_updated")]

    def __str__(self) -> str:
        return self.title or f"chat {self.id}"


class ChatRole(models.TextChoices):
    USER = "user", "User"
    ASSISTANT = "assistant", "Assistant"


class FinishReason(models.TextChoices):
    STOP = "stop", "Complete"
    LENGTH = "length", "Cut at the length limit"
    CANCELLED = "cancelled", "Stopped by the user"


class ChatMessage(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    chat = models.ForeignKey(Chat, on_delete=models.CASCADE, related_name="messages")
    role = models.CharField(max_length=16, choices=ChatRole.choices)
    text = models.TextField()
    created_at = models.DateTimeField(default=timezone.now)
    # Assistant replies: the user message answered, the model and why it stopped.
    reply_to = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.CASCADE, related_name="replies"
    )
    model_name = models.CharField(max_length=200, blank=True)
    finish_reason = models.CharField(max_length=16, choices=FinishReason.choices, blank=True)
    # The owner's verdict on an assistant reply: -1, 0 (none) or +1.
    vote = models.SmallIntegerField(default=0)
    # The initial prompt this (user) message became when its owner proposed it.
    proposed_prompt = models.ForeignKey(
        "trees.Message", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        indexes = [models.Index(fields=["chat", "created_at"], name="chatmessage_chat_created")]
        constraints = [
            models.CheckConstraint(condition=Q(vote__in=[-1, 0, 1]), name="chat_vote_in_range"),
            models.CheckConstraint(
                condition=Q(role="assistant") | Q(vote=0), name="chat_vote_on_replies_only"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.role}: {self.text[:40]}"


class ChatReport(models.Model):
    """An owner's report of a model reply (harmful, wrong, ...), kept for the moderators and
    for whoever trains the next model. One per reply."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    message = models.OneToOneField(ChatMessage, on_delete=models.CASCADE, related_name="report")
    reporter = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="chat_reports"
    )
    reason = models.CharField(max_length=32)  # a moderation.ReportReason value
    text = models.CharField(max_length=2000, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    resolved_at = models.DateTimeField(null=True, blank=True)
    resolved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        indexes = [models.Index(fields=["resolved_at", "created_at"], name="chatreport_queue")]

    def __str__(self) -> str:
        return f"{self.reason} report on chat message {self.message_id}"
