"""Who may open a volunteer page, and what a page shows when a service says no."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from functools import wraps
from typing import Any, TypeVar, cast
from urllib.parse import urlencode

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from backend.accounts.models import User
from backend.accounts.services import needs_terms
from backend.core import errors as problems
from backend.core.errors import ChorusError
from frontend import text

View = TypeVar("View", bound=Callable[..., HttpResponse])


def volunteer_page(*, tutorial: bool = True) -> Callable[[View], View]:
    """Signed in, not banned, current terms accepted and, unless `tutorial` is False, the
    tutorial done: each missing step sends the volunteer there and back afterwards."""

    def decorator(view: View) -> View:
        @wraps(view)
        def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
            user = cast(User, request.user)
            if user.is_banned:
                return render(request, "frontend/banned.html", status=403)
            back = urlencode({"next": request.get_full_path()})
            if needs_terms(user):
                return redirect(f"{reverse('terms')}?{back}")
            if tutorial and user.tutorial_completed_at is None:
                return redirect(f"{reverse('tutorial')}?{back}")
            return view(request, *args, **kwargs)

        return cast(View, login_required(wrapped))

    return decorator


def error_text(error: ChorusError) -> str:
    """A service's refusal in the reader's language (the service's English as a fallback)."""
    return str(text.ERROR_MESSAGES.get(error.code, error.message))


def field_errors(fields: Mapping[str, list[str]], labels: Mapping[str, object]) -> list[str]:
    """A service's complaints about a form's fields in the reader's language, each field
    named by the label the form shows for it (a field without one by its name)."""
    return [
        field_problem(str(labels.get(field, field)), problem)
        for field, problems in fields.items()
        for problem in problems
    ]


def field_problem(label: str, problem: str) -> str:
    """One of the services' complaints about a field (backend.core.errors: "Required.",
    "At most 1000 characters.", in English for the API) in plain words in the reader's
    language; one not known there is shown as it is."""
    words: dict[str, object] = {"label": label}
    if problem in (problems.REQUIRED, problems.BLANK):
        return _("“%(label)s” is empty; please fill it in.") % words
    if problem == problems.UNCHANGED:
        return _("“%(label)s” is the same as before.") % words
    if problem == problems.WHOLE_NUMBER:
        return _("“%(label)s” must be a whole number.") % words
    if problem == problems.NUMBER:
        return _("“%(label)s” must be a number.") % words
    if problem == problems.ISO_DATE:
        return _("“%(label)s” must be a date, e.g. 2026-11-25.") % words
    if problem == problems.SHARE:
        return _("“%(label)s” must be a number from 0 to 1.") % words
    if match := problems.ONE_OF.fullmatch(problem):
        return _("“%(label)s” must be one of: %(choices)s.") % {**words, "choices": match[1]}
    if match := problems.AT_MOST.fullmatch(problem):
        limit = int(match[1])
        return ngettext(
            "“%(label)s” may be at most %(limit)d character long.",
            "“%(label)s” may be at most %(limit)d characters long.",
            limit,
        ) % {**words, "limit": limit}
    if match := problems.BETWEEN.fullmatch(problem):
        return _("“%(label)s” must be between %(low)s and %(high)s.") % {
            **words,
            "low": match[1],
            "high": match[2],
        }
    return f"{label}: {problem}"
