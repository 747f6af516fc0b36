"""Ranking consensus: pure code, so no database; hypothesis covers the wide input space."""

from __future__ import annotations

import math
import uuid
from itertools import combinations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from backend.trees.consensus import (
    Consensus,
    aggregate,
    bradley_terry,
    kendall_tau,
    kendalls_w,
    pairwise_wins,
    ranked_pairs,
    volunteer_agreement,
)

FAST = settings(max_examples=60, deadline=None)


@st.composite
def full_rankings(draw, min_items=2, max_items=6, min_rankings=1, max_rankings=7):
    """Several permutations of the same 2-6 items (the usual case: everyone ranked all)."""
    n = draw(st.integers(min_items, max_items))
    items = [f"r{i}" for i in range(n)]
    count = draw(st.integers(min_rankings, max_rankings))
    return [draw(st.permutations(items)) for _ in range(count)]


# Partial data: rankings over a subset of items, any length, possibly empty.
partial_rankings = st.lists(
    st.lists(st.sampled_from("abcdef"), unique=True, max_size=6), max_size=6
)


def seen(rankings):
    return {item for ranking in rankings for item in ranking}


def has_no_exact_ties(rankings):
    """Every pair has a majority and no two pairs have the same margin of victory."""
    wins = pairwise_wins(rankings)
    margins = [
        abs(wins.get((a, b), 0) - wins.get((b, a), 0))
        for a, b in combinations(sorted(seen(rankings)), 2)
    ]
    return 0 not in margins and len(set(margins)) == len(margins)


@st.composite
def rankings_without_exact_ties(draw):
    """Random full rankings plus pairwise ballots that give every pair a distinct margin.

    Pair k (of P) gets k * (2r + 1) ballots for a random winner, which outweighs the r full
    rankings' effect on it (at most r either way), so margins land in disjoint ranges.
    Majorities may still form cycles, so cycle-breaking is exercised too.
    """
    full = draw(full_rankings(min_items=3, max_items=4, max_rankings=4))
    items = sorted(full[0])
    pairs = list(combinations(items, 2))
    weights = draw(st.permutations(range(1, len(pairs) + 1)))
    ballots = list(full)
    for (a, b), k in zip(pairs, weights, strict=True):
        ballot = [a, b] if draw(st.booleans()) else [b, a]
        ballots += [ballot] * (k * (2 * len(full) + 1))
    return ballots


# ---------------------------------------------------------------------------------------
# pairwise_wins


def test_pairwise_wins_count_the_rankings_that_put_a_above_b():
    wins = pairwise_wins([["a", "b", "c"], ["b", "a", "c"], ["a", "c", "b"]])

    assert wins == {
        ("a", "b"): 2,
        ("b", "a"): 1,
        ("a", "c"): 3,
        ("b", "c"): 2,
        ("c", "b"): 1,
    }


def test_a_ranking_says_nothing_about_items_it_omits():
    wins = pairwise_wins([["a", "b", "c"], ["c", "a"]])

    assert wins == {("a", "b"): 1, ("a", "c"): 1, ("b", "c"): 1, ("c", "a"): 1}


def test_a_repeated_item_counts_at_its_first_position():
    assert pairwise_wins([["a", "b", "a"]]) == {("a", "b"): 1}


# ---------------------------------------------------------------------------------------
# ranked_pairs


def test_unanimous_rankings_give_that_order_with_full_agreement():
    rankings = [["a", "b", "c", "d"]] * 3

    result = aggregate(rankings)

    assert result.order == ["a", "b", "c", "d"]
    assert result.agreement == 1.0
    shares = [result.strengths[item] for item in result.order]
    assert shares == sorted(shares, reverse=True)
    assert len(set(shares)) == len(shares)


def test_ranked_pairs_elects_nashville_in_the_tennessee_capital_example():
    memphis, nashville, chattanooga, knoxville = (uuid.uuid4() for _ in range(4))
    rankings = (
        [[memphis, nashville, chattanooga, knoxville]] * 42
        + [[nashville, chattanooga, knoxville, memphis]] * 26
        + [[chattanooga, knoxville, nashville, memphis]] * 15
        + [[knoxville, chattanooga, nashville, memphis]] * 17
    )

    assert ranked_pairs(rankings) == [nashville, chattanooga, knoxville, memphis]


def test_a_cycle_of_majorities_is_broken_at_its_weakest_pair():
    # a>b by 3, b>c by 5, c>a by 1: lock b>c, then a>b, and skip c>a.
    rankings = [["a", "b", "c"]] * 4 + [["b", "c", "a"]] * 3 + [["c", "a", "b"]] * 2

    assert ranked_pairs(rankings) == ["a", "b", "c"]


def test_equal_margins_are_locked_by_more_winning_votes_first():
    # a>b by 4 is locked first. c>a (4-2) and b>c (2-0) both win by 2; c>a has more votes,
    # so it is locked next and b>c, which would close the cycle a>b>c>a, is skipped.
    # (Locking b>c first, as first appearance alone would, gives a, b, c instead.)
    rankings = [["a", "b"]] * 4 + [["c", "a"]] * 4 + [["a", "c"]] * 2 + [["b", "c"]] * 2

    assert ranked_pairs(rankings) == ["c", "a", "b"]


def test_evenly_split_items_keep_their_first_appearance_order():
    assert ranked_pairs([["a", "b"], ["b", "a"]]) == ["a", "b"]
    assert ranked_pairs([["b", "a"], ["a", "b"]]) == ["b", "a"]


def test_partial_rankings_are_chained_through_their_shared_items():
    assert ranked_pairs([["b", "c"], ["a", "b"]]) == ["a", "b", "c"]


def test_an_item_nobody_compared_is_placed_by_first_appearance():
    assert ranked_pairs([["x"], ["b", "a"]]) == ["x", "b", "a"]


def test_empty_input_gives_an_empty_consensus():
    assert aggregate([]) == Consensus(order=[], strengths={}, agreement=1.0)
    assert aggregate([[], []]) == Consensus(order=[], strengths={}, agreement=1.0)
    assert pairwise_wins([]) == {}


@FAST
@given(full_rankings(), st.data())
def test_a_condorcet_winner_is_always_first(rankings, data):
    items = sorted(rankings[0])
    winner = data.draw(st.sampled_from(items))
    # More rankings with the winner on top than there were before: it wins every pair.
    for _ in range(len(rankings) + 1):
        rest = data.draw(st.permutations([item for item in items if item != winner]))
        rankings = [*rankings, [winner, *rest]]

    assert ranked_pairs(rankings)[0] == winner


@FAST
@given(partial_rankings)
def test_the_order_is_a_permutation_of_every_item_seen(rankings):
    order = ranked_pairs(rankings)

    assert sorted(order) == sorted(seen(rankings))


@FAST
@given(st.permutations(["a", "b", "c", "d", "e"]), st.integers(1, 4))
def test_reversing_unanimous_rankings_reverses_the_order(ranking, copies):
    rankings = [ranking] * copies

    forward = ranked_pairs(rankings)
    backward = ranked_pairs([list(reversed(r)) for r in rankings])

    assert forward == list(ranking)
    assert backward == list(reversed(forward))


@FAST
@given(rankings_without_exact_ties(), st.randoms())
def test_the_order_of_the_rankings_list_does_not_matter_without_exact_ties(rankings, rnd):
    assert has_no_exact_ties(rankings)
    shuffled = list(rankings)
    rnd.shuffle(shuffled)

    assert ranked_pairs(shuffled) == ranked_pairs(rankings)
    assert kendalls_w(shuffled) == pytest.approx(kendalls_w(rankings))
    a, b = bradley_terry(rankings), bradley_terry(shuffled)
    assert a.keys() == b.keys()
    assert all(math.isclose(a[k], b[k], abs_tol=1e-7) for k in a)


@FAST
@given(partial_rankings)
def test_the_same_input_always_gives_the_same_consensus(rankings):
    assert aggregate(rankings) == aggregate([list(r) for r in rankings])


# ---------------------------------------------------------------------------------------
# bradley_terry


@FAST
@given(partial_rankings)
def test_strengths_are_positive_and_sum_to_one(rankings):
    strengths = bradley_terry(rankings)

    assert strengths.keys() == seen(rankings)
    assert all(share > 0 for share in strengths.values())
    if strengths:
        assert math.fsum(strengths.values()) == pytest.approx(1.0)


def test_an_unbeaten_reply_gets_a_finite_strength():
    strengths = bradley_terry([["a", "b"]] * 50)

    assert 0.5 < strengths["a"] < 1.0
    assert strengths["a"] + strengths["b"] == pytest.approx(1.0)


def test_strengths_match_the_closed_form_for_two_items():
    # With a 0.5 prior each way, the fit is s_a / s_b = (3 + 0.5) / (1 + 0.5).
    strengths = bradley_terry([["a", "b"]] * 3 + [["b", "a"]])

    assert strengths["a"] == pytest.approx(3.5 / 5, abs=1e-6)
    assert strengths["b"] == pytest.approx(1.5 / 5, abs=1e-6)


def test_strengths_satisfy_the_maximum_likelihood_equations():
    # At the optimum each item's expected wins, sum_j n_ij s_i / (s_i + s_j), equal its
    # observed wins; both count the 0.5 virtual win each way.
    rankings = [["a", "b", "c", "d"], ["b", "a", "d", "c"], ["a", "c", "b", "d"]]
    strengths = bradley_terry(rankings)
    wins = pairwise_wins(rankings)

    for i in strengths:
        others = [j for j in strengths if j != i]
        observed = sum(wins.get((i, j), 0) + 0.5 for j in others)
        expected = sum(
            (len(rankings) + 1) * strengths[i] / (strengths[i] + strengths[j]) for j in others
        )
        assert expected == pytest.approx(observed, abs=1e-6)


def test_never_compared_groups_share_strength_by_size():
    strengths = bradley_terry([["a", "b"], ["x"]])

    assert strengths["x"] == pytest.approx(1 / 3)
    assert strengths["a"] + strengths["b"] == pytest.approx(2 / 3)


# ---------------------------------------------------------------------------------------
# kendall_tau and kendalls_w


def test_tau_is_one_for_identical_and_minus_one_for_reversed_orders():
    assert kendall_tau("abcd", "abcd") == 1.0
    assert kendall_tau("abcd", "dcba") == -1.0


def test_tau_looks_only_at_common_items():
    assert kendall_tau(["a", "x", "b", "c"], ["a", "b", "y", "c"]) == 1.0
    assert kendall_tau(["a", "b"], ["b", "c"]) == 0.0
    assert kendall_tau([], []) == 0.0


@FAST
@given(partial_rankings.filter(lambda r: len(r) >= 2))
def test_tau_is_symmetric_and_between_minus_one_and_one(rankings):
    a, b = rankings[0], rankings[1]

    assert kendall_tau(a, b) == kendall_tau(b, a)
    assert -1.0 <= kendall_tau(a, b) <= 1.0


@pytest.mark.parametrize("n", [2, 3, 5, 8])
def test_w_of_two_exactly_opposite_rankings_is_zero(n):
    ranking = list(range(n))

    assert kendalls_w([ranking, ranking[::-1]]) == 0.0


def test_w_is_one_when_there_is_nothing_to_disagree_about():
    assert kendalls_w([]) == 1.0
    assert kendalls_w([["a", "b", "c"]]) == 1.0
    assert kendalls_w([["a", "b"], ["c", "a"]]) == 1.0  # only "a" is common


def test_w_ignores_items_missing_from_some_ranking():
    assert kendalls_w([["a", "x", "b", "c"], ["a", "b", "c"]]) == 1.0


def test_w_matches_a_hand_computed_value():
    # Rank sums 3, 3, 6 around a mean of 4 for m=2, n=3: S = 6, W = 12 * 6 / (4 * 24).
    assert kendalls_w([["a", "b", "c"], ["b", "a", "c"]]) == pytest.approx(0.75)


@FAST
@given(partial_rankings)
def test_w_is_between_zero_and_one(rankings):
    assert 0.0 <= kendalls_w(rankings) <= 1.0


def test_volunteer_agreement_is_tau_against_the_consensus():
    consensus = aggregate([["a", "b", "c"], ["a", "b", "c"], ["c", "b", "a"]])

    assert consensus.order == ["a", "b", "c"]
    assert volunteer_agreement(["a", "b", "c"], consensus.order) == 1.0
    assert volunteer_agreement(["c", "b", "a"], consensus.order) == -1.0
    assert volunteer_agreement(["b", "a", "c"], consensus.order) == pytest.approx(1 / 3)
