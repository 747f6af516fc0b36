"""The life of a conversation tree as pure code: its states, the one transition table,
and the acceptance rule for reviewed messages. No Django here: services gather the facts
(`TreeFacts`) under a row lock and apply what `next_state` decides.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import StrEnum


class State(StrEnum):
    INITIAL_PROMPT_REVIEW = "initial_prompt_review"
    """The root prompt waits for its reviews; accepted prompts enter the lottery."""

    PROMPT_LOTTERY_WAITING = "prompt_lottery_waiting"
    """Accepted prompt waiting for a free growing slot in its language (drawn by lottery)."""

    GROWING = "growing"
    """Volunteers write and review replies until the tree reaches its size goal or is full."""

    RANKING = "ranking"
    """Growth is over; sibling replies are ranked until every set has its rankings."""

    READY_FOR_SCORING = "ready_for_scoring"
    """All rankings are in; the scoring job computes consensus ranks."""

    READY_FOR_EXPORT = "ready_for_export"
    """Finished: reviewed, ranked and scored. Terminal."""

    ABORTED_LOW_GRADE = "aborted_low_grade"
    """The root prompt was rejected in review. Terminal."""

    HALTED_BY_MODERATOR = "halted_by_moderator"
    """Frozen by a moderator: no tasks, no transitions, until resumed."""

    SCORING_FAILED = "scoring_failed"
    """Scoring raised an error; the reconcile job retries it."""

    BACKLOG_RANKING = "backlog_ranking"
    """Imported tree with unranked sibling sets, waiting for a ranking slot."""


TERMINAL_STATES = frozenset({State.READY_FOR_EXPORT, State.ABORTED_LOW_GRADE})
# States in which volunteers are handed work on the tree.
ACTIVE_STATES = frozenset({State.INITIAL_PROMPT_REVIEW, State.GROWING, State.RANKING})


@dataclass(frozen=True)
class TreeFacts:
    """What the rules need to know about one tree, gathered in one query."""

    state: State
    root_review_result: bool | None
    accepted_count: int
    pending_review_count: int
    # An accepted message that may still get a reply (depth and children limits allow it).
    has_open_reply_slot: bool
    # Parents with at least two accepted children (a sibling set to rank).
    rankable_parent_count: int
    # Of those, how many still lack rankings.
    parents_needing_rankings: int
    goal_size: int
    # Whether the language has room for another growing tree (lottery) or ranking tree.
    has_growing_capacity: bool = False
    has_ranking_capacity: bool = False
    scoring_succeeded: bool | None = None


Guard = Callable[[TreeFacts], bool]


def _growth_done(f: TreeFacts) -> bool:
    if f.pending_review_count:
        return False
    return f.accepted_count >= f.goal_size or not f.has_open_reply_slot


# The one transition table: from-state -> ordered (to-state, guard). The first guard that
# holds wins. Moderator halts and resumes are not here: they are commands, not rules.
TRANSITIONS: Mapping[State, tuple[tuple[State, Guard], ...]] = {
    State.INITIAL_PROMPT_REVIEW: (
        (State.PROMPT_LOTTERY_WAITING, lambda f: f.root_review_result is True),
        (State.ABORTED_LOW_GRADE, lambda f: f.root_review_result is False),
    ),
    State.PROMPT_LOTTERY_WAITING: ((State.GROWING, lambda f: f.has_growing_capacity),),
    State.GROWING: (
        (State.RANKING, lambda f: _growth_done(f) and f.parents_needing_rankings > 0),
        (State.READY_FOR_SCORING, lambda f: _growth_done(f) and f.parents_needing_rankings == 0),
    ),
    State.BACKLOG_RANKING: (
        (State.READY_FOR_SCORING, lambda f: f.parents_needing_rankings == 0),
        (State.RANKING, lambda f: f.has_ranking_capacity),
    ),
    State.RANKING: ((State.READY_FOR_SCORING, lambda f: f.parents_needing_rankings == 0),),
    State.READY_FOR_SCORING: (
        (State.READY_FOR_EXPORT, lambda f: f.scoring_succeeded is True),
        (State.SCORING_FAILED, lambda f: f.scoring_succeeded is False),
    ),
    State.SCORING_FAILED: ((State.READY_FOR_EXPORT, lambda f: f.scoring_succeeded is True),),
    State.READY_FOR_EXPORT: (),
    State.ABORTED_LOW_GRADE: (),
    State.HALTED_BY_MODERATOR: (),
}


def next_state(facts: TreeFacts) -> State | None:
    """The state the tree should move to now, or None if it stays."""
    for target, guard in TRANSITIONS[facts.state]:
        if guard(facts):
            return target
    return None


def is_legal_transition(source: State, target: State) -> bool:
    """Whether the table (or a moderator's halt/resume) allows source -> target."""
    if target == State.HALTED_BY_MODERATOR:
        return source not in TERMINAL_STATES
    if source == State.HALTED_BY_MODERATOR:
        return target not in TERMINAL_STATES
    return any(t == target for t, _ in TRANSITIONS[source])


def reachable_states(start: State) -> set[State]:
    """Every state reachable from `start` through the table (halts excluded)."""
    seen, frontier = {start}, [start]
    while frontier:
        for target, _ in TRANSITIONS[frontier.pop()]:
            if target not in seen:
                seen.add(target)
                frontier.append(target)
    return seen


def is_accepted(label_summary: Mapping[str, Mapping[str, float]], threshold: float) -> bool:
    """OpenAssistant's acceptance: 1 - (mean spam + mean wrong-language) must exceed threshold.

    `label_summary` maps label name to {"value": mean, "count": n}; a missing label counts as 0.
    """
    spam = label_summary.get("spam", {}).get("value", 0.0)
    wrong_language = label_summary.get("lang_mismatch", {}).get("value", 0.0)
    # Rounded: running means in floats must not flip a verdict that sits on the threshold.
    return round(1.0 - (spam + wrong_language), 9) > round(threshold, 9)


def add_to_summary(
    summary: Mapping[str, Mapping[str, float]], values: Mapping[str, float]
) -> dict[str, dict[str, float]]:
    """Fold one review's label values into running means {name: {"value", "count"}}."""
    out = {name: dict(entry) for name, entry in summary.items()}
    for name, value in values.items():
        entry = out.setdefault(name, {"value": 0.0, "count": 0})
        count = int(entry["count"]) + 1
        entry["value"] = entry["value"] + (value - entry["value"]) / count
        entry["count"] = count
    return out


def max_children(role: str, *, prompter_limit: int, assistant_limit: int) -> int:
    """How many live replies a message may have: prompts get assistant replies and back."""
    return prompter_limit if role == "prompter" else assistant_limit


def reply_role(parent_role: str) -> str:
    return "assistant" if parent_role == "prompter" else "prompter"
