"""Every write to chats: messages, the model's replies, votes, reports, exclusion, and an
up-voted turn proposed as a new initial prompt."""

from __future__ import annotations

import logging
from typing import Any
from uuid import UUID

from django.db import transaction
from django.utils import timezone

from backend.accounts.models import User
from backend.assistant import inference
from backend.assistant.models import Chat, ChatMessage, ChatReport, ChatRole
from backend.assistant.selectors import chat_turns
from backend.core import errors as problems
from backend.core.errors import (
    Conflict,
    InferenceOff,
    InferenceUnavailable,
    InvalidInput,
    NotAllowed,
    NotFound,
)
from backend.moderation.models import ReportReason
from backend.tasks import services as tasks
from backend.trees.models import Message

log = logging.getLogger(__name__)

TITLE_LENGTH = 80


def create_chat(*, owner: User, title: str = "") -> Chat:
    tasks.ensure_can_work(owner)
    return Chat.objects.create(owner=owner, title=title.strip()[:TITLE_LENGTH])


@transaction.atomic
def update_chat(
    *, chat: Chat, title: str | None = None, excluded_from_training: bool | None = None
) -> Chat:
    fields = []
    if title is not None:
        chat.title = title.strip()[:TITLE_LENGTH]
        fields.append("title")
    if excluded_from_training is not None:
        chat.excluded_from_training = excluded_from_training
        fields.append("excluded_from_training")
    if fields:
        chat.save(update_fields=fields)
    return chat


def delete_chat(*, chat: Chat) -> None:
    """The chat and its messages go; prompts proposed from it stay (they are the tree's)."""
    chat.delete()


@transaction.atomic
def add_user_message(*, chat: Chat, user: User, text: str) -> ChatMessage:
    """Save what the user wrote (committed before the model is asked, so it is never lost).

    Raises UserBanned, InvalidInput.
    """
    tasks.ensure_can_work(user)
    text = tasks.validate_text(text)
    now = timezone.now()
    message = ChatMessage.objects.create(chat=chat, role=ChatRole.USER, text=text, created_at=now)
    changes: dict[str, object] = {"updated_at": now}
    if not chat.title:
        changes["title"] = chat.title = " ".join(text.split())[:TITLE_LENGTH]
    Chat.objects.filter(pk=chat.pk).update(**changes)
    return message


@transaction.atomic
def save_reply(
    *, chat: Chat, reply_to: ChatMessage, text: str, model_name: str, finish_reason: str
) -> ChatMessage:
    """The model's reply (whole, cut at the length limit, or as far as it got when stopped)."""
    now = timezone.now()
    reply = ChatMessage.objects.create(
        chat=chat,
        role=ChatRole.ASSISTANT,
        text=text,
        reply_to=reply_to,
        model_name=model_name,
        finish_reason=finish_reason,
        created_at=max(now, reply_to.created_at),
    )
    Chat.objects.filter(pk=chat.pk).update(updated_at=now, model_name=model_name)
    return reply


def reply_now(*, chat: Chat, user_message: ChatMessage) -> ChatMessage:
    """Ask the model for its whole reply (no streaming) and save it.

    Raises InferenceOff, InferenceUnavailable, InferenceTimeout (the user's message stays).
    """
    try:
        reply = inference.complete_reply(chat_turns(chat))
    except InferenceUnavailable as error:
        error.extra["user_message_id"] = str(user_message.id)
        raise
    return save_reply(
        chat=chat,
        reply_to=user_message,
        text=reply.text,
        model_name=reply.model,
        finish_reason=reply.finish_reason,
    )


def accept_question(*, chat: Chat, user: User, text: Any) -> ChatMessage:
    """Store the user's message for the model to answer, after the checks every way of
    asking (the chat socket, the API, the plain form) makes in the same order.

    Raises UserBanned first (a banned user is told so, not that the model is off),
    InvalidInput (bad input is said whether or not the model is on), then InferenceOff.
    """
    tasks.ensure_can_work(user)
    tasks.validate_text(text)
    if not inference.is_enabled():
        raise InferenceOff("The assistant is switched off on this site.")
    return add_user_message(chat=chat, user=user, text=text)


def send_message(*, chat: Chat, user: User, text: str) -> tuple[ChatMessage, ChatMessage]:
    """The user's message and the model's reply to it, without streaming.

    Raises what `accept_question` raises, then the other inference errors.
    """
    message = accept_question(chat=chat, user=user, text=text)
    return message, reply_now(chat=chat, user_message=message)


def _assistant_reply(message: ChatMessage) -> None:
    if message.role != ChatRole.ASSISTANT:
        raise InvalidInput(
            "Only the assistant's replies can be voted on or reported.",
            fields={"message_id": ["Not an assistant reply."]},
        )


@transaction.atomic
def vote(*, message: ChatMessage, user: User, value: int) -> ChatMessage:
    """The owner's +1, -1 or 0 (taking the vote back) on an assistant reply."""
    _assistant_reply(message)
    if message.chat.owner_id != user.pk:
        raise NotAllowed("Only the chat's owner votes on its replies.")
    if value not in (-1, 0, 1):
        raise InvalidInput("A vote is -1, 0 or 1.", fields={"vote": ["One of -1, 0, 1."]})
    ChatMessage.objects.filter(pk=message.pk).update(vote=value)
    message.vote = value
    return message


@transaction.atomic
def report_reply(*, message: ChatMessage, user: User, reason: str, text: str = "") -> ChatReport:
    """Keep the owner's report of a model reply for the moderators. One per reply."""
    _assistant_reply(message)
    if reason not in ReportReason.values:
        raise InvalidInput(
            "Say why you report it.",
            fields={"reason": [problems.one_of(ReportReason.values)]},
        )
    report, created = ChatReport.objects.get_or_create(
        message=message,
        defaults={"reporter": user, "reason": reason, "text": text.strip()[:2000]},
    )
    if not created:
        raise Conflict("You reported this reply already.")
    log.info("chat reply %s reported (%s)", message.pk, reason)
    return report


@transaction.atomic
def resolve_chat_report(*, report_id: UUID, moderator: User) -> ChatReport:
    """A moderator has looked at a reported reply. Raises NotAllowed, NotFound."""
    if not moderator.is_moderator:
        raise NotAllowed("Only moderators may do this.")
    report = ChatReport.objects.select_for_update(no_key=True).filter(pk=report_id).first()
    if report is None:
        raise NotFound("No such report.")
    if report.resolved_at is None:
        report.resolved_at = timezone.now()
        report.resolved_by = moderator
        report.save(update_fields=["resolved_at", "resolved_by"])
    return report


@transaction.atomic
def propose_as_prompt(*, reply: ChatMessage, user: User, lang: str) -> Message:
    """Offer the user message that an up-voted reply answered as a new initial prompt; it
    goes into the normal prompt review like any volunteer's.

    Raises InvalidInput (not an up-voted reply), NotAllowed (the chat is excluded from
    training), Conflict (proposed already), PromptQueueFull, DuplicatePrompt, UserBanned.
    """
    _assistant_reply(reply)
    chat = Chat.objects.select_for_update(no_key=True).get(pk=reply.chat_id)
    if chat.owner_id != user.pk:
        raise NotAllowed("Only the chat's owner may propose its turns.")
    if chat.excluded_from_training:
        raise NotAllowed(
            "This chat is excluded from training data; include it again to propose its turns."
        )
    if reply.vote != 1 or reply.reply_to_id is None:
        raise InvalidInput(
            "Only a turn whose reply you voted up can be proposed.",
            fields={"message_id": ["Vote the reply up first."]},
        )
    question = ChatMessage.objects.select_for_update(no_key=True).get(pk=reply.reply_to_id)
    if question.proposed_prompt_id is not None:
        raise Conflict(
            "This message was proposed already.", prompt_id=str(question.proposed_prompt_id)
        )
    prompt = tasks.propose_prompt(user=user, text=question.text, lang=lang)
    ChatMessage.objects.filter(pk=question.pk).update(proposed_prompt=prompt)
    return prompt
