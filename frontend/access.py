"""Who may open a volunteer page, and what a page shows when a service says no."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar, cast
from urllib.parse import urlencode

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse

from backend.accounts.models import User
from backend.accounts.services import needs_terms
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
