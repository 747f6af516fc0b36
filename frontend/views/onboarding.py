"""The tutorial a new volunteer finishes before real tasks."""

from __future__ import annotations

from typing import cast

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _

from backend.accounts.models import User
from backend.accounts.services import complete_tutorial
from frontend.access import volunteer_page
from frontend.forms import LabelForm
from frontend.tutorial import STEPS
from frontend.views.pages import safe_next

SESSION_KEY = "tutorial_passed"  # how many steps this session has passed


@volunteer_page(tutorial=False)
def tutorial(request: HttpRequest) -> HttpResponse:
    user = cast(User, request.user)
    passed = int(request.session.get(SESSION_KEY, 0))
    if passed >= len(STEPS):
        complete_tutorial(user=user)
        request.session.pop(SESSION_KEY, None)
        messages.success(request, _("Tutorial done. Welcome aboard: here are your tasks."))
        return redirect(safe_next(request, reverse("dashboard")))
    step = STEPS[passed]
    feedback, success = "", False
    if request.method == "POST":
        feedback = step.check(request.POST)
        if not feedback:
            success = True
            request.session[SESSION_KEY] = passed + 1
    form = LabelForm("label_initial_prompt", request.POST or None) if step.kind == "label" else None
    return render(
        request,
        "frontend/tutorial.html",
        {
            "step": step,
            "number": passed + 1,
            "total": len(STEPS),
            "form": form,
            "feedback": feedback,
            "success": success,
            "answer": request.POST,
            "next": safe_next(request, ""),
            "positions": range(1, len(step.replies) + 1),
        },
    )
