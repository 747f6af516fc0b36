"""Chat with the assistant: the list of my chats, one chat, and what can be done to its
replies. With JavaScript the reply streams in over /ws/chat/<id>/ (backend/assistant/
consumers.py); without it, the message is POSTed here and the whole reply comes back."""

from __future__ import annotations

from typing import cast
from uuid import UUID

from django.conf import settings
from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from backend.accounts.models import User
from backend.accounts.selectors import working_languages
from backend.assistant import inference, selectors, services
from backend.assistant.models import Chat, ChatMessage
from backend.core.errors import ChorusError, Conflict, NotFound
from frontend import text
from frontend.access import error_text, volunteer_page
from frontend.forms import ReportForm
from frontend.views.moderation import render_moderation

CHATS_IN_SIDEBAR = 50


def _chat_or_404(request: HttpRequest, chat_id: UUID) -> Chat:
    try:
        return selectors.access_chat(user=cast(User, request.user), chat_id=chat_id)
    except NotFound:
        raise Http404 from None


def _message_or_404(request: HttpRequest, chat_id: UUID, message_id: UUID) -> ChatMessage:
    try:
        return selectors.access_chat_message(
            user=cast(User, request.user), chat_id=chat_id, message_id=message_id
        )
    except NotFound:
        raise Http404 from None


def _wants_json(request: HttpRequest) -> bool:
    return request.headers.get("Accept") == "application/json"


@volunteer_page(tutorial=False)
def chat_list(request: HttpRequest) -> HttpResponse:
    """My chats; POST starts a new one."""
    user = cast(User, request.user)
    if request.method == "POST":
        try:
            chat = services.create_chat(owner=user)
        except ChorusError as error:
            messages.warning(request, error_text(error))
            return redirect("chats")
        return redirect("chat", chat_id=chat.id)
    return render(
        request,
        "frontend/chat/list.html",
        {"chats": selectors.my_chats(user)[:200], "enabled": inference.is_enabled()},
    )


@volunteer_page(tutorial=False)
def chat_page(request: HttpRequest, chat_id: UUID) -> HttpResponse:
    """One chat; POST (the form without JavaScript) sends a message and waits for the reply."""
    user = cast(User, request.user)
    chat = _chat_or_404(request, chat_id)
    if request.method == "POST":
        try:
            services.send_message(chat=chat, user=user, text=request.POST.get("text", ""))
        except ChorusError as error:
            messages.warning(request, error_text(error))
        return redirect(f"{reverse('chat', args=[chat.id])}#chat-form")
    return render(
        request,
        "frontend/chat/detail.html",
        {
            "chat": chat,
            "chat_messages": selectors.chat_messages(chat),
            "chats": selectors.my_chats(user)[:CHATS_IN_SIDEBAR],
            "enabled": inference.is_enabled(),
            "max_length": settings.CHORUS_MAX_TEXT_LENGTH,
        },
    )


def render_chat_message(message: ChatMessage, chat: Chat, *, csrf_token: str = "") -> str:
    """One message as the chat page shows it (the WebSocket sends the same HTML)."""
    return render_to_string(
        "frontend/chat/message.html", {"message": message, "chat": chat, "csrf_token": csrf_token}
    )


@require_POST
@volunteer_page(tutorial=False)
def vote(request: HttpRequest, chat_id: UUID, message_id: UUID) -> HttpResponse:
    message = _message_or_404(request, chat_id, message_id)
    try:
        value = int(request.POST.get("vote", ""))
        message = services.vote(message=message, user=cast(User, request.user), value=value)
    except (ValueError, ChorusError) as error:
        text = error_text(error) if isinstance(error, ChorusError) else _("Choose up or down.")
        if _wants_json(request):
            return JsonResponse({"error": {"message": text}}, status=400)
        messages.warning(request, text)
    if _wants_json(request):
        fresh = _message_or_404(request, chat_id, message_id)
        return JsonResponse({"vote": fresh.vote, "html": render_chat_message(fresh, fresh.chat)})
    return redirect(f"{reverse('chat', args=[chat_id])}#c-{message_id}")


@require_POST
@volunteer_page(tutorial=False)
def exclude(request: HttpRequest, chat_id: UUID) -> HttpResponse:
    chat = _chat_or_404(request, chat_id)
    excluded = request.POST.get("excluded") == "1"
    services.update_chat(chat=chat, excluded_from_training=excluded)
    if excluded:
        messages.success(request, _("This chat will never be used as training data."))
    else:
        messages.success(request, _("You may propose turns of this chat as prompts again."))
    return redirect("chat", chat_id=chat.id)


@require_POST
@volunteer_page(tutorial=False)
def delete(request: HttpRequest, chat_id: UUID) -> HttpResponse:
    services.delete_chat(chat=_chat_or_404(request, chat_id))
    messages.success(request, _("The chat is deleted."))
    return redirect("chats")


@require_POST
@volunteer_page(tutorial=False)
def propose(request: HttpRequest, chat_id: UUID, message_id: UUID) -> HttpResponse:
    """Offer the question an up-voted reply answered as a new prompt for review."""
    user = cast(User, request.user)
    reply = _message_or_404(request, chat_id, message_id)
    try:
        services.propose_as_prompt(reply=reply, user=user, lang=working_languages(user)[0])
    except ChorusError as error:
        messages.warning(request, error_text(error))
    else:
        messages.success(request, _("Thank you. Your message is now a prompt waiting for review."))
    return redirect(f"{reverse('chat', args=[chat_id])}#c-{message_id}")


@volunteer_page(tutorial=False)
def report(request: HttpRequest, chat_id: UUID, message_id: UUID) -> HttpResponse:
    message = _message_or_404(request, chat_id, message_id)
    back = f"{reverse('chat', args=[chat_id])}#c-{message_id}"
    form = ReportForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            services.report_reply(
                message=message,
                user=cast(User, request.user),
                reason=form.cleaned_data["reason"],
                text=form.cleaned_data["text"],
            )
        except Conflict:
            messages.info(request, _("You reported this reply already."))
        except ChorusError as error:
            messages.warning(request, error_text(error))
        else:
            messages.success(request, _("Thank you. The report is kept for the moderators."))
        return redirect(back)
    return render(
        request, "frontend/trees/report.html", {"message": message, "form": form, "next": back}
    )


# --- Moderators ----------------------------------------------------------------------------


@volunteer_page(tutorial=False)
def reports(request: HttpRequest) -> HttpResponse:
    """Moderators: reported replies of the assistant, each with the question it answered."""
    user = cast(User, request.user)
    if not user.is_moderator:
        return render(request, "frontend/forbidden.html", status=403)
    if request.method == "POST":
        try:
            services.resolve_chat_report(
                report_id=UUID(request.POST.get("report", "")), moderator=user
            )
        except (ValueError, ChorusError):
            messages.warning(request, _("That report does not exist."))
        return redirect("chat_reports")
    return render_moderation(
        request,
        "frontend/chat/reports.html",
        {"reports": selectors.open_chat_reports(), "reasons": text.REPORT_REASONS},
    )
