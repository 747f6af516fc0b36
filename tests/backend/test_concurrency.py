"""Many volunteers at once, each thread on its own database connection, against few slots."""

from __future__ import annotations

import itertools
import random
import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.db import connection
from django.utils import timezone

from backend.tasks.models import Task, TaskStatus
from backend.trees.invariants import check_invariants
from backend.trees.models import Message, MessageTree, Review
from backend.trees.rules import State

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

THREADS = 24


def growing_tree(volunteer, settings, **limits) -> Message:
    """A prompt written and accepted through the API, its tree now growing."""
    settings.CHORUS_TREE = {**settings.CHORUS_TREE, **limits}
    author = volunteer()
    task = author.request_task("initial_prompt").json()
    root_id = author.submit(task["id"], text="How do bees find their way home?").json()
    for _ in range(settings.CHORUS_TREE["reviews_per_message"]):
        reviewer = volunteer()
        review = reviewer.request_task("label_initial_prompt").json()
        labels = {"spam": 0, "lang_mismatch": 0}
        assert reviewer.submit(review["id"], labels=labels).status_code == 201
    root = Message.objects.select_related("tree").get(pk=root_id["result_id"])
    assert root.tree.state == State.GROWING
    return root


def in_threads(people, work):
    """Run work(person) for every person at once (released together by a barrier)."""
    barrier = threading.Barrier(len(people))

    def run(person):
        try:
            barrier.wait()
            return work(person)
        finally:
            connection.close()  # each thread had its own connection

    with ThreadPoolExecutor(max_workers=len(people)) as pool:
        return list(pool.map(run, people))


def test_one_open_slot_asked_for_by_many_at_once_is_leased_to_exactly_one(volunteer, settings):
    root = growing_tree(volunteer, settings, max_children_prompter=1)
    crowd = [volunteer() for _ in range(THREADS)]

    codes = in_threads(crowd, lambda p: p.request_task("assistant_reply").status_code)

    assert Counter(codes) == {201: 1, 404: THREADS - 1}
    assert Task.objects.filter(slot=root, type="assistant_reply").count() == 1


def test_retried_submissions_racing_each_other_store_one_message(volunteer, settings):
    writer = volunteer()
    growing_tree(volunteer, settings)
    task = writer.request_task("assistant_reply").json()
    # The same client sends the same submission over several connections at once.
    copies = [writer] * 8

    def submit(person):
        response = person.submit(task["id"], key="retry-key", text="They use the sun.")
        return response.status_code, response.json().get("result_id")

    results = in_threads(copies, submit)

    assert sorted(code for code, _ in results) == [200] * 7 + [201]
    assert len({result for _, result in results}) == 1
    assert Message.objects.filter(text="They use the sun.").count() == 1


def test_a_crowd_working_at_once_never_double_leases_or_overshoots(volunteer, settings):
    goal = 7
    growing_tree(volunteer, settings, goal_tree_size=goal, max_depth=3, reviews_per_message=3)
    crowd = [volunteer() for _ in range(THREADS)]
    rng_seed = iter(range(THREADS))

    def work(person):
        rng = random.Random(next(rng_seed))
        done = Counter()
        misses = 0
        while misses < 6:
            response = person.request_task()
            if response.status_code != 201:
                misses += 1
                continue
            task = response.json()
            if task["type"] == "initial_prompt":  # stay on the one tree: give it back
                person.post(f"/api/v1/tasks/{task['id']}/skip/", {"reason": "other"})
                misses += 1
                continue
            answer = person.answer(task, rng)
            key = f"k-{task['id']}"
            first = person.submit(task["id"], key=key, **answer)
            assert first.status_code == 201, first.json()
            assert person.submit(task["id"], key=key, **answer).status_code == 200  # retry
            done[task["type"]] += 1
        return done

    totals = sum(in_threads(crowd, work), Counter())

    assert totals["assistant_reply"] > 0
    assert totals["label_assistant_reply"] > 0
    # No slot was ever leased to two volunteers at once: per slot and kind of work, each
    # lease began only after the previous one ended.
    leases: dict[tuple, list[Task]] = {}
    for task in Task.objects.exclude(slot=None).order_by("created_at"):
        leases.setdefault((task.slot_id, task.type), []).append(task)
    for history in leases.values():
        for before, after in itertools.pairwise(history):
            assert before.done_at is not None
            assert after.created_at >= before.done_at, (before.id, after.id)
    # No target was overshot.
    tree = MessageTree.objects.get()
    live = Message.objects.filter(tree=tree, deleted=False).exclude(review_result=False)
    assert live.count() <= goal
    for message in Message.objects.filter(tree=tree):
        assert Review.objects.filter(message=message).count() <= 3
        assert message.children_count <= (3 if message.role == "prompter" else 1)
    # Retries never duplicated anything.
    written = Task.objects.filter(
        status=TaskStatus.SUBMITTED, type__in=["assistant_reply", "prompter_reply"]
    )
    assert Message.objects.filter(tree=tree).count() == written.count() + 1  # + the root
    assert tree.state in (State.GROWING, State.RANKING, State.READY_FOR_EXPORT)
    assert not Task.objects.filter(status=TaskStatus.LEASED, expires_at__gt=timezone.now()).exclude(
        type="initial_prompt"
    )
    assert check_invariants() == {}
