"""The moderator pages through Django's test client: the queue, search, a message and its
actions, a user and theirs, the audit log. Each action: it works, it leaves its audit entry,
refused input is shown in its form and changes nothing, and it needs its CSRF token."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from backend.accounts.models import Role, User
from backend.moderation import services as moderation
from backend.moderation.models import Action, AuditEntry, Report
from backend.tasks.models import Task, TaskStatus
from backend.tasks.services import request_task
from backend.trees.models import Message, MessageRevision, MessageTree, Ranking
from backend.trees.rules import State
from tests.factories import MessageFactory, TreeFactory, UserFactory

pytestmark = pytest.mark.django_db


# --- A small world --------------------------------------------------------------------------


def person(username: str, **fields: Any) -> User:
    return UserFactory(
        username=username, password=None, tutorial_completed_at=timezone.now(), **fields
    )


@pytest.fixture
def moderator() -> User:
    return person("mona", role=Role.MODERATOR)


@pytest.fixture
def mod(moderator: User) -> Client:
    client = Client()
    client.force_login(moderator)
    return client


@pytest.fixture
def author() -> User:
    return person("alex")


@pytest.fixture
def root(author: User) -> Message:
    """An accepted first prompt in a growing tree, reported by two volunteers."""
    tree = TreeFactory(state=State.GROWING)
    message = MessageFactory(
        tree=tree, author=author, review_result=True, review_count=3, text="Is the sea salty?"
    )
    for name in ("rita", "rob"):
        Report.objects.create(
            message=message, reporter=person(name), reason="spam", text=f"{name} says spam"
        )
    return message


def entries(action: str) -> list[AuditEntry]:
    return list(AuditEntry.objects.filter(action=action))


def message_url(message: Message, action: str = "") -> str:
    if action:
        return reverse("moderation_message_action", args=[message.pk, action])
    return reverse("moderation_message", args=[message.pk])


def tree_url(tree: MessageTree, action: str) -> str:
    return reverse("moderation_tree_action", args=[tree.pk, action])


def user_url(user: User, action: str = "") -> str:
    if action:
        return reverse("moderation_user_action", args=[user.pk, action])
    return reverse("moderation_user", args=[user.pk])


def flash(response: Any) -> list[str]:
    return [str(m) for m in response.context["messages"]]


# --- The queue ------------------------------------------------------------------------------


def test_the_queue_shows_reported_messages_most_reported_first(mod, root, author):
    once = MessageFactory(tree=TreeFactory(), author=author, text="Reported once")
    Report.objects.create(message=once, reporter=person("ruth"), reason="toxic")
    closed = MessageFactory(tree=TreeFactory(), author=author, text="Already judged")
    Report.objects.create(
        message=closed, reporter=person("rex"), reason="spam", resolved_at=timezone.now()
    )
    response = mod.get(reverse("moderation_queue"))
    assert response.status_code == 200
    page = response.content.decode()
    assert page.index("Is the sea salty?") < page.index("Reported once")
    assert "rita says spam" in page
    assert "rob says spam" in page
    assert "Already judged" not in page
    assert '<span class="badge" data-open-reports>3</span>' in page  # the menu's count


def test_the_queue_costs_the_same_few_queries_for_many_reports(
    mod, author, django_assert_max_num_queries
):
    for n in range(30):
        parent = MessageFactory(tree=TreeFactory(), author=author)
        reply = MessageFactory(tree=parent.tree, parent=parent, author=author, role="assistant")
        for r in range(2):
            Report.objects.create(message=reply, reporter=person(f"r{n}-{r}"), reason="spam")
    with django_assert_max_num_queries(8):
        response = mod.get(reverse("moderation_queue"))
    assert response.content.decode().count('class="card queue-item"') == 30


# --- Search ---------------------------------------------------------------------------------


def test_search_filters_by_words_author_language_state_and_deletion(mod, root, author):
    other = person("otto")
    MessageFactory(tree=TreeFactory(lang="de"), author=other, lang="de", text="Salziges Meer")
    MessageFactory(tree=root.tree, parent=root, author=other, role="assistant", deleted=True)

    def found(**params: str) -> set[str]:
        response = mod.get(reverse("moderation_search"), params)
        assert response.status_code == 200
        assert not response.context["errors"], response.context["errors"]
        return {m.text for m in response.context["page"]}

    assert "Is the sea salty?" in found(q="seas")  # stemming
    assert found(author="otto", lang="de") == {"Salziges Meer"}
    assert found(author="alex", state="growing") == {"Is the sea salty?"}
    assert len(found(author="otto", deleted="true")) == 1
    assert found(author="otto", deleted="false") == {"Salziges Meer"}


def test_bad_search_filters_are_shown_and_nothing_is_searched(mod, root):
    response = mod.get(reverse("moderation_search"), {"state": "sleeping", "since": "soon"})
    assert response.status_code == 200
    assert set(response.context["errors"]) == {"state", "since"}
    assert response.context["page"] is None
    page = response.content.decode()
    assert 'role="alert"' in page
    assert "“Since” must be a date, e.g. 2026-11-25." in page
    assert "“Tree state” must be one of: initial_prompt_review," in page


def test_search_results_cost_a_bounded_number_of_queries(
    mod, author, django_assert_max_num_queries
):
    for _ in range(60):
        MessageFactory(tree=TreeFactory(), author=author, text="Tell me about whales")
    with django_assert_max_num_queries(6):
        response = mod.get(reverse("moderation_search"), {"q": "whales"})
    assert len(response.context["page"]) == 50


# --- A message and its actions ----------------------------------------------------------------


def test_the_message_page_shows_reports_revisions_and_history(
    mod, moderator, root, django_assert_max_num_queries
):
    for n in range(5):
        moderation.edit_message(
            moderator=moderator, message_id=root.pk, text=f"Version {n}", reason=f"fix {n}"
        )
    with django_assert_max_num_queries(12):
        response = mod.get(message_url(root))
    page = response.content.decode()
    assert response.status_code == 200
    assert "rita says spam" in page
    assert page.count('<li><p class="muted">') == 5  # five earlier versions
    assert all(f"fix {n}" in page for n in range(5))
    assert page.count('data-action="message_edit"') == 5


def test_a_moderator_edits_a_message_keeping_the_old_text_as_a_revision(mod, moderator, root):
    response = mod.post(
        message_url(root, "edit"), {"text": "Why is the sea salty?", "reason": "clearer"}
    )
    assert response.status_code == 302
    assert response["Location"] == message_url(root)
    root.refresh_from_db()
    assert root.text == "Why is the sea salty?"
    revision = MessageRevision.objects.get(message=root)
    assert (revision.previous_text, revision.reason, revision.editor) == (
        "Is the sea salty?",
        "clearer",
        moderator,
    )
    [entry] = entries(Action.MESSAGE_EDIT)
    assert (entry.actor_name, entry.target_id, entry.reason) == ("mona", str(root.pk), "clearer")
    page = mod.get(response["Location"]).content.decode()
    assert "Why is the sea salty?" in page
    assert "clearer" in page


@pytest.mark.parametrize(
    ("fields", "blamed", "said"),
    [
        (
            {"text": "A new text", "reason": "  "},
            "reason",
            "“Reason (goes into the audit log)” is empty; please fill it in.",
        ),
        ({"text": "", "reason": "empty it"}, "text", "“Text” is empty; please fill it in."),
        ({"text": "Is the sea salty?", "reason": "no change"}, "text", "“Text” is the same as"),
        (
            {"text": "A new text", "reason": "r" * 1001},
            "reason",
            "“Reason (goes into the audit log)” may be at most 1000 characters long.",
        ),
    ],
    ids=["no reason", "no text", "unchanged", "long reason"],
)
def test_a_refused_edit_is_shown_in_its_form_keeping_what_was_typed(
    mod, root, fields, blamed, said
):
    response = mod.post(message_url(root, "edit"), fields)
    assert response.status_code == 400
    assert response.context["failed"] == "edit"
    assert blamed in response.context["errors"]
    page = response.content.decode()
    assert 'class="errors" role="alert"' in page
    # In words, with the field's label: not the service's field name and English.
    assert said in page
    assert f"<strong>{blamed}</strong>" not in page
    if fields["text"]:
        assert f">{fields['text']}</textarea>" in page  # the typed text is not lost
    root.refresh_from_db()
    assert root.text == "Is the sea salty?"
    assert not MessageRevision.objects.exists()
    assert not AuditEntry.objects.exists()


def test_a_moderator_deletes_and_restores_a_message(mod, root):
    reply = MessageFactory(tree=root.tree, parent=root, author=root.author, role="assistant")
    assert mod.post(message_url(reply, "delete"), {"reason": "rude"}).status_code == 302
    reply.refresh_from_db()
    assert reply.deleted
    assert entries(Action.MESSAGE_DELETE)[0].reason == "rude"
    assert "Restore" in mod.get(message_url(reply)).content.decode()

    assert mod.post(message_url(reply, "undelete"), {"reason": "mistake"}).status_code == 302
    reply.refresh_from_db()
    assert not reply.deleted
    assert entries(Action.MESSAGE_UNDELETE)[0].reason == "mistake"


def test_a_delete_without_a_reason_is_refused_in_its_form(mod, root):
    response = mod.post(message_url(root, "delete"), {"reason": ""})
    assert response.status_code == 400
    assert response.context["failed"] == "delete"
    assert "“Reason” is empty; please fill it in." in response.content.decode()
    root.refresh_from_db()
    assert not root.deleted
    assert root.tree.state == State.GROWING
    assert not AuditEntry.objects.exists()


def test_deleting_a_message_twice_says_so_and_changes_nothing(mod, moderator, root):
    moderation.delete_message(moderator=moderator, message_id=root.pk, reason="spam")
    response = mod.post(message_url(root, "delete"), {"reason": "again"}, follow=True)
    assert "deleted already" in " ".join(flash(response))
    assert len(entries(Action.MESSAGE_DELETE)) == 1


def test_a_moderator_closes_the_reports_of_a_message(mod, moderator, root):
    response = mod.post(message_url(root, "resolve"), {"reason": "fine"})
    assert response["Location"] == reverse("moderation_queue")
    assert not Report.objects.filter(resolved_at=None).exists()
    assert set(Report.objects.values_list("resolved_by", flat=True)) == {moderator.pk}
    [entry] = entries(Action.REPORT_RESOLVE)
    assert entry.reason == "fine"
    assert "Is the sea salty?" not in mod.get(reverse("moderation_queue")).content.decode()


def test_a_moderator_halts_and_resumes_the_tree_from_the_message_page(mod, root):
    back = {"next": message_url(root), "reason": "checking"}
    response = mod.post(tree_url(root.tree, "halt"), back)
    assert response["Location"] == message_url(root)
    root.tree.refresh_from_db()
    assert root.tree.state == State.HALTED_BY_MODERATOR
    assert "Resume the tree" in mod.get(message_url(root)).content.decode()

    mod.post(tree_url(root.tree, "resume"), back)
    root.tree.refresh_from_db()
    assert root.tree.state == State.GROWING
    assert [e.action for e in AuditEntry.objects.order_by("id")] == [
        Action.TREE_HALT,
        Action.TREE_RESUME,
    ]


def settings_form(tree: MessageTree, **changes: str) -> dict[str, str]:
    form = {
        name: str(getattr(tree, name))
        for name, (kind, _, _) in moderation.TREE_SETTINGS.items()
        if kind is not bool
    }
    return form | {"reason": "a bigger tree"} | changes


def test_a_moderator_changes_a_trees_settings(mod, root):
    form = settings_form(root.tree, goal_size="30", acceptance_threshold="0.7")
    response = mod.post(tree_url(root.tree, "settings"), {**form, "next": message_url(root)})
    assert response.status_code == 302
    tree = MessageTree.objects.get(pk=root.tree_id)
    assert (tree.goal_size, tree.acceptance_threshold, tree.rank_prompter_replies) == (
        30,
        0.7,
        False,  # an unticked box
    )
    [entry] = entries(Action.TREE_SETTINGS)
    assert entry.details["after"]["goal_size"] == 30


@pytest.mark.parametrize(
    ("changes", "blamed"),
    [
        ({"goal_size": "many"}, {"goal_size"}),
        ({"goal_size": "0", "acceptance_threshold": "1.5"}, {"goal_size", "acceptance_threshold"}),
        ({"max_depth": "2.5"}, {"max_depth"}),
        ({"reason": ""}, {"reason"}),
    ],
)
def test_bad_tree_settings_are_shown_in_the_form_and_change_nothing(mod, root, changes, blamed):
    before = MessageTree.objects.filter(pk=root.tree_id).values().get()
    form = settings_form(root.tree, **changes)
    response = mod.post(tree_url(root.tree, "settings"), {**form, "next": message_url(root)})
    assert response.status_code == 400
    assert response.context["failed"] == "settings"
    assert set(response.context["errors"]) == blamed
    page = response.content.decode()
    assert "<details open>" in page
    for name, value in changes.items():
        if name != "reason":
            assert f'name="{name}" value="{value}"' in page  # what was typed is kept
    assert MessageTree.objects.filter(pk=root.tree_id).values().get() == before
    assert not AuditEntry.objects.exists()


def test_an_unknown_action_is_not_found(mod, root):
    assert mod.post(message_url(root, "explode"), {"reason": "x"}).status_code == 404
    assert mod.post(tree_url(root.tree, "explode"), {"reason": "x"}).status_code == 404
    assert mod.post(user_url(root.author, "explode"), {"reason": "x"}).status_code == 404


def test_a_form_address_opened_in_the_browser_leads_to_its_page(mod, root, author):
    # A refused form is shown at the form's address; opening that address again from the
    # address bar goes to the page the form is on, and does nothing.
    assert mod.post(message_url(root, "edit"), {"text": "", "reason": "x"}).status_code == 400
    for url, page in [
        (message_url(root, "edit"), message_url(root)),
        (message_url(root, "delete"), message_url(root)),
        (tree_url(root.tree, "halt"), reverse("tree", args=[root.tree_id])),
        (user_url(author, "ban"), user_url(author)),
    ]:
        assert mod.get(url)["Location"] == page
    root.refresh_from_db()
    assert not root.deleted
    author.refresh_from_db()
    assert not author.is_banned
    assert not AuditEntry.objects.exists()


def test_a_form_address_refuses_other_methods_on_a_page(mod, root):
    response = mod.put(message_url(root, "delete"))
    assert response.status_code == 405
    assert response["Allow"] == "POST"
    assert f'href="{message_url(root)}"' in response.content.decode()


def test_a_missing_message_is_not_found(mod, root):
    root_id = root.pk
    Message.objects.filter(pk=root_id).delete()
    assert mod.get(reverse("moderation_message", args=[root_id])).status_code == 404


# --- A user and their actions -------------------------------------------------------------------


def test_the_user_page_shows_their_messages_and_history(
    mod, author, root, django_assert_max_num_queries
):
    for n in range(25):
        MessageFactory(tree=root.tree, author=author, text=f"Message {n}")
    with django_assert_max_num_queries(14):
        response = mod.get(user_url(author))
    assert response.status_code == 200
    assert len(response.context["recent"]) == 20  # the latest
    assert response.content.decode().count('href="/moderation/messages/') == 20


def test_the_user_page_counts_one_of_a_kind_in_the_singular(mod, author, root):
    Ranking.objects.create(parent=MessageFactory(), user=author, ordered_ids=[])
    page = mod.get(user_url(author)).content.decode()
    assert "1 message (1 accepted, 0 rejected), 0 reviews, 1 ranking." in page
    german = mod.get(user_url(author), headers={"accept-language": "de"}).content.decode()
    assert "1 Nachricht (1 angenommen, 0 abgelehnt), 0 Prüfungen, 1 Rangfolge." in german


def test_a_moderator_bans_and_unbans_a_volunteer(mod, author):
    task = request_task(user=author, task_type="initial_prompt", lang="en")
    response = mod.post(user_url(author, "ban"), {"reason": "spam"})
    assert response["Location"] == user_url(author)
    author.refresh_from_db()
    assert (author.is_banned, author.banned_reason) == (True, "spam")
    assert Task.objects.get(pk=task.pk).status == TaskStatus.SKIPPED  # their work is freed
    assert entries(Action.USER_BAN)[0].details["tasks_closed"] == 1
    assert "Lift the ban" in mod.get(user_url(author)).content.decode()

    mod.post(user_url(author, "unban"), {"reason": "appeal"})
    author.refresh_from_db()
    assert not author.is_banned
    assert entries(Action.USER_UNBAN)[0].reason == "appeal"


def test_a_ban_without_a_reason_says_so_and_changes_nothing(mod, author):
    response = mod.post(user_url(author, "ban"), {"reason": ""}, follow=True)
    assert flash(response) == ["Nothing was changed: “Reason” is empty; please fill it in."]
    author.refresh_from_db()
    assert not author.is_banned
    assert not AuditEntry.objects.exists()


def test_a_moderator_may_not_ban_another_moderator(mod):
    other = person("max", role=Role.MODERATOR)
    response = mod.post(user_url(other, "ban"), {"reason": "rival"}, follow=True)
    assert any("Only admins" in text for text in flash(response))
    other.refresh_from_db()
    assert not other.is_banned
    assert not AuditEntry.objects.exists()


def test_a_moderator_purges_a_volunteer_and_everything_they_wrote(mod, author, root):
    response = mod.post(user_url(author, "purge"), {"reason": "spam bot"})
    assert response.status_code == 302
    author.refresh_from_db()
    assert author.is_banned
    assert not Message.objects.filter(author=author, deleted=False).exists()
    [entry] = entries(Action.USER_PURGE)
    assert (entry.reason, entry.target_id) == ("spam bot", str(author.pk))


# --- The audit log ------------------------------------------------------------------------------


def test_the_audit_log_lists_and_filters_entries(
    mod, moderator, root, django_assert_max_num_queries
):
    moderation.edit_message(moderator=moderator, message_id=root.pk, text="New", reason="r1")
    moderation.halt_tree(moderator=moderator, tree_id=root.tree_id, reason="r2")
    for n in range(30):
        victim = person(f"troll{n}")
        moderation.ban_user(moderator=moderator, user_id=victim.pk, reason=f"troll {n}")
    with django_assert_max_num_queries(6):
        response = mod.get(reverse("moderation_audit"))
    assert response.status_code == 200
    assert response.content.decode().count("<tr data-action=") == 32

    only_edits = mod.get(reverse("moderation_audit"), {"action": "message_edit"})
    assert [e.reason for e in only_edits.context["page"]] == ["r1"]
    by_target = mod.get(reverse("moderation_audit"), {"target": str(root.tree_id)})
    assert [e.action for e in by_target.context["page"]] == [Action.TREE_HALT]
    unknown = mod.get(reverse("moderation_audit"), {"action": "nonsense"})
    assert unknown.status_code == 200
    assert list(unknown.context["page"]) == []


# --- CSRF -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "fields"),
    [
        (lambda root: message_url(root, "edit"), {"text": "Hacked", "reason": "csrf"}),
        (lambda root: message_url(root, "delete"), {"reason": "csrf"}),
        (lambda root: message_url(root, "resolve"), {"reason": "csrf"}),
        (lambda root: tree_url(root.tree, "halt"), {"reason": "csrf"}),
        (lambda root: user_url(root.author, "ban"), {"reason": "csrf"}),
        (lambda root: user_url(root.author, "purge"), {"reason": "csrf"}),
    ],
    ids=["edit", "delete", "resolve", "halt", "ban", "purge"],
)
def test_every_moderator_action_needs_its_csrf_token(moderator, root, url, fields):
    client = Client(enforce_csrf_checks=True)
    client.force_login(moderator)
    assert client.post(url(root), fields).status_code == 403
    assert not AuditEntry.objects.exists()
    root.refresh_from_db()
    assert (root.text, root.deleted, root.author.is_banned) == ("Is the sea salty?", False, False)

    # The same form, with the token the page gives, goes through.
    client.get(message_url(root))
    token = client.cookies["csrftoken"].value
    assert client.post(url(root), {**fields, "csrfmiddlewaretoken": token}).status_code == 302
    assert AuditEntry.objects.count() == 1


def test_every_way_a_field_can_be_wrong_is_said_in_plain_words_on_the_pages() -> None:
    from backend.core import errors as problems
    from frontend.access import field_problem

    worded = [
        *(problems.REQUIRED, problems.BLANK, problems.UNCHANGED, problems.WHOLE_NUMBER),
        *(problems.NUMBER, problems.ISO_DATE, problems.SHARE, problems.one_of(["a", "b"])),
        *(problems.at_most(500), problems.between(0, 1.5)),
    ]
    said = [field_problem("Reason", problem) for problem in worded]
    assert all(text.startswith("“Reason”") for text in said), said
    assert "“Reason” must be between 0 and 1.5." in said
    assert "“Reason” may be at most 500 characters long." in said
