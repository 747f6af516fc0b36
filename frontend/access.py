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
from django.utils.translation import gettext_lazy, ngettext

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


# The services' problems without parameters (backend.core.errors), in plain words.
PLAIN_PROBLEMS = {
    problems.REQUIRED: gettext_lazy("“%(label)s” is empty; please fill it in."),
    problems.BLANK: gettext_lazy("“%(label)s” is empty; please fill it in."),
    problems.UNCHANGED: gettext_lazy("“%(label)s” is the same as before."),
    problems.WHOLE_NUMBER: gettext_lazy("“%(label)s” must be a whole number."),
    problems.NUMBER: gettext_lazy("“%(label)s” must be a number."),
    problems.ISO_DATE: gettext_lazy("“%(label)s” must be a date, e.g. 2026-11-25."),
    problems.SHARE: gettext_lazy("“%(label)s” must be a number from 0 to 1."),
}


def field_problem(label: str, problem: str) -> str:
    """One of the services' complaints about a field (backend.core.errors: "Required.",
    "At most 1000 characters.", in English for the API) in plain words in the reader's
    language; one not known there is shown as it is."""
    if problem in PLAIN_PROBLEMS:
        return str(PLAIN_PROBLEMS[problem]) % {"label": label}
    if match := problems.ONE_OF.fullmatch(problem):
        return _("“%(label)s” must be one of: %(choices)s.") % {"label": label, "choices": match[1]}
    if match := problems.AT_MOST.fullmatch(problem):
        limit = int(match[1])
        return ngettext(
            "“%(label)s” may be at most %(limit)d character long.",
            "“%(label)s” may be at most %(limit)d characters long.",
            limit,
        ) % {"label": label, "limit": limit}
    if match := problems.BETWEEN.fullmatch(problem):
        low, high = match[1], match[2]
        return _("“%(label)s” must be between %(low)s and %(high)s.") % {
            "label": label,
            "low": low,
            "high": high,
        }
    return f"{label}: {problem}"
