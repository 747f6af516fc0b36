"""Reads of chats: only ever the owner's (anyone else gets NotFound, never a hint)."""

from __future__ import annotations

from uuid import UUID

from django.db.models import QuerySet

from backend.accounts.models import User
from backend.assistant.inference import Turn
from backend.assistant.models import Chat, ChatMessage, ChatReport, ChatRole
from backend.core.errors import NotFound

# The turns sent to the model: the latest ones, so a long chat stays within its context.
CONTEXT_MESSAGES = 30


def my_chats(user: User) -> QuerySet[Chat]:
    return Chat.objects.filter(owner=user).order_by("-updated_at")


def access_chat(*, user: User, chat_id: UUID) -> Chat:
    chat = Chat.objects.filter(pk=chat_id, owner_id=user.pk).first()
    if chat is None:
        raise NotFound("No such chat.")
    return chat


def access_chat_message(*, user: User, chat_id: UUID, message_id: UUID) -> ChatMessage:
    message = (
        ChatMessage.objects.select_related("chat", "reply_to")
        .filter(pk=message_id, chat_id=chat_id, chat__owner_id=user.pk)
        .first()
    )
    if message is None:
        raise NotFound("No such message in this chat.")
    return message


def chat_messages(chat: Chat) -> QuerySet[ChatMessage]:
    return (
        ChatMessage.objects.filter(chat=chat)
        .select_related("report", "reply_to")
        .order_by("created_at", "role")
    )


def chat_turns(chat: Chat) -> list[Turn]:
    """The conversation as the model reads it: oldest first, empty (cancelled) replies left
    out, at most the last CONTEXT_MESSAGES."""
    rows = list(
        ChatMessage.objects.filter(chat=chat)
        .exclude(role=ChatRole.ASSISTANT, text="")
        .order_by("-created_at")
        .values_list("role", "text")[:CONTEXT_MESSAGES]
    )
    turns = [Turn(role=role, content=text) for role, text in reversed(rows)]
    while turns and turns[0].role != ChatRole.USER:
        turns.pop(0)
    return turns


def open_chat_reports(*, limit: int = 200) -> list[ChatReport]:
    """Moderators: unresolved reports of model replies, oldest first, each with the reply and
    the question it answered (not the rest of the chat: reporting shares only the exchange)."""
    return list(
        ChatReport.objects.filter(resolved_at=None)
        .select_related("message", "message__reply_to", "reporter")
        .order_by("created_at")[:limit]
    )
