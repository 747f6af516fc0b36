"""The tree state machine, acceptance and label validation: pure code, no database."""

from __future__ import annotations

import dataclasses
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from backend.trees import labels
from backend.trees.rules import (
    ACTIVE_STATES,
    TERMINAL_STATES,
    TRANSITIONS,
    State,
    TreeFacts,
    add_to_summary,
    is_accepted,
    is_legal_transition,
    max_children,
    next_state,
    reachable_states,
    reply_role,
)

FAST = settings(max_examples=200, deadline=None)
NON_TERMINAL = [s for s in State if s not in TERMINAL_STATES]


def facts(state: State, **overrides: object) -> TreeFacts:
    """A tree in `state` where nothing is happening: no verdict, no work, no capacity."""
    base = TreeFacts(
        state=state,
        root_review_result=None,
        accepted_count=0,
        pending_review_count=0,
        has_open_reply_slot=True,
        rankable_parent_count=0,
        parents_needing_rankings=0,
        goal_size=5,
    )
    return dataclasses.replace(base, **overrides)


# --- The table ---------------------------------------------------------------------------


def test_every_state_has_an_entry_in_the_transition_table():
    assert set(TRANSITIONS) == set(State)


@pytest.mark.parametrize("state", sorted(TERMINAL_STATES))
def test_terminal_states_have_no_way_out(state):
    assert TRANSITIONS[state] == ()
    assert reachable_states(state) == {state}


def test_terminal_states_are_the_finished_and_the_rejected_tree():
    finished = {State.READY_FOR_EXPORT, State.ABORTED_LOW_GRADE}
    assert finished == TERMINAL_STATES
    assert not ACTIVE_STATES & TERMINAL_STATES


def test_every_target_in_the_table_is_a_state_and_no_rule_halts_a_tree():
    for source, edges in TRANSITIONS.items():
        for target, guard in edges:
            assert isinstance(target, State)
            assert target != source
            assert target != State.HALTED_BY_MODERATOR
            assert callable(guard)


def test_a_new_prompt_can_end_exported_or_aborted():
    reachable = reachable_states(State.INITIAL_PROMPT_REVIEW)
    assert State.READY_FOR_EXPORT in reachable
    assert State.ABORTED_LOW_GRADE in reachable
    # Halting is a moderator's command, not a rule.
    assert State.HALTED_BY_MODERATOR not in reachable
    assert State.BACKLOG_RANKING not in reachable


def test_an_imported_tree_in_the_backlog_can_reach_export():
    reachable = reachable_states(State.BACKLOG_RANKING)
    assert State.READY_FOR_EXPORT in reachable
    assert State.RANKING in reachable
    assert State.ABORTED_LOW_GRADE not in reachable


def test_a_failed_scoring_can_still_reach_export():
    assert reachable_states(State.SCORING_FAILED) == {
        State.SCORING_FAILED,
        State.READY_FOR_EXPORT,
    }


def test_the_table_has_no_cycles_so_advancing_always_stops():
    """advance_tree loops at most len(State) times; that is enough only without cycles."""

    def visit(state: State, path: tuple[State, ...]) -> None:
        assert state not in path, f"cycle: {[*path, state]}"
        for target, _ in TRANSITIONS[state]:
            visit(target, (*path, state))

    for state in State:
        visit(state, ())


# --- Each transition fires exactly under its guard ----------------------------------------

GUARD_CASES = [
    # Review of the root prompt.
    ("root pending", facts(State.INITIAL_PROMPT_REVIEW), None),
    (
        "root accepted",
        facts(State.INITIAL_PROMPT_REVIEW, root_review_result=True),
        State.PROMPT_LOTTERY_WAITING,
    ),
    (
        "root rejected",
        facts(State.INITIAL_PROMPT_REVIEW, root_review_result=False),
        State.ABORTED_LOW_GRADE,
    ),
    # The lottery.
    ("lottery without room", facts(State.PROMPT_LOTTERY_WAITING), None),
    (
        "lottery with room",
        facts(State.PROMPT_LOTTERY_WAITING, has_growing_capacity=True),
        State.GROWING,
    ),
    (
        "ranking capacity does not grow a tree",
        facts(State.PROMPT_LOTTERY_WAITING, has_ranking_capacity=True),
        None,
    ),
    # Growth.
    ("small and open", facts(State.GROWING, accepted_count=3), None),
    (
        "at goal, a set to rank",
        facts(State.GROWING, accepted_count=5, rankable_parent_count=1, parents_needing_rankings=1),
        State.RANKING,
    ),
    (
        "at goal, nothing to rank",
        facts(State.GROWING, accepted_count=5),
        State.READY_FOR_SCORING,
    ),
    (
        "above goal",
        facts(State.GROWING, accepted_count=9, parents_needing_rankings=2),
        State.RANKING,
    ),
    (
        "full before goal, a set to rank",
        facts(
            State.GROWING, accepted_count=3, has_open_reply_slot=False, parents_needing_rankings=1
        ),
        State.RANKING,
    ),
    (
        "full before goal, nothing to rank",
        facts(State.GROWING, accepted_count=1, has_open_reply_slot=False),
        State.READY_FOR_SCORING,
    ),
    (
        "at goal but a review is pending",
        facts(State.GROWING, accepted_count=5, pending_review_count=1, parents_needing_rankings=1),
        None,
    ),
    (
        "full but a review is pending",
        facts(State.GROWING, has_open_reply_slot=False, pending_review_count=2),
        None,
    ),
    # Imported trees waiting for ranking.
    (
        "backlog without room",
        facts(State.BACKLOG_RANKING, parents_needing_rankings=1),
        None,
    ),
    (
        "backlog with room",
        facts(State.BACKLOG_RANKING, parents_needing_rankings=1, has_ranking_capacity=True),
        State.RANKING,
    ),
    (
        "backlog already ranked needs no room",
        facts(State.BACKLOG_RANKING, rankable_parent_count=2),
        State.READY_FOR_SCORING,
    ),
    (
        "growing capacity does not rank a backlog tree",
        facts(State.BACKLOG_RANKING, parents_needing_rankings=1, has_growing_capacity=True),
        None,
    ),
    # Ranking.
    (
        "rankings missing",
        facts(State.RANKING, rankable_parent_count=2, parents_needing_rankings=1),
        None,
    ),
    (
        "rankings complete",
        facts(State.RANKING, rankable_parent_count=2, parents_needing_rankings=0),
        State.READY_FOR_SCORING,
    ),
    # Scoring.
    ("not scored yet", facts(State.READY_FOR_SCORING), None),
    (
        "scored",
        facts(State.READY_FOR_SCORING, scoring_succeeded=True),
        State.READY_FOR_EXPORT,
    ),
    (
        "scoring raised",
        facts(State.READY_FOR_SCORING, scoring_succeeded=False),
        State.SCORING_FAILED,
    ),
    ("retry not run", facts(State.SCORING_FAILED), None),
    ("retry failed again", facts(State.SCORING_FAILED, scoring_succeeded=False), None),
    (
        "retry succeeded",
        facts(State.SCORING_FAILED, scoring_succeeded=True),
        State.READY_FOR_EXPORT,
    ),
    # Nothing moves a halted or finished tree.
    (
        "halted, however ready",
        facts(
            State.HALTED_BY_MODERATOR,
            root_review_result=True,
            accepted_count=99,
            has_growing_capacity=True,
            scoring_succeeded=True,
        ),
        None,
    ),
    (
        "exported, however ready",
        facts(State.READY_FOR_EXPORT, root_review_result=False, scoring_succeeded=False),
        None,
    ),
    (
        "aborted, however ready",
        facts(State.ABORTED_LOW_GRADE, root_review_result=True, has_growing_capacity=True),
        None,
    ),
]


@pytest.mark.parametrize(
    ("tree", "expected"), [case[1:] for case in GUARD_CASES], ids=[case[0] for case in GUARD_CASES]
)
def test_each_transition_fires_exactly_under_its_guard(tree, expected):
    assert next_state(tree) == expected


def test_every_edge_of_the_table_is_exercised_by_a_guard_case():
    fired = {(tree.state, expected) for _, tree, expected in GUARD_CASES if expected}
    table = {(source, target) for source, edges in TRANSITIONS.items() for target, _ in edges}
    assert fired == table


@pytest.mark.parametrize("pending", [1, 3])
def test_growth_is_not_done_while_reviews_or_reply_leases_are_pending(pending):
    """tree_facts counts outstanding reply leases as pending reviews: a volunteer still
    writing keeps the tree growing, even when it reached its goal or is full."""
    for open_slot in (True, False):
        for needing in (0, 1):
            tree = facts(
                State.GROWING,
                accepted_count=12,
                goal_size=5,
                pending_review_count=pending,
                has_open_reply_slot=open_slot,
                parents_needing_rankings=needing,
            )
            assert next_state(tree) is None
            assert next_state(dataclasses.replace(tree, pending_review_count=0)) is not None


def test_a_growing_tree_one_short_of_its_goal_keeps_growing():
    assert next_state(facts(State.GROWING, accepted_count=4, goal_size=5)) is None
    assert next_state(facts(State.GROWING, accepted_count=5, goal_size=5)) is not None


# --- Acceptance ----------------------------------------------------------------------------


def summary(**means: float) -> dict[str, dict[str, float]]:
    return {name: {"value": value, "count": 3} for name, value in means.items()}


@pytest.mark.parametrize(
    ("means", "accepted"),
    [
        ({}, True),  # a missing label counts as 0
        ({"spam": 0.0, "lang_mismatch": 0.0}, True),
        ({"spam": 0.39}, True),
        ({"spam": 0.4}, False),  # 1 - 0.4 == 0.6 does not exceed 0.6
        ({"lang_mismatch": 0.4}, False),
        ({"spam": 0.2, "lang_mismatch": 0.2}, False),
        ({"spam": 0.2, "lang_mismatch": 0.19}, True),
        ({"spam": 0.41}, False),
        ({"spam": 1.0}, False),
        ({"spam": 0.0, "quality": 0.0, "toxicity": 1.0}, True),  # other labels do not count
    ],
)
def test_a_message_is_accepted_only_when_one_minus_spam_and_language_exceeds_the_threshold(
    means, accepted
):
    assert is_accepted(summary(**means), 0.6) is accepted


def test_the_threshold_is_strict_for_any_threshold():
    for threshold in (0.0, 0.25, 0.5, 0.75):
        assert not is_accepted(summary(spam=1.0 - threshold), threshold)
        assert is_accepted(summary(spam=max(0.0, 1.0 - threshold - 0.01)), threshold)


def test_two_of_five_reviews_saying_spam_reject_a_message_at_the_default_threshold():
    folded: dict[str, dict[str, float]] = {}
    for spam in (0, 1, 0, 1, 0):
        folded = add_to_summary(folded, {"spam": spam, "lang_mismatch": 0})
    assert folded["spam"] == {"value": 0.4, "count": 5}
    assert not is_accepted(folded, 0.6)


def test_the_verdict_does_not_depend_on_the_order_reviews_arrive():
    verdicts = set()
    for order in ((1, 1, 1, 1, 0, 0, 0, 0, 0, 0), (0, 0, 0, 0, 0, 1, 1, 1, 1, 0)):
        folded: dict[str, dict[str, float]] = {}
        for spam in order:
            folded = add_to_summary(folded, {"spam": spam, "lang_mismatch": 0})
        verdicts.add(is_accepted(folded, 0.6))
    # 4 of 10 is exactly 0.4: 1 - 0.4 does not exceed 0.6, whatever the order.
    assert verdicts == {False}


# --- Running means -------------------------------------------------------------------------

unit = st.floats(min_value=0.0, max_value=1.0, allow_nan=False)


@FAST
@given(st.lists(unit, min_size=1, max_size=40))
def test_the_running_summary_is_the_arithmetic_mean(values):
    folded: dict[str, dict[str, float]] = {}
    for value in values:
        folded = add_to_summary(folded, {"quality": value})
    assert folded["quality"]["count"] == len(values)
    assert folded["quality"]["value"] == pytest.approx(math.fsum(values) / len(values), abs=1e-9)
    assert 0.0 <= folded["quality"]["value"] <= 1.0


@FAST
@given(st.lists(st.tuples(unit, st.booleans()), min_size=1, max_size=30))
def test_each_label_keeps_its_own_count_when_reviews_answer_different_labels(reviews):
    folded: dict[str, dict[str, float]] = {}
    for spam, with_humor in reviews:
        values = {"spam": spam, **({"humor": 1.0 - spam} if with_humor else {})}
        folded = add_to_summary(folded, values)
    humor = [1.0 - spam for spam, with_humor in reviews if with_humor]
    assert folded["spam"]["count"] == len(reviews)
    if humor:
        assert folded["humor"]["count"] == len(humor)
        assert folded["humor"]["value"] == pytest.approx(sum(humor) / len(humor), abs=1e-9)
    else:
        assert "humor" not in folded


def test_folding_a_review_leaves_the_previous_summary_untouched():
    before = {"spam": {"value": 0.5, "count": 2}}
    after = add_to_summary(before, {"spam": 1.0, "pii": 0.0})
    assert before == {"spam": {"value": 0.5, "count": 2}}
    assert after == {
        "spam": {"value": pytest.approx(2 / 3), "count": 3},
        "pii": {"value": 0.0, "count": 1},
    }


# --- Halts and resumes ---------------------------------------------------------------------


@pytest.mark.parametrize("source", list(State))
def test_a_moderator_may_halt_any_tree_that_is_not_finished(source):
    assert is_legal_transition(source, State.HALTED_BY_MODERATOR) is (source not in TERMINAL_STATES)


@pytest.mark.parametrize("target", list(State))
def test_a_halted_tree_resumes_only_into_a_state_that_is_not_finished(target):
    assert is_legal_transition(State.HALTED_BY_MODERATOR, target) is (target not in TERMINAL_STATES)


def test_legal_transitions_are_exactly_the_table_apart_from_halts():
    for source in State:
        for target in State:
            if State.HALTED_BY_MODERATOR in (source, target):
                continue
            in_table = any(t == target for t, _ in TRANSITIONS[source])
            assert is_legal_transition(source, target) is in_table, (source, target)


def test_no_shortcut_skips_ranking_or_scoring():
    assert not is_legal_transition(State.GROWING, State.READY_FOR_EXPORT)
    assert not is_legal_transition(State.RANKING, State.READY_FOR_EXPORT)
    assert not is_legal_transition(State.INITIAL_PROMPT_REVIEW, State.GROWING)
    assert not is_legal_transition(State.READY_FOR_EXPORT, State.GROWING)
    assert not is_legal_transition(State.ABORTED_LOW_GRADE, State.INITIAL_PROMPT_REVIEW)


# --- Any facts -----------------------------------------------------------------------------

counts = st.integers(min_value=0, max_value=20)
tree_facts = st.builds(
    TreeFacts,
    state=st.sampled_from(State),
    root_review_result=st.sampled_from([None, True, False]),
    accepted_count=counts,
    pending_review_count=counts,
    has_open_reply_slot=st.booleans(),
    rankable_parent_count=counts,
    parents_needing_rankings=counts,
    goal_size=st.integers(min_value=1, max_value=20),
    has_growing_capacity=st.booleans(),
    has_ranking_capacity=st.booleans(),
    scoring_succeeded=st.sampled_from([None, True, False]),
)


@FAST
@given(tree_facts)
def test_the_next_state_is_none_or_a_legal_transition(tree):
    target = next_state(tree)
    if target is None:
        return
    assert is_legal_transition(tree.state, target)
    assert target != State.HALTED_BY_MODERATOR
    assert tree.state not in TERMINAL_STATES
    assert tree.state != State.HALTED_BY_MODERATOR


@FAST
@given(tree_facts)
def test_applying_the_rules_until_they_stop_takes_fewer_steps_than_there_are_states(tree):
    for _ in range(len(State)):
        target = next_state(tree)
        if target is None:
            return
        tree = dataclasses.replace(tree, state=target)
    pytest.fail(f"the rules never settle from {tree}")


@FAST
@given(tree_facts)
def test_growth_never_ends_while_work_is_pending(tree):
    tree = dataclasses.replace(tree, state=State.GROWING)
    if tree.pending_review_count:
        assert next_state(tree) is None


# --- Reply shapes --------------------------------------------------------------------------


def test_replies_alternate_roles():
    assert reply_role("prompter") == "assistant"
    assert reply_role("assistant") == "prompter"


def test_prompts_and_assistant_replies_have_their_own_child_limits():
    assert max_children("prompter", prompter_limit=3, assistant_limit=1) == 3
    assert max_children("assistant", prompter_limit=3, assistant_limit=1) == 1


# --- Label values --------------------------------------------------------------------------

VALID = {"spam": 0, "lang_mismatch": 0}


@pytest.mark.parametrize(
    ("task_type", "values"),
    [
        ("label_initial_prompt", VALID),
        ("label_initial_prompt", {"spam": 1, "lang_mismatch": 1.0}),
        ("label_prompter_reply", {**VALID, "quality": 0.75, "humor": 0, "violence": 1}),
        ("label_assistant_reply", {**VALID, "fails_task": 1, "helpfulness": 0.5}),
        ("label_assistant_reply", {**VALID, "pii": 0.0, "toxicity": 0.25, "creativity": 1.0}),
    ],
)
def test_valid_label_values_have_no_errors(task_type, values):
    assert labels.validate_values(task_type, values) == {}


@pytest.mark.parametrize(
    ("task_type", "values", "errors"),
    [
        ("label_initial_prompt", None, {"labels"}),
        ("label_initial_prompt", [], {"labels"}),
        ("label_initial_prompt", {}, {"labels"}),
        ("label_initial_prompt", "spam=0", {"labels"}),
        ("label_initial_prompt", {"spam": 0}, {"labels.lang_mismatch"}),
        ("label_initial_prompt", {"quality": 0.5}, {"labels.spam", "labels.lang_mismatch"}),
        ("label_initial_prompt", {**VALID, "sparkle": 1}, {"labels.sparkle"}),
        # fails_task and helpfulness are only asked of assistant replies.
        ("label_initial_prompt", {**VALID, "fails_task": 0}, {"labels.fails_task"}),
        ("label_prompter_reply", {**VALID, "helpfulness": 1}, {"labels.helpfulness"}),
        ("label_initial_prompt", {"spam": True, "lang_mismatch": 0}, {"labels.spam"}),
        ("label_initial_prompt", {"spam": "0", "lang_mismatch": 0}, {"labels.spam"}),
        ("label_initial_prompt", {"spam": None, "lang_mismatch": 0}, {"labels.spam"}),
        ("label_initial_prompt", {**VALID, "quality": 1.5}, {"labels.quality"}),
        ("label_initial_prompt", {**VALID, "quality": -0.25}, {"labels.quality"}),
        ("label_initial_prompt", {**VALID, "quality": math.nan}, {"labels.quality"}),
        ("label_initial_prompt", {**VALID, "quality": math.inf}, {"labels.quality"}),
        # Yes/no questions and flags take 0 or 1, not a point on a scale.
        ("label_initial_prompt", {"spam": 0.5, "lang_mismatch": 0}, {"labels.spam"}),
        ("label_assistant_reply", {**VALID, "pii": 0.25}, {"labels.pii"}),
        ("label_assistant_reply", {**VALID, "fails_task": 0.75}, {"labels.fails_task"}),
    ],
)
def test_invalid_label_values_are_reported_per_field(task_type, values, errors):
    found = labels.validate_values(task_type, values)
    assert set(found) == errors
    assert all(
        isinstance(m, list) and m and all(isinstance(s, str) for s in m) for m in found.values()
    )


def test_every_offered_label_is_in_the_catalogue_and_every_task_asks_the_mandatory_ones():
    for task_type, offered in labels.OFFERED.items():
        assert task_type.startswith("label_")
        assert set(offered) <= set(labels.CATALOGUE)
        assert set(labels.MANDATORY) <= set(offered)
