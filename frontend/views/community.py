"""The leaderboard page: points per volunteer per period and language, and the formula."""

from __future__ import annotations

from typing import cast

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils.safestring import mark_safe
from django.utils.translation import gettext_lazy as _

from backend.accounts.models import User
from backend.community import selectors
from backend.community.points import FORMULA, Kind, Period
from frontend.access import volunteer_page

PERIODS = [
    (Period.DAY, _("Today")),
    (Period.WEEK, _("This week")),
    (Period.MONTH, _("This month")),
    (Period.ALL, _("All time")),
]
KINDS = [
    (Kind.PROMPT, _("Prompts")),
    (Kind.REPLY, _("Replies")),
    (Kind.REVIEW, _("Reviews")),
    (Kind.RANKING, _("Rankings")),
    (Kind.ACCEPTED, _("Accepted")),
    (Kind.AGREEMENT, _("Agreement")),
    (Kind.TOP_REPLY, _("Best reply")),
]
# The formula's actions (backend/community/points.py FORMULA) in words.
ACTIONS = {
    "initial_prompt": _("Write a first prompt"),
    "assistant_reply": _("Reply as the assistant"),
    "prompter_reply": _("Reply as the user"),
    "review": _("Review a message"),
    "ranking": _("Rank replies"),
    "accepted": _("Your prompt or reply is accepted by its reviewers"),
    "review_agrees": _("Your review's verdict (accept or reject) is the one the message got"),
    "ranking_agrees": _(
        "Your ranking agrees with the consensus when the tree is scored "
        "(Kendall's τ at least 0.25 / at least 0.75)"
    ),
    "top_reply": _("Your reply is ranked best among two or more"),
}


@volunteer_page(tutorial=False)
def leaderboard(request: HttpRequest) -> HttpResponse:
    """The board of the current period (UTC), for one language or all; unknown choices fall
    back to this week in all languages."""
    user = cast(User, request.user)
    period = request.GET.get("period", Period.WEEK)
    if period not in {p.value for p in Period}:
        period = Period.WEEK
    lang = request.GET.get("lang", "")
    if lang not in settings.CHORUS_LANGUAGES:
        lang = ""
    which = selectors.board(period, lang)
    entries = selectors.leaderboard(which)
    # The breakdown cells are built here: as a template loop (or format_html), 50 rows of 7
    # cells took longer than the board's queries. Safe: kinds are our constants, values ints.
    rows = [
        (
            entry,
            mark_safe(  # noqa: S308
                "".join(
                    f'<td class="num breakdown" data-kind="{kind.value}">'
                    f"{int(entry.breakdown.get(kind.value, 0))}</td>"
                    for kind, _label in KINDS
                )
            ),
        )
        for entry in entries
    ]
    mine = selectors.standing(user, which)
    return render(
        request,
        "frontend/leaderboard.html",
        {
            "board": which,
            "rows": rows,
            "mine": mine,
            "periods": PERIODS,
            "kinds": [(kind.value, label) for kind, label in KINDS],
            "languages": settings.CHORUS_LANGUAGES,
            "formula": [(ACTIONS[action], value) for action, _kind, value in FORMULA],
        },
    )
