"""Moderator actions: edits, deletions, bans, purges, tree settings, and their audit log."""

from __future__ import annotations

import random

import pytest
from django.db import DatabaseError, connection, transaction

from backend.accounts.models import Role, User
from backend.accounts.services import create_user
from backend.core.errors import Conflict, InvalidInput, NotAllowed, NoTaskAvailable, UserBanned
from backend.moderation import services
from backend.moderation.models import AuditEntry, Report
from backend.tasks import services as tasks
from backend.tasks.models import Task, TaskStatus
from backend.trees.invariants import check_invariants
from backend.trees.models import Message, MessageRevision, MessageTree, Ranking, Review
from backend.trees.rules import State
from tests.frontend.scenario import QUICK_TREES, build_open_work

pytestmark = pytest.mark.django_db


@pytest.fixture
def work(settings):  # type: ignore[no-untyped-def]
    settings.CHORUS_TREE = dict(QUICK_TREES)
    return build_open_work("en")


@pytest.fixture
def mod(db) -> User:  # type: ignore[no-untyped-def]
    return create_user(username="mod", role=Role.MODERATOR, accepted_terms_version=1)


@pytest.fixture
def admin(db) -> User:  # type: ignore[no-untyped-def]
    return create_user(username="root", role=Role.ADMIN, accepted_terms_version=1)


def no_violations() -> None:
    assert {name: rows for name, rows in check_invariants().items() if rows} == {}


def answer_of(work) -> Message:  # type: ignore[no-untyped-def]
    """bea's accepted assistant reply in the growing tree (it has a user reply below)."""
    return Message.objects.get(tree=work.growing_root.tree, author=work.users["bea"])


def test_an_edit_keeps_the_old_text_and_sends_the_message_back_to_review(work, mod) -> None:  # type: ignore[no-untyped-def]
    answer = answer_of(work)
    assert answer.review_result is True
    old = answer.text
    services.edit_message(
        moderator=mod, message_id=answer.id, text="Water it when dry.", reason="typo"
    )
    answer.refresh_from_db()
    assert answer.text == "Water it when dry."
    revision = MessageRevision.objects.get(message=answer)
    assert (revision.previous_text, revision.editor, revision.reason) == (old, mod, "typo")
    # The review that accepted it is stale; the message waits for new reviews.
    assert Review.objects.get(message=answer).is_stale
    assert (answer.review_count, answer.review_result) == (0, None)
    assert answer.review_reopened_at is not None
    outsider = create_user(username="dora", accepted_terms_version=1)
    task = tasks.request_task(user=outsider, task_type="label_assistant_reply", lang="en")
    slots = {task.slot_id}
    if task.slot_id != answer.id:  # cem's reply waits for review too; take the next one
        slots.add(
            tasks.request_task(user=outsider, task_type="label_assistant_reply", lang="en").slot_id
        )
    assert answer.id in slots
    entry = AuditEntry.objects.get(action="message_edit")
    assert (entry.actor_id, entry.target_id, entry.reason) == (mod.pk, str(answer.id), "typo")
    assert entry.details["previous_text"] == old
    assert entry.details["stale_reviews"] == 1
    no_violations()


def test_an_edit_makes_the_rankings_that_compared_the_message_stale(work, mod) -> None:  # type: ignore[no-untyped-def]
    ranker = create_user(username="ranker", accepted_terms_version=1)
    task = tasks.request_task(user=ranker, task_type="rank_assistant_replies", lang="en")
    tasks.submit_task(
        task_id=task.id, user=ranker, key=None, payload={"ranking": list(task.offered_ids)}
    )
    reply = Message.objects.get(pk=task.offered_ids[0])
    services.edit_message(
        moderator=mod, message_id=reply.id, text="Pack water.", reason="spam link"
    )
    ranking = Ranking.objects.get(user=ranker)
    assert ranking.is_stale
    tree = MessageTree.objects.get(pk=reply.tree_id)
    assert tree.state == State.RANKING
    assert Message.objects.get(pk=task.slot_id).ranking_count == 0
    no_violations()


def test_edits_refuse_bad_input_and_non_moderators(work, mod) -> None:  # type: ignore[no-untyped-def]
    answer = answer_of(work)
    with pytest.raises(InvalidInput):
        services.edit_message(moderator=mod, message_id=answer.id, text="new", reason=" ")
    with pytest.raises(InvalidInput):
        services.edit_message(moderator=mod, message_id=answer.id, text="", reason="why")
    with pytest.raises(InvalidInput):
        services.edit_message(moderator=mod, message_id=answer.id, text=answer.text, reason="x")
    with pytest.raises(NotAllowed):
        services.edit_message(
            moderator=work.users["ann"], message_id=answer.id, text="mine now", reason="x"
        )
    answer.refresh_from_db()
    assert answer.review_result is True
    assert not AuditEntry.objects.exists()


def test_deleting_takes_the_replies_below_and_undeleting_brings_them_back(work, mod) -> None:  # type: ignore[no-untyped-def]
    answer = answer_of(work)
    root = work.growing_root
    below = Message.objects.get(parent=answer)
    root.refresh_from_db()
    children_before = root.children_count
    services.delete_message(moderator=mod, message_id=answer.id, reason="wrong advice")
    assert set(Message.objects.filter(deleted=True).values_list("id", flat=True)) == {
        answer.id,
        below.id,
    }
    root.refresh_from_db()
    assert root.children_count == children_before - 1
    no_violations()
    services.undelete_message(moderator=mod, message_id=answer.id, reason="was right")
    assert not Message.objects.filter(deleted=True).exists()
    root.refresh_from_db()
    assert root.children_count == children_before
    no_violations()
    assert list(AuditEntry.objects.order_by("id").values_list("action", flat=True)) == [
        "message_delete",
        "message_undelete",
    ]
    with pytest.raises(Conflict):
        services.undelete_message(moderator=mod, message_id=answer.id, reason="again")


def test_deleting_a_first_prompt_halts_its_tree(work, mod) -> None:  # type: ignore[no-untyped-def]
    services.delete_message(moderator=mod, message_id=work.growing_root.id, reason="abuse")
    tree = MessageTree.objects.get(pk=work.growing_root.tree_id)
    assert tree.state == State.HALTED_BY_MODERATOR
    assert Message.objects.filter(tree=tree, deleted=False).count() == 0
    no_violations()


def test_a_restore_is_refused_when_the_place_was_taken(work, mod, settings) -> None:  # type: ignore[no-untyped-def]
    answer = answer_of(work)
    services.delete_message(moderator=mod, message_id=answer.id, reason="x")
    MessageTree.objects.filter(pk=answer.tree_id).update(max_children_prompter=1)
    with pytest.raises(Conflict, match="all the replies"):
        services.undelete_message(moderator=mod, message_id=answer.id, reason="y")
    assert Message.objects.get(pk=answer.id).deleted


def test_a_banned_volunteer_loses_open_tasks_and_gets_no_new_ones(work, mod, admin) -> None:  # type: ignore[no-untyped-def]
    ann = work.users["ann"]
    open_task = tasks.request_task(user=ann, task_type="initial_prompt", lang="en")
    services.ban_user(moderator=mod, user_id=ann.pk, reason="spam")
    assert Task.objects.get(pk=open_task.id).status == TaskStatus.SKIPPED
    ann.refresh_from_db()
    with pytest.raises(UserBanned):
        tasks.request_task(user=ann, task_type="random", lang="en")
    with pytest.raises(Conflict):
        services.ban_user(moderator=mod, user_id=ann.pk, reason="again")
    services.unban_user(moderator=mod, user_id=ann.pk, reason="appeal granted")
    ann.refresh_from_db()
    assert tasks.request_task(user=ann, task_type="initial_prompt", lang="en")
    # Moderators cannot ban themselves or each other; admins can ban moderators.
    other = create_user(username="mod2", role=Role.MODERATOR)
    with pytest.raises(NotAllowed):
        services.ban_user(moderator=mod, user_id=mod.pk, reason="me")
    with pytest.raises(NotAllowed):
        services.ban_user(moderator=mod, user_id=other.pk, reason="rival")
    services.ban_user(moderator=admin, user_id=other.pk, reason="abuse of power")


def test_tree_settings_change_within_bounds(work, mod) -> None:  # type: ignore[no-untyped-def]
    tree_id = work.growing_root.tree_id
    tree = services.change_tree_settings(
        moderator=mod, tree_id=tree_id, changes={"goal_size": 4}, reason="enough"
    )
    # The tree is at its new goal: no more replies are asked for.
    assert tree.goal_size == 4
    newcomer = create_user(username="newcomer", accepted_terms_version=1)
    with pytest.raises(NoTaskAvailable):
        tasks.request_task(user=newcomer, task_type="assistant_reply", lang="en")
    entry = AuditEntry.objects.get(action="tree_settings")
    assert entry.details == {"before": {"goal_size": 50}, "after": {"goal_size": 4}}
    for changes in ({"goal_size": 0}, {"goal_size": 2.5}, {"colour": 1}, {}, {"goal_size": "9"}):
        with pytest.raises(InvalidInput):
            services.change_tree_settings(
                moderator=mod, tree_id=tree_id, changes=changes, reason="x"
            )
    no_violations()


def test_the_audit_log_refuses_updates_and_deletes_in_the_database(work, mod) -> None:  # type: ignore[no-untyped-def]
    services.halt_tree(moderator=mod, tree_id=work.growing_root.tree_id, reason="check")
    entry = AuditEntry.objects.get()
    for statement in (
        "UPDATE moderation_auditentry SET reason = 'nothing happened'",
        "DELETE FROM moderation_auditentry",
    ):
        with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
            connection.cursor().execute(statement)
    with pytest.raises(DatabaseError), transaction.atomic():
        entry.delete()
    assert AuditEntry.objects.get().reason == "check"


def test_reports_are_resolved_once(work, mod) -> None:  # type: ignore[no-untyped-def]
    answer = answer_of(work)
    services.report_message(message=answer, reporter=work.users["cem"], reason="incorrect")
    assert services.resolve_reports(moderator=mod, message_id=answer.id, note="fine") == 1
    assert Report.objects.get().resolved_by == mod
    with pytest.raises(Conflict):
        services.resolve_reports(moderator=mod, message_id=answer.id)


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_purging_a_troll_removes_all_they_did_and_keeps_every_tree_consistent(
    volunteer, small_trees, admin
) -> None:  # type: ignore[no-untyped-def]
    from tests.backend.test_crowd import run_crowd

    small_trees.update(max_depth=3, goal_tree_size=6, max_prompts_in_review=3)
    rng = random.Random(7)
    troll = volunteer(troll=True)
    crowd = [volunteer() for _ in range(6)] + [troll]
    run_crowd(crowd, rng, rounds=40, until_exported=1)
    assert Review.objects.filter(user=troll.user).exists()
    services.report_message(
        message=Message.objects.filter(author=crowd[0].user).first(),
        reporter=troll.user,
        reason="spam",
    )
    summary = services.purge_user(moderator=admin, user_id=troll.user.pk, reason="troll")
    assert summary["reviews"] > 0
    assert not Message.objects.filter(author=troll.user, deleted=False).exists()
    assert not Review.objects.filter(user=troll.user).exists()
    assert not Ranking.objects.filter(user=troll.user).exists()
    assert not Report.objects.filter(reporter=troll.user).exists()
    assert User.objects.get(pk=troll.user.pk).is_banned
    no_violations()
    # The crowd carries on with the recounted trees.
    run_crowd(crowd[:-1], rng, rounds=10, until_exported=99)
    no_violations()
