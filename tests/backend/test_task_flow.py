"""A tree grows from a first prompt to ready_for_export through the task API."""

from __future__ import annotations

import random

import pytest

from backend.trees.models import Message, MessageTree
from backend.trees.rules import State

pytestmark = pytest.mark.django_db(transaction=True)


def test_a_first_prompt_is_written_and_waits_for_review(volunteer, small_trees):
    alice = volunteer()
    response = alice.request_task("initial_prompt")
    assert response.status_code == 201, response.json()
    task = response.json()
    assert task["type"] == "initial_prompt"
    assert task["reply_role"] == "prompter"
    assert task["text_limits"] == {"min": 1, "max": 2000}

    done = alice.submit(task["id"], key="k1", text="  How do tides work?  ")
    assert done.status_code == 201, done.json()
    message = Message.objects.get(pk=done.json()["result_id"])
    assert message.text == "How do tides work?"
    assert message.tree.state == State.INITIAL_PROMPT_REVIEW
    assert message.author == alice.user


def test_one_tree_grows_from_prompt_to_export(volunteer, small_trees):
    rng = random.Random(7)
    crowd = [volunteer() for _ in range(6)]
    for _ in range(200):
        for person in crowd:
            person.do_one(rng)
        if MessageTree.objects.filter(state=State.READY_FOR_EXPORT).exists():
            break
    finished = MessageTree.objects.filter(state=State.READY_FOR_EXPORT).first()
    assert finished is not None, list(MessageTree.objects.values_list("state", flat=True))
    ranked = Message.objects.filter(tree=finished, rank__isnull=False)
    assert ranked.exists()
    assert all(m.consensus_strength is not None for m in ranked)
