"""Automatic moderation: red flags and skips hide a message (or halt its tree) once, for a
person to confirm or revert; personal data in a submitted text is flagged for review."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from backend.accounts.models import Role, User
from backend.accounts.services import create_user
from backend.moderation import automod
from backend.moderation import services as moderation
from backend.moderation.models import Action, AuditEntry, Report
from backend.tasks.models import Task, TaskStatus
from backend.trees import services as trees
from backend.trees.models import Message
from backend.trees.rules import State

pytestmark = pytest.mark.django_db


def person(name: str, role: str = Role.VOLUNTEER) -> User:
    return create_user(username=name, role=role, accepted_terms_version=1)


@pytest.fixture
def mod() -> User:
    return person("mod", Role.MODERATOR)


@pytest.fixture
def growing(settings):  # type: ignore[no-untyped-def]
    """A growing tree: a prompt, an accepted assistant reply and a user reply below it."""
    settings.CHORUS_TREE = {**settings.CHORUS_TREE, "reviews_per_message": 1}
    ann = person("ann")
    root = trees.create_tree(author=ann, text="How do I keep basil alive indoors?", lang="en")
    tree = trees.lock_tree(root.tree_id)
    Message.objects.filter(pk=root.pk).update(review_result=True, review_count=1)
    trees.set_state(tree, State.GROWING)
    root.refresh_from_db()
    reply = trees.add_reply(tree=tree, parent=root, author=person("bea"), text="Water it daily.")
    Message.objects.filter(pk=root.pk).update(accepted_children_count=1)
    Message.objects.filter(pk=reply.pk).update(review_result=True, review_count=1)
    reply.refresh_from_db()
    follow_up = trees.add_reply(tree=tree, parent=reply, author=ann, text="Even in winter?")
    return root, reply, follow_up


def flag(message: Message, who: User, how: str, capture) -> None:  # type: ignore[no-untyped-def]
    """One red flag, committed, with the jobs it starts run (as a worker would)."""
    with capture(execute=True):
        if how == "report":
            moderation.report_message(message=message, reporter=who, reason="offensive")
        elif how == "reaction":
            trees.react(message=message, user=who, emoji="red_flag")
        else:
            trees.record_review(
                tree=message.tree, message=message, user=who, task_id=message.pk,
                values={"spam": 0, "lang_mismatch": 0, "hate_speech": 1},
            )  # fmt: skip
            automod.enqueue_check(message.pk, automod.Trigger.RED_FLAGS)


def test_the_third_person_to_red_flag_a_reply_hides_it_with_its_replies(
    growing, django_capture_on_commit_callbacks
):  # type: ignore[no-untyped-def]
    _, reply, follow_up = growing
    flag(reply, person("v1"), "report", django_capture_on_commit_callbacks)
    flag(reply, person("v2"), "reaction", django_capture_on_commit_callbacks)
    reply.refresh_from_db()
    assert not reply.deleted  # two flags: below the threshold of 3
    flag(reply, person("v3"), "review", django_capture_on_commit_callbacks)

    reply.refresh_from_db()
    follow_up.refresh_from_db()
    assert reply.deleted
    assert follow_up.deleted
    assert reply.auto_moderated_at is not None
    entry = AuditEntry.objects.get(action=Action.AUTO_HIDE)
    assert (entry.actor_id, entry.actor_name) == (None, "auto-moderation")
    assert entry.target_id == str(reply.pk)
    assert entry.details["trigger"] == "red_flags"
    assert entry.details["count"] == 3
    report = Report.objects.get(message=reply, reporter=None)
    assert report.reason == "red_flags"
    assert report.resolved_at is None


def test_it_acts_only_once_and_a_moderator_can_revert_it(
    growing, mod, django_capture_on_commit_callbacks
):  # type: ignore[no-untyped-def]
    _, reply, _ = growing
    for n in range(3):
        flag(reply, person(f"v{n}"), "report", django_capture_on_commit_callbacks)
    moderation.undelete_message(moderator=mod, message_id=reply.pk, reason="fine after all")
    flag(reply, person("v4"), "report", django_capture_on_commit_callbacks)
    reply.refresh_from_db()
    assert not reply.deleted  # the moderator's decision stands
    assert AuditEntry.objects.filter(action=Action.AUTO_HIDE).count() == 1
    assert automod.check_message(message_id=reply.pk, trigger="red_flags") is None


def test_one_person_flagging_in_every_way_counts_once(growing, django_capture_on_commit_callbacks):  # type: ignore[no-untyped-def]
    _, reply, _ = growing
    troll_hunter = person("keen")
    for how in ("report", "reaction", "review"):
        flag(reply, troll_hunter, how, django_capture_on_commit_callbacks)
    assert automod.count_red_flags(reply.pk) == 1
    flag(reply, person("v2"), "report", django_capture_on_commit_callbacks)
    reply.refresh_from_db()
    assert not reply.deleted


def test_resolved_reports_and_harmless_reviews_are_not_red_flags(
    growing, mod, django_capture_on_commit_callbacks
):  # type: ignore[no-untyped-def]
    _, reply, _ = growing
    for n in range(2):
        flag(reply, person(f"v{n}"), "report", django_capture_on_commit_callbacks)
    moderation.resolve_reports(moderator=mod, message_id=reply.pk, note="fine")
    trees.record_review(
        tree=reply.tree, message=reply, user=person("calm"), task_id=reply.pk,
        values={"spam": 0, "lang_mismatch": 0, "quality": 1, "pii": 0},
    )  # fmt: skip
    assert automod.count_red_flags(reply.pk) == 0
    flag(reply, person("v3"), "report", django_capture_on_commit_callbacks)
    reply.refresh_from_db()
    assert not reply.deleted


def test_with_the_halt_action_the_tree_is_halted_and_can_be_resumed(
    growing, mod, settings, django_capture_on_commit_callbacks
):  # type: ignore[no-untyped-def]
    settings.CHORUS_AUTOMOD_ACTION = "halt"
    root, reply, _ = growing
    for n in range(3):
        flag(reply, person(f"v{n}"), "reaction", django_capture_on_commit_callbacks)
    root.tree.refresh_from_db()
    reply.refresh_from_db()
    assert root.tree.state == State.HALTED_BY_MODERATOR
    assert not reply.deleted
    entry = AuditEntry.objects.get(action=Action.AUTO_HALT)
    assert (entry.actor_id, entry.target_type, entry.target_id) == (None, "tree", str(root.tree_id))
    assert Report.objects.get(message=reply, reporter=None).details["action"] == "auto_halt"
    moderation.resume_tree(moderator=mod, tree_id=root.tree_id, reason="checked")
    root.tree.refresh_from_db()
    assert root.tree.state == State.GROWING


def test_a_threshold_of_zero_switches_the_trigger_off(
    growing, settings, django_capture_on_commit_callbacks
):  # type: ignore[no-untyped-def]
    settings.CHORUS_AUTOMOD_RED_FLAGS = 0
    _, reply, _ = growing
    for n in range(5):
        flag(reply, person(f"v{n}"), "report", django_capture_on_commit_callbacks)
    reply.refresh_from_db()
    assert not reply.deleted
    assert not AuditEntry.objects.filter(action__startswith="auto_").exists()


def test_a_failing_check_never_breaks_the_report_that_started_it(
    growing, monkeypatch, django_capture_on_commit_callbacks
):  # type: ignore[no-untyped-def]
    _, reply, _ = growing

    def broken(**kwargs):  # type: ignore[no-untyped-def]
        raise RuntimeError("auto-moderation is down")

    monkeypatch.setattr(automod, "check_message", broken)
    flag(reply, person("v1"), "report", django_capture_on_commit_callbacks)
    assert Report.objects.filter(message=reply, reporter__username="v1").exists()


# --- Skips, through the task API ---------------------------------------------------------


def _client(user: User) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


def _skip_review(user: User, reason: str) -> str:
    client = _client(user)
    task = client.post(
        "/api/v1/tasks/", {"type": "label_initial_prompt", "lang": "en"}, format="json"
    ).json()
    done = client.post(f"/api/v1/tasks/{task['id']}/skip/", {"reason": reason}, format="json")
    assert done.status_code == 200, done.json()
    return task["message_id"]


@pytest.mark.django_db(transaction=True)
def test_a_prompt_skipped_as_inappropriate_by_enough_volunteers_is_hidden(settings):  # type: ignore[no-untyped-def]
    settings.CHORUS_AUTOMOD_SKIPS = 3
    prompt = trees.create_tree(author=person("ann"), text="Tell me a joke about my boss", lang="en")
    # Skips for reasons about the volunteer do not count.
    for n in range(3):
        assert _skip_review(person(f"shy{n}"), "not_knowledgeable") == str(prompt.pk)
    prompt.refresh_from_db()
    assert not prompt.deleted
    for n in range(3):
        _skip_review(person(f"v{n}"), "inappropriate")
    prompt.refresh_from_db()
    prompt.tree.refresh_from_db()
    assert prompt.deleted
    assert prompt.tree.state == State.HALTED_BY_MODERATOR  # a deleted first prompt halts its tree
    entry = AuditEntry.objects.get(action=Action.AUTO_HIDE)
    assert entry.details == {**entry.details, "trigger": "skips", "count": 3}
    assert Report.objects.get(message=prompt, reporter=None).reason == "skips"
    assert Task.objects.filter(status=TaskStatus.SKIPPED).count() == 6


# --- Personal data at submission -----------------------------------------------------------


def _write_prompt(user: User, text: str):  # type: ignore[no-untyped-def]
    client = _client(user)
    task = client.post(
        "/api/v1/tasks/", {"type": "initial_prompt", "lang": "en"}, format="json"
    ).json()
    return client.post(f"/api/v1/tasks/{task['id']}/submit/", {"text": text}, format="json")


@pytest.mark.django_db(transaction=True)
def test_a_prompt_with_personal_data_is_accepted_and_waits_in_the_report_queue(mod) -> None:
    text = "My neighbour Tom (tom.becker@posteo.de, 0171 2345678) is loud. What can I do?"
    done = _write_prompt(person("ann"), text)
    assert done.status_code == 201, done.json()
    message_id = done.json()["result_id"]

    report = Report.objects.get(message_id=message_id)
    assert (report.reporter, report.reason) == (None, "personal_data")
    assert report.details == {"pii": ["email", "phone"]}
    entry = AuditEntry.objects.get(action=Action.AUTO_FLAG, target_id=message_id)
    assert entry.actor_id is None
    # The personal data itself is in the message only.
    for stored in (report.text, str(report.details), entry.reason, str(entry.details)):
        assert "posteo" not in stored
        assert "2345678" not in stored

    queue = _client(mod).get("/api/v1/moderation/reports/").json()
    item = next(i for i in queue if i["message"]["id"] == message_id)
    assert item["reports"][0]["reporter"] is None
    assert item["reports"][0]["details"] == {"pii": ["email", "phone"]}


@pytest.mark.django_db(transaction=True)
def test_a_reply_with_an_address_is_flagged_and_one_without_is_not(settings) -> None:  # type: ignore[no-untyped-def]
    settings.CHORUS_TREE = {**settings.CHORUS_TREE, "reviews_per_message": 1}
    root = trees.create_tree(author=person("ann"), text="Where should I send my CV?", lang="en")
    Message.objects.filter(pk=root.pk).update(review_result=True, review_count=1)
    trees.advance_tree_by_id(tree_id=root.tree_id)
    writers = [person("bea"), person("cem")]
    texts = [
        "Send it to our office at 123 Main St, Springfield, IL 62704.",
        "Version 3.11.7 of the form is at example.com; call between 9:00 and 17:30.",
    ]
    ids = []
    for writer, text in zip(writers, texts, strict=True):
        client = _client(writer)
        task = client.post(
            "/api/v1/tasks/", {"type": "assistant_reply", "lang": "en"}, format="json"
        ).json()
        done = client.post(f"/api/v1/tasks/{task['id']}/submit/", {"text": text}, format="json")
        assert done.status_code == 201, done.json()
        ids.append(done.json()["result_id"])
    assert Report.objects.get(message_id=ids[0]).details == {"pii": ["street_address"]}
    assert not Report.objects.filter(message_id=ids[1]).exists()


@pytest.mark.django_db(transaction=True)
def test_personal_data_detection_can_be_switched_off(settings) -> None:  # type: ignore[no-untyped-def]
    settings.CHORUS_AUTOMOD_PII = False
    assert _write_prompt(person("ann"), "Mail me: ann.k@web.de").status_code == 201
    assert not Report.objects.exists()


def test_volunteers_cannot_file_auto_moderation_reasons(growing) -> None:  # type: ignore[no-untyped-def]
    _, reply, _ = growing
    client = _client(person("v1"))
    response = client.post(
        f"/api/v1/messages/{reply.pk}/reports/", {"reason": "red_flags"}, format="json"
    )
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_input"


@pytest.mark.django_db(transaction=True)
def test_two_checks_at_the_same_moment_act_only_once(settings) -> None:  # type: ignore[no-untyped-def]
    import threading

    from django.db import connection

    root = trees.create_tree(author=person("ann"), text="Is this fine?", lang="en")
    settings.CHORUS_AUTOMOD_RED_FLAGS = 0  # the reports' own checks stay out of the way
    for n in range(3):
        moderation.report_message(message=root, reporter=person(f"v{n}"), reason="spam")
    settings.CHORUS_AUTOMOD_RED_FLAGS = 3
    barrier = threading.Barrier(2)
    outcomes: list[str | None] = []

    def check() -> None:
        try:
            barrier.wait()
            outcomes.append(automod.check_message(message_id=root.pk, trigger="red_flags"))
        finally:
            connection.close()

    threads = [threading.Thread(target=check) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes, key=str) == [None, "auto_hide"]
    assert AuditEntry.objects.filter(action=Action.AUTO_HIDE).count() == 1
    assert Report.objects.filter(message=root, reporter=None).count() == 1
