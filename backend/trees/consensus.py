"""Ranking consensus among sibling replies, as pure code: no Django, standard library only.

Each volunteer ranks a set of sibling replies, best first. From those orders we compute
one consensus order (Tideman's ranked pairs, which always puts a Condorcet winner first
and breaks cycles at their weakest pair), a strength per reply (Bradley-Terry, a share
that says how much better, not only which is better) and how much the volunteers agree
(Kendall's W for the set, Kendall's tau for one volunteer against the consensus).

Inputs are robust to partial data: a ranking may leave items out (it then says nothing
about pairs involving them), items may appear in only some rankings, and a repeated item
counts at its first position. Wherever a tie must be broken we use the order in which
items first appear across the rankings, so every result is deterministic.
"""

from __future__ import annotations

import heapq
from collections import defaultdict
from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from itertools import combinations
from typing import Generic, TypeVar

T = TypeVar("T", bound=Hashable)

# Virtual wins added each way between every pair of co-ranked items before fitting
# Bradley-Terry: without them an item that never loses would have infinite strength.
PRIOR_WINS = 0.5


def _dedupe(ranking: Sequence[T]) -> list[T]:
    """The ranking with repeats dropped: a duplicated id counts where it first appears."""
    return list(dict.fromkeys(ranking))


def _first_appearance(rankings: Sequence[Sequence[T]]) -> dict[T, int]:
    """Every item seen, numbered in order of first appearance: our stable tie-breaker."""
    index: dict[T, int] = {}
    for ranking in rankings:
        for item in ranking:
            index.setdefault(item, len(index))
    return index


def pairwise_wins(rankings: Sequence[Sequence[T]]) -> dict[tuple[T, T], int]:
    """How many rankings put a above b, keyed (a, b); pairs never so ordered are absent.

    This is the whole of what ranked pairs and Bradley-Terry look at: each ranking is
    read as the set of pairwise preferences it states, which is what makes partial
    rankings safe (an omitted item takes part in no pair).
    """
    wins: dict[tuple[T, T], int] = defaultdict(int)
    for ranking in rankings:
        for better, worse in combinations(_dedupe(ranking), 2):
            wins[better, worse] += 1
    return dict(wins)


# ---------------------------------------------------------------------------------------
# Ranked pairs


def _majorities(wins: dict[tuple[T, T], int], index: dict[T, int]) -> list[tuple[T, T]]:
    """(winner, loser) for every pair with a majority, strongest first.

    Strength is the margin of victory, then the winning-vote count (a 6-3 win is firmer
    than 3-0); exact ties fall back to first appearance so the lock order is stable.
    Pairs that split evenly have no winner and are not locked at all.
    """
    keyed = []
    for (a, b), a_over_b in wins.items():
        margin = a_over_b - wins.get((b, a), 0)
        if margin > 0:
            keyed.append(((-margin, -a_over_b, index[a], index[b]), (a, b)))
    keyed.sort(key=lambda entry: entry[0])
    return [pair for _, pair in keyed]


def _reaches(graph: dict[T, list[T]], start: T, goal: T) -> bool:
    """Whether the locked graph has a path start -> goal."""
    seen, frontier = {start}, [start]
    while frontier:
        node = frontier.pop()
        if node == goal:
            return True
        for nxt in graph[node]:
            if nxt not in seen:
                seen.add(nxt)
                frontier.append(nxt)
    return False


def _topological_order(graph: dict[T, list[T]], index: dict[T, int]) -> list[T]:
    """Kahn's algorithm, always taking the earliest-seen item among those now unbeaten.

    Items the locked graph says nothing about (no pairs, or only tied pairs) thus keep
    their first-appearance order relative to one another.
    """
    indegree = dict.fromkeys(index, 0)
    for targets in graph.values():
        for target in targets:
            indegree[target] += 1
    ready = [(position, item) for item, position in index.items() if indegree[item] == 0]
    heapq.heapify(ready)
    order: list[T] = []
    while ready:
        _, item = heapq.heappop(ready)
        order.append(item)
        for target in graph[item]:
            indegree[target] -= 1
            if indegree[target] == 0:
                heapq.heappush(ready, (index[target], target))
    return order


def ranked_pairs(rankings: Sequence[Sequence[T]]) -> list[T]:
    """Tideman's ranked-pairs consensus order over every item seen, best first.

    Chosen over a Borda count because it is Condorcet-consistent (a reply preferred to
    every other by a majority always comes first) and a cycle of majorities is broken at
    its weakest link rather than by averaging. Majorities are locked strongest first,
    skipping any that would contradict (form a cycle with) those already locked; the
    result is a topological order of the locked graph.
    """
    index = _first_appearance(rankings)
    graph: dict[T, list[T]] = {item: [] for item in index}
    for winner, loser in _majorities(pairwise_wins(rankings), index):
        if not _reaches(graph, loser, winner):
            graph[winner].append(loser)
    return _topological_order(graph, index)


# ---------------------------------------------------------------------------------------
# Bradley-Terry


def _comparisons(
    rankings: Sequence[Sequence[T]],
) -> tuple[dict[T, float], dict[T, dict[T, float]]]:
    """Total wins per item and games per pair, both including the prior's virtual wins."""
    total_wins: dict[T, float] = dict.fromkeys(_first_appearance(rankings), 0.0)
    games: dict[T, dict[T, float]] = {item: {} for item in total_wins}
    for (a, b), count in pairwise_wins(rankings).items():
        total_wins[a] += count
        games[a][b] = games[a].get(b, 0.0) + count
        games[b][a] = games[b].get(a, 0.0) + count
    for a, opponents in games.items():
        for b in opponents:
            total_wins[a] += PRIOR_WINS
            opponents[b] += 2 * PRIOR_WINS
    return total_wins, games


def _components(games: dict[T, dict[T, float]]) -> list[list[T]]:
    """Groups of items linked, directly or through others, by at least one comparison."""
    seen: set[T] = set()
    groups: list[list[T]] = []
    for start in games:
        if start in seen:
            continue
        seen.add(start)
        group, frontier = [start], [start]
        while frontier:
            for other in games[frontier.pop()]:
                if other not in seen:
                    seen.add(other)
                    group.append(other)
                    frontier.append(other)
        groups.append(group)
    return groups


def _mm_update(
    strengths: dict[T, float], total_wins: dict[T, float], games: dict[T, dict[T, float]]
) -> dict[T, float]:
    """One MM step: s_i <- W_i / sum_j n_ij / (s_i + s_j), unscaled.

    Hunter's minorise-maximise update raises the likelihood every step and, unlike
    Newton's method, needs no matrix algebra. An item with no comparisons keeps its value.
    """
    updated = {}
    for item, opponents in games.items():
        if not opponents:
            updated[item] = strengths[item]
            continue
        rate = sum(n / (strengths[item] + strengths[other]) for other, n in opponents.items())
        updated[item] = total_wins[item] / rate
    return updated


def bradley_terry(
    rankings: Sequence[Sequence[T]], *, iterations: int = 200, tolerance: float = 1e-9
) -> dict[T, float]:
    """Bradley-Terry strengths, normalised to sum to 1, fitted by MM (Hunter 2004).

    A strength is the chance-like share with which a reply beats its siblings:
    P(i beats j) = s_i / (s_i + s_j). PRIOR_WINS virtual wins each way between every
    co-ranked pair keep unbeaten (and never-winning) items finite and positive. Items
    that were never compared, even indirectly, cannot be put on one scale; each such
    group gets a share of the total proportional to its size, so a lone item gets the
    average strength. Iteration stops when no strength moves by more than `tolerance`,
    or after `iterations` rounds. MM converges linearly: a sibling set with a few rankings
    converges in well under 200 rounds, but dozens of unanimous rankings (very lopsided
    strengths) can stop short of the optimum by up to about 1e-2 in a share.
    """
    total_wins, games = _comparisons(rankings)
    groups = _components(games)
    if not total_wins:
        return {}
    strengths = dict.fromkeys(total_wins, 1.0 / len(total_wins))
    for _ in range(iterations):
        updated = _mm_update(strengths, total_wins, games)
        for group in groups:
            scale = len(group) / len(updated) / sum(updated[item] for item in group)
            for item in group:
                updated[item] *= scale
        change = max(abs(updated[item] - strengths[item]) for item in updated)
        strengths = updated
        if change <= tolerance:
            break
    return strengths


# ---------------------------------------------------------------------------------------
# Agreement


def kendall_tau(a: Sequence[T], b: Sequence[T]) -> float:
    """Kendall's tau-b between two orders over the items they share, in [-1, 1].

    1 means the same order, -1 exactly reversed. An order has no tied positions, so
    tau-b here equals (concordant - discordant) / pairs. With fewer than two shared
    items there is no pair to compare and we return 0.0 (no evidence either way).
    """
    position_a = {item: i for i, item in enumerate(_dedupe(a))}
    position_b = {item: i for i, item in enumerate(_dedupe(b))}
    common = [item for item in position_a if item in position_b]
    if len(common) < 2:
        return 0.0
    score = 0
    for x, y in combinations(common, 2):
        product = (position_a[x] - position_a[y]) * (position_b[x] - position_b[y])
        score += 1 if product > 0 else -1
    pairs = len(common) * (len(common) - 1) // 2
    return score / pairs


def kendalls_w(rankings: Sequence[Sequence[T]]) -> float:
    """Kendall's coefficient of concordance W in [0, 1] over items every ranking contains.

    W is 1 when all rankings agree and 0 when their rank sums are all equal (e.g. two
    exactly opposite rankings). With fewer than two rankings or fewer than two common
    items there is nothing to disagree about, so we return 1.0: callers asking "is this
    set contested?" should not see a lone ranking as a quarrel. Items missing from some
    ranking are left out, since W needs every ranking to rank the same items.
    """
    orders = [_dedupe(ranking) for ranking in rankings]
    if len(orders) < 2:
        return 1.0
    common = set(orders[0]).intersection(*orders[1:])
    m, n = len(orders), len(common)
    if n < 2:
        return 1.0
    rank_sums: dict[T, int] = dict.fromkeys(common, 0)
    for order in orders:
        for rank, item in enumerate((x for x in order if x in common), start=1):
            rank_sums[item] += rank
    # W = 12 S / (m^2 (n^3 - n)) with S the squared deviations of the rank sums from their
    # mean m (n + 1) / 2; doubling each deviation keeps the arithmetic in exact integers.
    spread = sum((2 * total - m * (n + 1)) ** 2 for total in rank_sums.values())
    return 3 * spread / (m * m * (n**3 - n))


def volunteer_agreement(ranking: Sequence[T], consensus_order: Sequence[T]) -> float:
    """How well one volunteer agrees with the consensus: Kendall's tau, in [-1, 1]."""
    return kendall_tau(ranking, consensus_order)


# ---------------------------------------------------------------------------------------
# All together


@dataclass(frozen=True)
class Consensus(Generic[T]):
    """The outcome for one sibling set: what scoring stores."""

    order: list[T]
    """Every item seen, best first (ranked pairs)."""
    strengths: dict[T, float]
    """Bradley-Terry share per item; the shares sum to 1 (empty when there are no items)."""
    agreement: float
    """Kendall's W over the rankings, in [0, 1]."""


def aggregate(rankings: Sequence[Sequence[T]]) -> Consensus[T]:
    """Consensus order, strengths and agreement for one set of rankings."""
    return Consensus(
        order=ranked_pairs(rankings),
        strengths=bradley_terry(rankings),
        agreement=kendalls_w(rankings),
    )
