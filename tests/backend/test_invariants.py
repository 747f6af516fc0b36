"""The whole-database invariant check (backend.core.invariants, manage.py check_invariants):
silent on data the services built, and loud on each kind of damage a raw UPDATE plants."""

from __future__ import annotations

import random
import uuid
from collections.abc import Iterator
from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection
from django.test import override_settings

from backend.core.invariants import check_database
from tests.backend.conftest import SMALL_TREES, Volunteer

# The module's database takes a demo seed and a crowd's work to build (once for all tests).
pytestmark = [pytest.mark.django_db, pytest.mark.slow]


@pytest.fixture(scope="module")
def built_database(django_db_setup, django_db_blocker, tmp_path_factory) -> Iterator[None]:  # type: ignore[no-untyped-def]
    """The demo seed and a crowd's real task loops, skips, reactions and reports, committed
    once for the module (each test's own changes roll back); emptied at the end."""
    with django_db_blocker.unblock(), pytest.MonkeyPatch.context() as patch:
        patch.setenv("CHORUS_VAR_DIR", str(tmp_path_factory.mktemp("var")))
        try:
            call_command("seed_demo", stdout=StringIO())
            with override_settings(CHORUS_TREE=dict(SMALL_TREES, max_active_trees=6)):
                _run_crowd(random.Random(7))
            yield
        finally:  # also when building failed: committed rows would break later modules
            call_command("flush", interactive=False, verbosity=0)


def _run_crowd(rng: random.Random) -> None:
    crowd = [Volunteer() for _ in range(5)]
    for round_ in range(16):
        for n, person in enumerate(crowd):
            response = person.request_task()
            if response.status_code != 201:
                continue
            task = response.json()
            if (round_ + n) % 11 == 0:
                person.post(f"/api/v1/tasks/{task['id']}/skip/", {"reason": "other"})
                continue
            if round_ == 15:  # some leases stay open, as on a live platform
                continue
            key = uuid.uuid4().hex
            answer = person.answer(task, rng)
            assert person.submit(task["id"], key=key, **answer).status_code == 201
            if n == 0:  # a retry after a lost response
                assert person.submit(task["id"], key=key, **answer).status_code == 200
            if task["conversation"] and (round_ + n) % 5 == 0:
                message = task["conversation"][-1]["id"]
                person.post(f"/api/v1/messages/{message}/reactions/", {"emoji": "+1"})
                person.post(f"/api/v1/messages/{message}/reports/", {"reason": "incorrect"})

    _leave_a_review_lease_open(crowd, rng)


def _leave_a_review_lease_open(crowd: list[Volunteer], rng: random.Random) -> None:
    """Which types the last round leased is up to the lottery, and the lease checks plant
    their damage in a review lease: one is made for certain, the review of a new prompt in
    a language the crowd left alone, taken and kept open."""
    writer, reviewer = crowd[0], crowd[1]
    response = writer.request_task("initial_prompt", lang="de")
    assert response.status_code == 201, response.content
    task = response.json()
    answer = writer.answer(task, rng)
    assert writer.submit(task["id"], key=uuid.uuid4().hex, **answer).status_code == 201
    response = reviewer.request_task("label_initial_prompt", lang="de")
    assert response.status_code == 201, response.content


def _plant(sql: str) -> None:
    with connection.cursor() as cursor:
        cursor.execute(sql)
        assert cursor.rowcount >= 1, f"nothing to damage: {sql}"


def test_data_built_by_the_services_breaks_no_invariant(built_database) -> None:  # type: ignore[no-untyped-def]
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT (SELECT count(*) FROM tasks_task WHERE status = 'leased'),"
            " (SELECT count(*) FROM tasks_task WHERE status = 'skipped'),"
            " (SELECT count(*) FROM trees_reaction), (SELECT count(*) FROM community_pointaward),"
            " (SELECT count(DISTINCT state) FROM trees_messagetree)"
        )
        leased, skipped, reactions, awards, states = cursor.fetchone()
    # The checks had something to check.
    assert min(leased, skipped, reactions, awards) > 0
    assert states >= 8  # the demo has every state; the crowd moved some trees on
    assert check_database() == {}


def test_the_command_says_all_hold_on_consistent_data(built_database) -> None:  # type: ignore[no-untyped-def]
    out = StringIO()
    call_command("check_invariants", stdout=out)
    assert "invariants hold" in out.getvalue()


def test_the_command_prints_what_is_broken_and_fails(built_database) -> None:  # type: ignore[no-untyped-def]
    _plant(
        "UPDATE community_pointtotal SET points = points + 1"
        " WHERE id = (SELECT min(id) FROM community_pointtotal)"
    )
    out = StringIO()
    with pytest.raises(CommandError, match="1 invariant"):
        call_command("check_invariants", stdout=out)
    assert "BROKEN: totals equal the sums of the ledger" in out.getvalue()


def _one(table: str, where: str) -> str:
    return f"(SELECT id FROM {table} WHERE {where} ORDER BY id LIMIT 1)"


SUBMITTED_REPLY = _one("tasks_task", "status = 'submitted' AND type = 'assistant_reply'")
LEASED_LABEL = _one("tasks_task", "status = 'leased' AND type LIKE 'label_%'")
REPLY = _one("trees_message", "parent_id IS NOT NULL AND NOT deleted")
# Some checks hold for trees volunteers grew here only (not for imported ones).
IN_VOLUNTEER_TREE = "tree_id IN (SELECT id FROM trees_messagetree WHERE origin = 'volunteers')"

# (what is damaged, the SQL, the check that must report it)
PLANTS = [
    (
        "a cached reply count",
        "UPDATE trees_message SET children_count = children_count + 1"
        f" WHERE id = {_one('trees_message', 'children_count > 0')}",
        "children_count matches live replies",
    ),
    (
        "a cached review count",
        "UPDATE trees_message SET review_count = review_count + 1"
        f" WHERE id = {_one('trees_message', 'review_count > 0 AND ' + IN_VOLUNTEER_TREE)}",
        "review_count matches reviews (volunteer trees)",
    ),
    (
        "a cached ranking count",
        "UPDATE trees_message SET ranking_count = ranking_count + 1"
        f" WHERE id = {_one('trees_message', 'ranking_count > 0')}",
        "ranking_count matches rankings",
    ),
    (
        "a reply moved to another tree",
        "UPDATE trees_message SET tree_id = (SELECT id FROM trees_messagetree t"
        " WHERE t.id <> trees_message.tree_id LIMIT 1)"
        f" WHERE id = {_one('trees_message', 'parent_id IS NOT NULL AND children_count = 0')}",
        "roles alternate and the root is a prompt",
    ),
    (
        "a reply in its parent's role",
        f"UPDATE trees_message SET role = 'prompter' WHERE id = {_one('trees_message', 'role = $$assistant$$')}",  # noqa: E501
        "roles alternate and the root is a prompt",
    ),
    (
        "a second root",
        f"UPDATE trees_message SET parent_id = NULL, depth = 0 WHERE id = {REPLY}",
        "each tree has exactly one root",
    ),
    (
        "a tree back in review after its prompt was accepted",
        "UPDATE trees_messagetree SET state = 'initial_prompt_review'"
        f" WHERE id = {_one('trees_messagetree', 'state = $$growing$$ AND origin = $$volunteers$$')}",  # noqa: E501
        "a tree's state agrees with its root's verdict (volunteer trees)",
    ),
    (
        "a tree in ranking with all its rankings in",
        "UPDATE trees_messagetree SET state = 'ranking'"
        f" WHERE id = {_one('trees_messagetree', 'state = $$ready_for_export$$')}",
        "no tree waits for a transition its rules call for",
    ),
    (
        "a halted tree that forgot its state",
        "UPDATE trees_messagetree SET state_before_halt = ''"
        f" WHERE id = {_one('trees_messagetree', 'state = $$halted_by_moderator$$')}",
        "a halted tree remembers the state to return to",
    ),
    (
        "an illegal jump in a tree's history",
        "UPDATE trees_statechange SET target = 'ready_for_export'"
        f" WHERE id = {_one('trees_statechange', 'source = $$initial_prompt_review$$')}",
        "tree state histories are legal",
    ),
    (
        "a reaction count",
        "UPDATE trees_message SET emojis = '{\"+1\": 5}'"
        " WHERE id = (SELECT m.id FROM trees_message m JOIN trees_messagetree t ON t.id = m.tree_id"
        " WHERE t.origin = 'volunteers' AND m.emojis::text = '{}' ORDER BY m.id LIMIT 1)",
        "reaction counts match reactions (volunteer trees)",
    ),
    (
        "a lease on a deleted message",
        "UPDATE trees_message SET deleted = true"
        f" WHERE id = (SELECT slot_id FROM tasks_task WHERE id = {LEASED_LABEL})",
        "no live lease on a deleted message",
    ),
    (
        "a review task on a reply of the wrong role",
        "UPDATE tasks_task SET type = CASE type WHEN 'label_assistant_reply'"
        " THEN 'label_prompter_reply' ELSE 'label_assistant_reply' END"
        f" WHERE id = {_one('tasks_task', 'type IN ($$label_assistant_reply$$, $$label_prompter_reply$$)')}",  # noqa: E501
        "a task's slot is a message of its tree, of the kind its type works on",
    ),
    (
        "a task whose slot is in another tree",
        "UPDATE tasks_task SET tree_id = (SELECT id FROM trees_messagetree t"
        f" WHERE t.id <> tasks_task.tree_id LIMIT 1) WHERE id = {SUBMITTED_REPLY}",
        "a task's slot is a message of its tree, of the kind its type works on",
    ),
    (
        "a live review lease in a tree that moved on",
        "UPDATE trees_messagetree SET state = 'ranking'"
        f" WHERE id = (SELECT tree_id FROM tasks_task WHERE id = {LEASED_LABEL})",
        "a live lease only on work its tree still needs",
    ),
    (
        "a lease the expiry job forgot",
        f"UPDATE tasks_task SET expires_at = now() - interval '2 hours' WHERE id = {LEASED_LABEL}",
        "leased tasks past their time are expired",
    ),
    (
        "a result on a skipped task",
        "UPDATE tasks_task SET result_id = gen_random_uuid()"
        f" WHERE id = {_one('tasks_task', 'status = $$skipped$$')}",
        "only submitted tasks carry a result or a submission key",
    ),
    (
        "a finished task without its time",
        f"UPDATE tasks_task SET done_at = NULL WHERE id = {SUBMITTED_REPLY}",
        "a finished task has its time, an open one has not",
    ),
    (
        "a submission stored twice (a second review for one task)",
        "INSERT INTO trees_review (id, message_id, user_id, task_id, values, created_at, is_stale)"
        " SELECT gen_random_uuid(), message_id, user_id, task_id, values, created_at, true"
        f" FROM trees_review WHERE id = {_one('trees_review', 'task_id IS NOT NULL')}",
        "every review from a task is that task's one result",
    ),
    (
        "a submission stored twice (a second ranking for one task)",
        "INSERT INTO trees_ranking (id, parent_id, user_id, task_id, ordered_ids, not_rankable,"
        " created_at, is_stale) SELECT gen_random_uuid(), parent_id, user_id, task_id,"
        " ordered_ids, not_rankable, created_at, true"
        f" FROM trees_ranking WHERE id = {_one('trees_ranking', 'task_id IS NOT NULL')}",
        "every ranking from a task is that task's one result",
    ),
    (
        "two tasks pointing at one message",
        "UPDATE tasks_task SET result_id = (SELECT result_id FROM tasks_task k"
        " WHERE k.type = 'assistant_reply' AND k.status = 'submitted'"
        " AND k.id <> tasks_task.id LIMIT 1)"
        f" WHERE id = {SUBMITTED_REPLY}",
        "no result from two tasks",
    ),
    (
        "a message credited to someone other than its task's volunteer",
        "UPDATE trees_message SET author_id = (SELECT id FROM accounts_user u"
        " WHERE u.id <> trees_message.author_id LIMIT 1)"
        f" WHERE id = (SELECT result_id FROM tasks_task WHERE id = {SUBMITTED_REPLY})",
        "a written message is its task's: author, parent and language",
    ),
    (
        "a ranking that leaves a reply out",
        "UPDATE trees_ranking SET ordered_ids = ordered_ids[1:1]"
        f" WHERE id = {_one('trees_ranking', 'task_id IS NOT NULL AND NOT not_rankable')}",
        "a ranking orders exactly the replies its task offered",
    ),
    (
        "a leaderboard total",
        "UPDATE community_pointtotal SET tasks = tasks + 1"
        f" WHERE id = {_one('community_pointtotal', 'period = $$week$$')}",
        "totals equal the sums of the ledger",
    ),
    (
        "a task's award lost",
        f"DELETE FROM community_pointaward WHERE source_id = {SUBMITTED_REPLY}",
        "each submitted task earned its points once",
    ),
    (
        "an award for a task never done",
        "INSERT INTO community_pointaward (user_id, lang, kind, points, source_id, awarded_at)"
        " SELECT id, 'en', 'review', 1, gen_random_uuid(), now() FROM accounts_user"
        " WHERE NOT is_imported ORDER BY id LIMIT 1",
        "task points only for a task that was submitted",
    ),
    (
        "an accepted message's bonus lost",
        "DELETE FROM community_pointaward"
        f" WHERE id = {_one('community_pointaward', 'kind = $$accepted$$')}",
        "accepted messages earned their author's bonus, and only they",
    ),
]


@pytest.mark.parametrize(("sql", "check"), [p[1:] for p in PLANTS], ids=[p[0] for p in PLANTS])
def test_each_kind_of_damage_is_reported(built_database, sql: str, check: str) -> None:  # type: ignore[no-untyped-def]
    _plant(sql)
    report = check_database()
    assert check in report, sorted(report)
    assert report[check]
