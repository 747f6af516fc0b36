from __future__ import annotations

from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse, HttpResponseNotAllowed, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import translation
from django.utils.translation import ngettext

from backend.core import ratelimit
from backend.core.api_errors import error_body


class UserLanguageMiddleware:
    """Speak the interface language a signed-in volunteer chose in their settings.

    LocaleMiddleware has already picked one from the cookie or the browser; a saved choice
    follows the person to every device, so it wins.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        user = getattr(request, "user", None)
        chosen = getattr(user, "ui_language", "") if user is not None else ""
        if chosen and chosen in dict(settings.LANGUAGES) and chosen != request.LANGUAGE_CODE:
            translation.activate(chosen)
            request.LANGUAGE_CODE = chosen
        response = self.get_response(request)
        response.headers.setdefault("Content-Language", translation.get_language() or "en")
        return response


# Form posts of pages and the rate-limit scope each counts against (see
# backend/core/ratelimit.py; the API's views name theirs in `rate_scopes`). Keyed by view
# name, so allauth's pages and Django's own login forms are covered without wrapping them.
PAGE_SCOPES = {
    "account_login": "login",
    "account_request_login_code": "login",
    "rest_framework:login": "login",
    "admin:login": "login",
    "account_signup": "signup",
    "account_reset_password": "password_reset",
    "account_reset_password_from_key": "password_reset",
    "account_change_password": "account_change",
    "account_set_password": "account_change",
    "account_email": "account_change",
    "start_task": "task_request",
    "task": "task_submit",
    "report": "report",
    "chat_report": "report",
    "chat": "chat_message",
}
# Scopes whose form names an account: its field, and for logins the scope of its failures.
ACCOUNT_FIELDS = {"login": ("login", "username"), "password_reset": ("email",)}


class RateLimitMiddleware:
    """Refuses a page's form post over its rate limit before the view runs (so nothing
    changes), with 429, a Retry-After header and a page that says how long to wait."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_view(
        self, request: HttpRequest, view: Callable, args: tuple, kwargs: dict
    ) -> HttpResponse | None:
        if request.method != "POST" or request.resolver_match is None:
            return None
        scope = PAGE_SCOPES.get(request.resolver_match.view_name)
        if scope is None:
            return None
        user = getattr(request, "user", None)
        user_id = user.pk if user is not None and user.is_authenticated else None
        ip = ratelimit.client_ip(request)
        account = next(
            (request.POST[f] for f in ACCOUNT_FIELDS.get(scope, ()) if request.POST.get(f)), ""
        )
        wait = ratelimit.consume(scope, user_id=user_id, ip=ip, account=account)
        if not wait and scope == "login" and account:
            # Failed logins are counted where they happen (backend/core/apps.py); an account
            # with too many is not tried again until its window ends, whoever asks.
            wait = ratelimit.peek("login_failed", account=account)
        return too_many_requests(request, wait) if wait else None


def too_many_requests(request: HttpRequest, wait: int) -> HttpResponse:
    """The 429 answer: JSON in the API's format for scripts that ask for it, else a page."""
    message = ngettext(
        "You sent many requests in a short time. Please wait %(seconds)d second and try again.",
        "You sent many requests in a short time. Please wait %(seconds)d seconds and try again.",
        wait,
    ) % {"seconds": wait}
    if request.headers.get("Accept") == "application/json":
        body = error_body("rate_limited", message, retry_after=wait)
        response: HttpResponse = JsonResponse(body, status=429)
    else:
        context = {"message": message, "retry_after": wait}
        response = render(request, "429.html", context, status=429)
    response["Retry-After"] = str(wait)
    return response


# The page each form address belongs to. One whose address names a thing (the message, the
# task, the chat) is where a browser that opens the form address goes instead; the others
# are the way on that the error page offers.
FORM_PAGES: dict[str, tuple[str, tuple[str, ...]]] = {
    "skip_task": ("task", ("task_id",)),
    "chat_exclude": ("chat", ("chat_id",)),
    "chat_delete": ("chat", ("chat_id",)),
    "chat_vote": ("chat", ("chat_id",)),
    "chat_propose": ("chat", ("chat_id",)),
    "moderation_message_action": ("moderation_message", ("message_id",)),
    "moderation_tree_action": ("tree", ("tree_id",)),
    "moderation_user_action": ("moderation_user", ("user_id",)),
    "start_task": ("dashboard", ()),
    "create_api_key": ("profile", ()),
    "revoke_api_key": ("profile", ()),
}


class MethodNotAllowedMiddleware:
    """A page opened with a method it does not take (typically a form's address typed into
    or reloaded from the address bar) gets a page instead of Django's empty 405: the page
    the form is on when the address names it, else an error page with a way on. The API
    keeps its own JSON errors."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if not isinstance(response, HttpResponseNotAllowed) or request.path.startswith("/api/"):
            return response
        match = request.resolver_match
        found = match.kwargs if match else {}
        name, keys = FORM_PAGES.get(match.view_name if match else "", ("home", ()))
        back = reverse(name, kwargs={key: found[key] for key in keys})
        if keys and request.method in ("GET", "HEAD"):
            return redirect(back)
        page = render(request, "405.html", {"back": back}, status=405)
        page["Allow"] = response["Allow"]
        return page
