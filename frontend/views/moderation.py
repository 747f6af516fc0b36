"""The moderator dashboard: the report queue, message search, actions, the audit log."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar, cast
from urllib.parse import urlsplit
from uuid import UUID

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse
from django.http.response import HttpResponseBase
from django.shortcuts import redirect, render
from django.urls import Resolver404, resolve, reverse
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_POST

from backend.accounts.models import User
from backend.accounts.selectors import user_stats
from backend.core.errors import ChorusError, InvalidInput
from backend.moderation import selectors, services
from backend.moderation.models import Action, AuditEntry
from backend.trees.models import Message
from backend.trees.selectors import conversation
from frontend.access import error_text, field_errors
from frontend.views.pages import safe_next

View = TypeVar("View", bound=Callable[..., HttpResponseBase])
PAGE_SIZE = 50

# The labels the moderators' forms show, to name their fields in a refusal: the message
# page's forms by name; every other form asks for a reason only. (A tree setting's label
# is its name.)
FIELD_LABELS = {
    "edit": {
        "text": gettext_lazy("Text"),
        "reason": gettext_lazy("Reason (goes into the audit log)"),
    },
    "resolve": {"reason": gettext_lazy("Note (optional)")},
}
REASON_LABEL = {"reason": gettext_lazy("Reason")}
SEARCH_LABELS = {
    "q": gettext_lazy("Words"),
    "author": gettext_lazy("Author (username)"),
    "lang": gettext_lazy("Language"),
    "state": gettext_lazy("Tree state"),
    "label": gettext_lazy("Label"),
    "label_min": gettext_lazy("at least"),
    "since": gettext_lazy("Since"),
    "until": gettext_lazy("Until"),
}


def moderator_page(view: View) -> View:
    @wraps(view)
    def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        if not cast(User, request.user).is_moderator:
            return render(request, "frontend/forbidden.html", status=403)
        return view(request, *args, **kwargs)

    return cast(View, login_required(wrapped))


def render_moderation(
    request: HttpRequest, template: str, context: dict[str, Any], *, status: int = 200
) -> HttpResponse:
    """A moderator page, with the number of open reports its menu shows."""
    context = {**context, "open_reports": selectors.open_report_count()}
    return render(request, template, context, status=status)


def acting_moderator(request: HttpRequest) -> User:
    return cast(User, request.user)


@moderator_page
def queue(request: HttpRequest) -> HttpResponse:
    return render_moderation(
        request, "frontend/moderation/queue.html", {"items": selectors.report_queue()}
    )


@moderator_page
def message_page(request: HttpRequest, message_id: UUID) -> HttpResponse:
    return _message_page(request, message_id)


def _message_page(
    request: HttpRequest,
    message_id: UUID,
    *,
    failed: str = "",
    errors: dict[str, list[str]] | None = None,
    status: int = 200,
) -> HttpResponse:
    """The message page; after refused input, with the errors next to the `failed` form and
    what the moderator typed kept in it (an edited text is not lost to a missing reason)."""
    message = selectors.message_for_moderator(message_id)
    if message is None:
        raise Http404
    chain = conversation(message.pk)
    replies = list(Message.objects.filter(parent=message).order_by("created_at"))
    tree_settings = {name: getattr(message.tree, name) for name in services.TREE_SETTINGS}
    if failed == "settings":
        tree_settings = {
            name: request.POST.get(name) == "on" if kind is bool else request.POST.get(name, "")
            for name, (kind, _low, _high) in services.TREE_SETTINGS.items()
        }
    return render_moderation(
        request,
        "frontend/moderation/message.html",
        {
            "message": message,
            "conversation": chain,
            "replies": replies,
            "target_id": message.pk,
            "reports": message.reports.filter(resolved_at=None).select_related("reporter"),
            "revisions": message.revisions.all(),
            "history": AuditEntry.objects.filter(target_id=str(message.pk)).order_by("-id"),
            "tree_settings": tree_settings,
            "failed": failed,
            "errors": errors or {},
            "error_lines": field_errors(errors or {}, FIELD_LABELS.get(failed, REASON_LABEL)),
            "posted": request.POST if failed else {},
        },
        status=status,
    )


def _act(
    request: HttpRequest,
    back: str,
    action: Callable[[], object],
    done: str,
    *,
    form: tuple[UUID, str] | None = None,
) -> HttpResponse:
    """Run one moderator service; its refusal becomes a message on the page. With `form`
    (a message id and the name of one of its page's forms), refused input is shown in that
    form instead, on the message page, with what was typed; nothing is changed."""
    try:
        action()
    except InvalidInput as error:
        if form is not None:
            message_id, name = form
            return _message_page(
                request, message_id, failed=name, errors=error.fields or {}, status=400
            )
        if error.fields:
            detail = " ".join(field_errors(error.fields, REASON_LABEL))
            messages.error(request, f"{_('Nothing was changed:')} {detail}")
        else:
            messages.error(request, error_text(error))
    except ChorusError as error:
        messages.error(request, error_text(error))
    else:
        messages.success(request, done)
    return redirect(back)


@require_POST
@moderator_page
def message_action(request: HttpRequest, message_id: UUID, action: str) -> HttpResponse:
    moderator = acting_moderator(request)
    reason = request.POST.get("reason", "")
    back = reverse("moderation_message", args=[message_id])
    if action == "edit":
        return _act(
            request,
            back,
            lambda: services.edit_message(
                moderator=moderator,
                message_id=message_id,
                text=request.POST.get("text", ""),
                reason=reason,
            ),
            _("The message was edited; the old text is kept as a revision."),
            form=(message_id, "edit"),
        )
    if action == "delete":
        return _act(
            request,
            back,
            lambda: services.delete_message(
                moderator=moderator, message_id=message_id, reason=reason
            ),
            _("The message and the replies below it were deleted."),
            form=(message_id, "delete"),
        )
    if action == "undelete":
        return _act(
            request,
            back,
            lambda: services.undelete_message(
                moderator=moderator, message_id=message_id, reason=reason
            ),
            _("The message and the replies below it were restored."),
            form=(message_id, "delete"),
        )
    if action == "resolve":
        return _act(
            request,
            reverse("moderation_queue"),
            lambda: services.resolve_reports(
                moderator=moderator, message_id=message_id, note=reason
            ),
            _("The reports were closed."),
            form=(message_id, "resolve"),
        )
    raise Http404


@require_POST
@moderator_page
def tree_action(request: HttpRequest, tree_id: UUID, action: str) -> HttpResponse:
    moderator = acting_moderator(request)
    reason = request.POST.get("reason", "")
    back = safe_next(request, reverse("tree", args=[tree_id]))
    # Sent from a message's page: refused input is shown there, in the form.
    shown_on = _message_page_of(back)
    if action == "halt":
        return _act(
            request,
            back,
            lambda: services.halt_tree(moderator=moderator, tree_id=tree_id, reason=reason),
            _("The tree was halted."),
            form=(shown_on, "tree") if shown_on else None,
        )
    if action == "resume":
        return _act(
            request,
            back,
            lambda: services.resume_tree(moderator=moderator, tree_id=tree_id, reason=reason),
            _("The tree was resumed."),
            form=(shown_on, "tree") if shown_on else None,
        )
    if action == "settings":
        changes: dict[str, Any] = {}
        for name, (kind, _low, _high) in services.TREE_SETTINGS.items():
            raw = request.POST.get(name, "")
            if kind is bool:
                changes[name] = raw == "on"
            elif raw != "":
                try:
                    changes[name] = float(raw) if kind is float else int(raw)
                except ValueError:
                    changes[name] = raw  # the service names the field in its refusal
        return _act(
            request,
            back,
            lambda: services.change_tree_settings(
                moderator=moderator, tree_id=tree_id, changes=changes, reason=reason
            ),
            _("The tree's settings were changed."),
            form=(shown_on, "settings") if shown_on else None,
        )
    raise Http404


def _message_page_of(path: str) -> UUID | None:
    """The message whose moderator page `path` is, if it is one."""
    try:
        match = resolve(urlsplit(path).path)
    except Resolver404:
        return None
    return match.kwargs["message_id"] if match.url_name == "moderation_message" else None


@moderator_page
def user_page(request: HttpRequest, user_id: UUID) -> HttpResponse:
    person = User.objects.filter(pk=user_id).first()
    if person is None:
        raise Http404
    recent = Message.objects.filter(author=person).select_related("tree").order_by("-created_at")
    return render_moderation(
        request,
        "frontend/moderation/user.html",
        {
            "person": person,
            "stats": user_stats(person),
            "recent": recent[:20],
            "history": AuditEntry.objects.filter(target_id=str(person.pk)).order_by("-id"),
        },
    )


@require_POST
@moderator_page
def user_action(request: HttpRequest, user_id: UUID, action: str) -> HttpResponse:
    moderator = acting_moderator(request)
    reason = request.POST.get("reason", "")
    back = reverse("moderation_user", args=[user_id])
    act = {
        "ban": (services.ban_user, _("The user was banned.")),
        "unban": (services.unban_user, _("The ban was lifted.")),
        "purge": (services.purge_user, _("The user was purged: everything they did is gone.")),
    }.get(action)
    if act is None:
        raise Http404
    service, done = act
    return _act(
        request,
        back,
        lambda: service(moderator=moderator, user_id=user_id, reason=reason),
        str(done),
    )


@moderator_page
def search(request: HttpRequest) -> HttpResponse:
    try:
        filters = selectors.parse_filters(request.GET)
        errors: dict[str, list[str]] = {}
    except InvalidInput as error:
        filters, errors = selectors.SearchFilters(), error.fields
    results = selectors.search_messages(filters) if request.GET and not errors else None
    page = (
        Paginator(results, PAGE_SIZE).get_page(request.GET.get("page"))
        if results is not None
        else None
    )
    return render_moderation(
        request,
        "frontend/moderation/search.html",
        {
            "filters": filters,
            "errors": errors,
            "error_lines": field_errors(errors, SEARCH_LABELS),
            "page": page,
            "query": request.GET.urlencode(),
        },
    )


@moderator_page
def audit(request: HttpRequest) -> HttpResponse:
    try:
        entries = selectors.audit_log(
            action=request.GET.get("action", ""),
            actor=request.GET.get("actor", ""),
            target_id=request.GET.get("target", ""),
        )
    except InvalidInput:
        entries = AuditEntry.objects.none()
    page = Paginator(entries, PAGE_SIZE).get_page(request.GET.get("page"))
    return render_moderation(
        request,
        "frontend/moderation/audit.html",
        {"page": page, "actions": Action.choices, "params": request.GET},
    )
