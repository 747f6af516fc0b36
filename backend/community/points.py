"""The points formula, as pure code: what each contribution is worth and when a bonus is due.

Points reward work in proportion to its effort and, more than that, its quality: writing
earns a little on submission and more once reviewers accept it; reviews and rankings earn a
point each and a bonus when they agree with what the crowd decided. Nothing is ever taken
away, so a volunteer's total only grows. The leaderboard page shows this table
(`FORMULA`) so everyone can check their numbers.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, timedelta
from enum import StrEnum

from backend.trees import rules


class Kind(StrEnum):
    """Kinds of points; each is a column of a volunteer's breakdown."""

    PROMPT = "prompt"
    REPLY = "reply"
    REVIEW = "review"
    RANKING = "ranking"
    ACCEPTED = "accepted"
    AGREEMENT = "agreement"
    TOP_REPLY = "top_reply"


# Kinds earned by submitting a task (the others are bonuses awarded later).
TASK_KINDS = frozenset({Kind.PROMPT, Kind.REPLY, Kind.REVIEW, Kind.RANKING})

# Task type -> (kind, points). Assistant replies take the most thought; a first prompt or a
# user's turn less; a review or a ranking is quick.
TASK_POINTS: Mapping[str, tuple[Kind, int]] = {
    "initial_prompt": (Kind.PROMPT, 2),
    "assistant_reply": (Kind.REPLY, 4),
    "prompter_reply": (Kind.REPLY, 2),
    "label_initial_prompt": (Kind.REVIEW, 1),
    "label_assistant_reply": (Kind.REVIEW, 1),
    "label_prompter_reply": (Kind.REVIEW, 1),
    "rank_assistant_replies": (Kind.RANKING, 1),
    "rank_prompter_replies": (Kind.RANKING, 1),
}
# A written message (prompt or reply) accepted by its reviewers.
ACCEPTED_POINTS = 3
# A review whose own verdict (accept or reject) is the one its message got.
REVIEW_AGREEMENT_POINTS = 1
# A ranking close to the consensus order (Kendall's tau), when the tree is scored.
RANKING_AGREEMENT_POINTS = ((0.75, 2), (0.25, 1))
# A reply the consensus ranked first among at least two siblings.
TOP_REPLY_POINTS = 3


def task_points(task_type: str) -> tuple[Kind, int]:
    return TASK_POINTS[task_type]


def ranking_agreement_points(tau: float | None) -> int:
    """2 for tau >= 0.75, 1 for tau >= 0.25, else 0 (None: the ranking was not scored)."""
    if tau is None:
        return 0
    for at_least, points in RANKING_AGREEMENT_POINTS:
        if tau >= at_least:
            return points
    return 0


def review_verdict(values: Mapping[str, float], threshold: float) -> bool:
    """Whether this one review, alone, would accept its message: the tree's acceptance rule
    applied to its own labels."""
    return rules.is_accepted(rules.add_to_summary({}, values), threshold)


# --- Periods -------------------------------------------------------------------------------


class Period(StrEnum):
    """Leaderboard windows: calendar periods in UTC (a week starts on Monday)."""

    DAY = "day"
    WEEK = "week"
    MONTH = "month"
    ALL = "all"


# The one bucket of the all-time board.
ALL_TIME_START = date(1970, 1, 1)


def period_start(period: Period, day: date) -> date:
    """The first day of the period that contains `day`."""
    if period == Period.DAY:
        return day
    if period == Period.WEEK:
        return day - timedelta(days=day.weekday())
    if period == Period.MONTH:
        return day.replace(day=1)
    return ALL_TIME_START


# The formula as the page and the API show it: (what you do, kind, points).
FORMULA: list[tuple[str, Kind, str]] = [
    ("initial_prompt", Kind.PROMPT, "2"),
    ("assistant_reply", Kind.REPLY, "4"),
    ("prompter_reply", Kind.REPLY, "2"),
    ("review", Kind.REVIEW, "1"),
    ("ranking", Kind.RANKING, "1"),
    ("accepted", Kind.ACCEPTED, f"+{ACCEPTED_POINTS}"),
    ("review_agrees", Kind.AGREEMENT, f"+{REVIEW_AGREEMENT_POINTS}"),
    ("ranking_agrees", Kind.AGREEMENT, "+1 / +2"),
    ("top_reply", Kind.TOP_REPLY, f"+{TOP_REPLY_POINTS}"),
]
