"""The task loop's hot paths stay within their SQL budget (the issue's target: at most 8).

Statements are counted as the server runs them, BEGIN and COMMIT included. A submission is
counted up to its COMMIT: jobs it starts on commit run in the request only because tests run
Celery eagerly (with a broker they run on workers). A submission that moves its tree to a
new state writes that state and its history row, two statements more for each state it
passes, and a third where the language's capacity decides (the prompt lottery).
"""

from __future__ import annotations

import random
from collections import defaultdict

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from backend.trees.models import MessageTree, StateChange
from backend.trees.rules import State

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

BUDGET = 8
TRANSITION = 3


def _own_statements(captured: list[dict]) -> int:
    sqls = [q["sql"] for q in captured]
    return sqls.index("COMMIT") + 1 if "COMMIT" in sqls else len(sqls)


def test_requesting_and_submitting_each_task_type_stays_within_the_query_budget(
    volunteer, small_trees
):
    rng = random.Random(3)
    crowd = [volunteer() for _ in range(8)]
    worst: dict[str, int] = defaultdict(int)
    for _ in range(60):
        for person in crowd:
            with CaptureQueriesContext(connection) as handing_out:
                response = person.request_task()
            if response.status_code != 201:
                continue
            task = response.json()
            answer = person.answer(task, rng)
            changes = StateChange.objects.count()
            with CaptureQueriesContext(connection) as submitting:
                done = person.submit(task["id"], key=f"q-{task['id']}", **answer)
            assert done.status_code == 201
            moved = StateChange.objects.count() - changes
            name = f"request {task['type']}"
            worst[name] = max(worst[name], len(handing_out))
            name = f"submit {task['type']}" + (f" (tree moved {moved})" if moved else "")
            worst[name] = max(worst[name], _own_statements(submitting.captured_queries))
        if MessageTree.objects.filter(state=State.READY_FOR_EXPORT).exists():
            break
    assert MessageTree.objects.filter(state=State.READY_FOR_EXPORT).exists()
    print(dict(worst))
    over = {
        name: n
        for name, n in worst.items()
        if n
        > BUDGET + TRANSITION * int(name.rstrip(")").rsplit(" ", 1)[-1] if "moved" in name else 0)
    }
    assert not over, over
