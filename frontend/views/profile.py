"""A volunteer's settings: name, languages, leaderboard, interface language; their data."""

from __future__ import annotations

from typing import cast
from uuid import UUID

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import logout
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import redirect, render
from django.utils import translation
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from backend.accounts.models import User
from backend.accounts.selectors import access_api_client, api_clients_of, contributions
from backend.accounts.services import (
    create_api_client,
    delete_account,
    revoke_api_client,
    update_profile,
)
from backend.core.errors import ChorusError, InvalidInput, NotFound
from frontend.forms import ApiKeyForm, ProfileForm


@login_required
def profile(request: HttpRequest) -> HttpResponse:
    user = cast(User, request.user)
    initial = {
        "display_name": user.display_name,
        "languages": user.languages,
        "ui_language": user.ui_language,
        "show_on_leaderboard": user.show_on_leaderboard,
    }
    form = ProfileForm(request.POST or None, initial=initial)
    if request.method == "POST" and form.is_valid():
        try:
            update_profile(user=user, **form.cleaned_data)
        except InvalidInput as error:
            for field, errors in error.fields.items():
                for message in errors:
                    form.add_error(field if field in form.fields else None, message)
        else:
            if user.ui_language:
                translation.activate(user.ui_language)
            messages.success(request, _("Your settings were saved."))
            response = redirect("profile")
            if user.ui_language:
                response.set_cookie(
                    settings.LANGUAGE_COOKIE_NAME,
                    user.ui_language,
                    samesite="Lax",
                    secure=settings.LANGUAGE_COOKIE_SECURE,
                    httponly=settings.LANGUAGE_COOKIE_HTTPONLY,
                )
            return response
    return _settings_page(request, form)


def _settings_page(
    request: HttpRequest,
    form: ProfileForm,
    *,
    key_form: ApiKeyForm | None = None,
    new_key: str = "",
    status: int = 200,
) -> HttpResponse:
    user = cast(User, request.user)
    context = {
        "form": form,
        "key_form": key_form or ApiKeyForm(),
        "api_keys": api_clients_of(user),
        "new_key": new_key,
    }
    response = render(request, "frontend/profile.html", context, status=status)
    if new_key:
        response["Cache-Control"] = "no-store"  # the key is on this page once, in no cache
    return response


def _profile_form(user: User) -> ProfileForm:
    return ProfileForm(
        initial={
            "display_name": user.display_name,
            "languages": user.languages,
            "ui_language": user.ui_language,
            "show_on_leaderboard": user.show_on_leaderboard,
        }
    )


@login_required
@require_POST
def create_key(request: HttpRequest) -> HttpResponse:
    """Make an API key and show it, this once: only its hash is kept."""
    user = cast(User, request.user)
    key_form = ApiKeyForm(request.POST)
    if key_form.is_valid():
        try:
            _, key = create_api_client(owner=user, name=key_form.cleaned_data["name"])
        except ChorusError as error:
            key_form.add_error("name", error.message)
        else:
            return _settings_page(request, _profile_form(user), new_key=key)
    return _settings_page(request, _profile_form(user), key_form=key_form, status=400)


@login_required
@require_POST
def revoke_key(request: HttpRequest, key_id: UUID) -> HttpResponse:
    user = cast(User, request.user)
    try:
        client = access_api_client(owner=user, client_id=key_id)
    except NotFound:
        raise Http404 from None
    revoke_api_client(client=client)
    messages.success(request, _("The API key “%(name)s” was revoked.") % {"name": client.name})
    return redirect("profile")


@login_required
def download_contributions(request: HttpRequest) -> StreamingHttpResponse:
    user = cast(User, request.user)
    response = StreamingHttpResponse(contributions(user), content_type="application/json")
    response["Content-Disposition"] = 'attachment; filename="chorus-contributions.json"'
    return response


@login_required
def delete_profile(request: HttpRequest) -> HttpResponse:
    user = cast(User, request.user)
    if request.method == "POST" and request.POST.get("confirm") == user.username:
        delete_account(user=user)
        logout(request)
        messages.info(request, _("Your account was deleted."))
        return redirect("home")
    error = request.method == "POST"
    return render(
        request, "frontend/delete_account.html", {"error": error}, status=400 if error else 200
    )
