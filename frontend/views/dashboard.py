from __future__ import annotations

from typing import Any, cast

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from backend.accounts.models import User
from backend.accounts.selectors import user_stats, working_languages
from backend.community.points import Period
from backend.community.selectors import board, standing, streak_days
from backend.tasks.models import TaskType
from backend.tasks.selectors import availability, reasons_from_counts
from frontend import text
from frontend.access import volunteer_page


@volunteer_page()
def dashboard(request: HttpRequest) -> HttpResponse:
    """Tasks open to this volunteer now, per language and type (and why none), and their
    own figures."""
    user = cast(User, request.user)
    languages = []
    for lang in working_languages(user):
        counts = availability(user=user, lang=lang)
        rows: list[dict[str, Any]] = []
        for task_type in TaskType.values:
            if task_type == TaskType.RANK_PROMPTER_REPLIES and not counts[task_type]["open"]:
                continue  # only offered where the deployment ranks user replies
            available = counts[task_type]["available"]
            reasons = (
                []
                if available
                else [
                    text.NO_TASK_REASONS.get(r["code"], r["message"])
                    for r in reasons_from_counts(counts, lang=lang, task_type=task_type)
                ]
            )
            rows.append({"type": task_type, "available": available, "reasons": reasons})
        total = sum(int(row["available"]) for row in rows)
        languages.append({"code": lang, "rows": rows, "total": total})
    mine = standing(user, board(Period.ALL))
    return render(
        request,
        "frontend/dashboard.html",
        {
            "languages": languages,
            "stats": user_stats(user),
            "streak": streak_days(user),
            "rank": mine.rank,
            "volunteers": mine.volunteers,
            "points": mine.points,
        },
    )
