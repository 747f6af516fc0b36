"""A volunteer's settings: name, languages, leaderboard, interface language; their data."""

from __future__ import annotations

from typing import cast

from django.contrib import messages
from django.contrib.auth import logout
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import redirect, render
from django.utils import translation
from django.utils.translation import gettext as _

from backend.accounts.models import User
from backend.accounts.selectors import contributions
from backend.accounts.services import delete_account, update_profile
from backend.core.errors import InvalidInput
from frontend.forms import ProfileForm


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
                response.set_cookie("django_language", user.ui_language, samesite="Lax")
            return response
    return render(request, "frontend/profile.html", {"form": form})


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
