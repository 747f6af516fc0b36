"""A crowd of volunteers, through the API, takes an empty platform to exported trees."""

from __future__ import annotations

import random
from collections import Counter

import pytest

from backend.tasks.models import Task, TaskStatus, TaskType
from backend.trees.invariants import check_invariants
from backend.trees.models import Message, MessageTree, StateChange
from backend.trees.rules import State

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]


def run_crowd(crowd, rng: random.Random, *, rounds: int, until_exported: int) -> Counter:
    """Each round every volunteer asks for a random task and mostly does it well."""
    outcomes: Counter = Counter()
    handed_out = 0
    for _ in range(rounds):
        for person in crowd:
            response = person.request_task()
            if response.status_code != 201:
                outcomes[response.json()["error"]["code"]] += 1
                continue
            task = response.json()
            handed_out += 1
            if handed_out % 15 == 0:
                skipped = person.post(f"/api/v1/tasks/{task['id']}/skip/", {"reason": "other"})
                assert skipped.status_code == 200, skipped.json()
                outcomes["skipped"] += 1
                continue
            # The troll's messages get rejected; a few careless reviews add noise.
            answer = person.answer(task, rng, good=rng.random() > 0.05)
            key = f"{person.user.pk}-{task['id']}"
            done = person.submit(task["id"], key=key, **answer)
            assert done.status_code == 201, (task["type"], done.json())
            if handed_out % 7 == 0:  # a client that retries after a lost response
                again = person.submit(task["id"], key=key, **answer)
                assert again.status_code == 200
                assert again.json()["result_id"] == done.json()["result_id"]
                outcomes["retried"] += 1
            outcomes[task["type"]] += 1
        if MessageTree.objects.filter(state=State.READY_FOR_EXPORT).count() >= until_exported:
            break
    return outcomes


def test_a_crowd_grows_trees_from_nothing_to_export_and_every_invariant_holds(
    volunteer, small_trees
):
    small_trees.update(max_depth=3, goal_tree_size=6, max_prompts_in_review=3)
    rng = random.Random(2024)
    troll = volunteer(troll=True)
    crowd = [volunteer() for _ in range(10)] + [troll]
    # The troll's first prompt is spam, so some tree must be rejected in review.
    spam = troll.request_task("initial_prompt").json()
    assert troll.submit(spam["id"], **troll.answer(spam, rng)).status_code == 201

    outcomes = run_crowd(crowd, rng, rounds=120, until_exported=3)

    exported = MessageTree.objects.filter(state=State.READY_FOR_EXPORT)
    assert exported.count() >= 3, dict(Counter(MessageTree.objects.values_list("state", flat=True)))
    for tree in exported:
        ranked = Message.objects.filter(tree=tree, rank__isnull=False)
        assert ranked.exists(), "an exported tree carries consensus ranks"
        assert all(0 <= m.consensus_strength <= 1 for m in ranked)
        parents = {m.parent_id for m in ranked}
        for parent_id in parents:
            ranks = sorted(ranked.filter(parent_id=parent_id).values_list("rank", flat=True))
            assert ranks == list(range(len(ranks))), "ranks are 0..n-1 within a sibling set"

    # Every task type was handed out and done through the API.
    for task_type in TaskType.values:
        if task_type == TaskType.RANK_PROMPTER_REPLIES:
            continue  # off by default (one user reply per assistant message, nothing to rank)
        assert outcomes[task_type] > 0, (task_type, outcomes)
    assert outcomes["skipped"] > 0
    assert outcomes["retried"] > 0

    # The states the trees went through, all by legal transitions (checked below).
    changes = StateChange.objects.values_list("source", "target")
    seen = {state for change in changes for state in change}
    assert {
        State.INITIAL_PROMPT_REVIEW,
        State.PROMPT_LOTTERY_WAITING,
        State.GROWING,
        State.RANKING,
        State.READY_FOR_SCORING,
        State.READY_FOR_EXPORT,
        State.ABORTED_LOW_GRADE,
    } <= seen

    assert check_invariants() == {}
    submitted = Task.objects.filter(status=TaskStatus.SUBMITTED)
    written = submitted.filter(type__in=["initial_prompt", "assistant_reply", "prompter_reply"])
    assert written.count() == Message.objects.count(), "one message per submitted write task"
