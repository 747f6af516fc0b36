"""Pages anyone may read, and the consent and language choices."""

from __future__ import annotations

from typing import cast

from django.conf import settings
from django.contrib.auth.views import redirect_to_login
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.templatetags.static import static
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_POST
from django.views.i18n import set_language as django_set_language

from backend.accounts.models import User
from backend.accounts.services import accept_terms, update_profile
from frontend.forms import TermsForm


def home(request: HttpRequest) -> HttpResponse:
    return render(request, "frontend/home.html")


def favicon(request: HttpRequest) -> HttpResponse:
    """Browsers and feed readers ask for /favicon.ico whatever a page links: send them to the
    icon the pages link."""
    return redirect(static("frontend/favicon.svg"), permanent=True)


def guidelines(request: HttpRequest) -> HttpResponse:
    return render(
        request,
        "frontend/guidelines.html",
        {"max_length": settings.CHORUS_MAX_TEXT_LENGTH},
    )


def safe_next(request: HttpRequest, default: str) -> str:
    target = request.POST.get("next") or request.GET.get("next") or ""
    if url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return target
    return default


def terms(request: HttpRequest) -> HttpResponse:
    """The current terms and data-use consent, readable by anyone; a signed-in volunteer
    accepts them here, and again whenever their version changes."""
    if request.method == "POST" and not request.user.is_authenticated:
        return redirect_to_login(request.get_full_path())
    form = TermsForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        accept_terms(user=cast(User, request.user))
        return redirect(safe_next(request, "dashboard"))
    version: int = settings.CHORUS_TERMS_VERSION
    previous = getattr(request.user, "accepted_terms_version", None)
    return render(
        request,
        "frontend/terms.html",
        {
            "form": form,
            "version": version,
            # Only an older acceptance is worth a notice; none at all means a first reading.
            "previous": previous if previous is not None and previous < version else None,
            "licence": settings.CHORUS_DATASET_LICENSE,
            "next": safe_next(request, ""),
        },
    )


@require_POST
def set_language(request: HttpRequest) -> HttpResponse:
    """Django's language switch, remembered in the settings of a signed-in volunteer."""
    response = django_set_language(request)
    code = request.POST.get("language", "")
    if request.user.is_authenticated and code in dict(settings.LANGUAGES):
        update_profile(user=cast(User, request.user), ui_language=code)
    return response
