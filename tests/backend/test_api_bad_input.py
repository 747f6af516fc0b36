"""Bad input to every endpoint: each gets its documented error and changes nothing stored.

Every refusal is checked three ways: the status, the error body's `code` (and the `fields`
it blames, for bad input), and a snapshot of what is stored, taken before and after.
"""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

from backend.accounts.models import Role, User
from backend.moderation.models import Report
from backend.tasks.models import Task
from backend.tasks.services import expire_tasks
from backend.trees import services as trees
from backend.trees.models import Message, MessageTree, Ranking, Reaction, Review, StateChange
from backend.trees.rules import State
from tests.factories import MessageFactory, TreeFactory, UserFactory

pytestmark = pytest.mark.django_db

TASKS = "/api/v1/tasks/"
GOOD_LABELS = {"spam": 0, "lang_mismatch": 0, "quality": 0.75}


# --- What is stored, and how a refusal looks -----------------------------------------------

MESSAGE_FIELDS = (
    "id",
    "text",
    "review_count",
    "review_result",
    "label_summary",
    "children_count",
    "accepted_children_count",
    "ranking_count",
    "rank",
    "deleted",
    "emojis",
    "lease_task_id",
    "lease_until",
)
TASK_FIELDS = (
    "id",
    "status",
    "submission_key",
    "result_id",
    "done_at",
    "skip_reason",
    "expires_at",
)
USER_FIELDS = ("username", "display_name", "languages", "show_on_leaderboard", "is_banned")


def snapshot() -> dict[str, Any]:
    """Everything a refused request could have changed: rows, counters, leases, states."""
    return {
        "messages": {m["id"]: m for m in Message.objects.values(*MESSAGE_FIELDS)},
        "tasks": {t["id"]: t for t in Task.objects.values(*TASK_FIELDS)},
        "trees": dict(MessageTree.objects.values_list("id", "state")),
        "users": {u["username"]: u for u in User.objects.values(*USER_FIELDS)},
        "reviews": Review.objects.count(),
        "rankings": Ranking.objects.count(),
        "reactions": Reaction.objects.count(),
        "reports": Report.objects.count(),
        "state_changes": StateChange.objects.count(),
    }


def assert_refused(response, status: int, code: str, *fields: str) -> dict:  # type: ignore[no-untyped-def]
    """The response is an error of the one API format, with this status, code and fields."""
    assert response.status_code == status, (response.status_code, response.content[:800])
    assert response["Content-Type"].startswith("application/json")
    body = response.json()
    assert set(body) == {"error"}, body
    error = body["error"]
    assert {"code", "message", "fields"} <= set(error), error
    assert error["code"] == code, error
    assert isinstance(error["message"], str), error
    assert error["message"], error
    assert isinstance(error["fields"], dict), error
    for field in fields:
        assert field in error["fields"], (field, error["fields"])
        assert all(isinstance(m, str) and m for m in error["fields"][field]), error["fields"]
    return error


def refuses_and_keeps(do, status: int, code: str, *fields: str) -> dict:  # type: ignore[no-untyped-def]
    """Run `do()` and check it is refused as documented and leaves the database as it was."""
    before = snapshot()
    error = assert_refused(do(), status, code, *fields)
    assert snapshot() == before
    return error


# --- Trees in the states that give each kind of task ---------------------------------------


def author():  # type: ignore[no-untyped-def]
    """A message author; no password, as hashing one costs a fifth of a second."""
    return UserFactory(password=None)


def prompt_in_review() -> Message:
    """A new tree whose root waits for review (gives label_initial_prompt)."""
    return trees.create_tree(author=author(), text="How do tides work?", lang="en")


def growing_root() -> Message:
    """An accepted root in a growing tree (gives assistant_reply)."""
    tree = TreeFactory(state=State.GROWING)
    return MessageFactory(tree=tree, author=author(), review_result=True, review_count=3)


def pending_reply() -> Message:
    """An assistant reply waiting for review under a growing root (label_assistant_reply)."""
    root = growing_root()
    reply = MessageFactory(tree=root.tree, parent=root, author=author(), role="assistant")
    Message.objects.filter(pk=root.pk).update(children_count=1)
    return reply


def rankable_parent(replies: int = 3) -> Message:
    """A root with accepted assistant replies in a ranking tree (rank_assistant_replies)."""
    tree = TreeFactory(state=State.RANKING)
    root = MessageFactory(tree=tree, author=author(), review_result=True, review_count=3)
    for _ in range(replies):
        MessageFactory(
            tree=tree, parent=root, author=author(), role="assistant", review_result=True
        )
    Message.objects.filter(pk=root.pk).update(
        children_count=replies, accepted_children_count=replies
    )
    return root


def lease(person, task_type: str) -> dict:  # type: ignore[no-untyped-def]
    response = person.request_task(task_type)
    assert response.status_code == 201, response.json()
    task = response.json()
    assert task["type"] == task_type
    return task


def submit_path(task: dict) -> str:
    return f"{TASKS}{task['id']}/submit/"


@pytest.fixture
def reply_task(bob) -> dict:  # type: ignore[no-untyped-def]
    growing_root()
    return lease(bob, "assistant_reply")


@pytest.fixture
def review_task(bob) -> dict:  # type: ignore[no-untyped-def]
    prompt_in_review()
    return lease(bob, "label_initial_prompt")


@pytest.fixture
def rank_task(bob) -> dict:  # type: ignore[no-untyped-def]
    rankable_parent()
    return lease(bob, "rank_assistant_replies")


# --- Requesting a task ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"type": "write_a_poem", "lang": "en"}, "type"),
        ({"type": "", "lang": "en"}, "type"),
        ({"type": "random", "lang": "xx"}, "lang"),
        ({"type": "random", "lang": ""}, "lang"),
        ({"type": "random"}, "lang"),
        ({"type": "random", "lang": "e" * 17}, "lang"),
        ({"type": ["random"], "lang": "en"}, "type"),
    ],
)
def test_a_task_request_with_an_unknown_type_or_language_is_refused(bob, body, field):
    growing_root()
    refuses_and_keeps(lambda: bob.post(TASKS, body), 400, "invalid_input", field)


def test_a_task_request_whose_body_is_not_json_is_refused(bob):
    growing_root()
    refuses_and_keeps(
        lambda: bob.client.post(
            TASKS, '{"type": "random", "lang":', content_type="application/json"
        ),
        400,
        "parse_error",
    )


def test_a_task_request_sent_as_a_form_is_refused_as_unsupported(bob):
    growing_root()
    refuses_and_keeps(
        lambda: bob.client.post(TASKS, {"type": "random", "lang": "en"}),
        415,
        "unsupported_media_type",
    )


def test_a_task_request_whose_json_is_not_an_object_is_refused(bob):
    growing_root()
    refuses_and_keeps(
        lambda: bob.client.post(TASKS, '["random", "en"]', content_type="application/json"),
        400,
        "invalid_input",
        "non_field_errors",
    )


def test_a_banned_volunteer_gets_no_task(bob):
    growing_root()
    bob.user.is_banned = True
    bob.user.save(update_fields=["is_banned"])
    refuses_and_keeps(lambda: bob.request_task("assistant_reply"), 403, "user_banned")
    refuses_and_keeps(lambda: bob.request_task("initial_prompt"), 403, "user_banned")


def test_a_volunteer_banned_while_working_cannot_submit(bob, reply_task):
    bob.user.is_banned = True
    bob.user.save(update_fields=["is_banned"])
    refuses_and_keeps(
        lambda: bob.submit(reply_task["id"], key="k", text="A reply."), 403, "user_banned"
    )


def test_a_task_request_with_nothing_open_says_why(bob):
    error = refuses_and_keeps(lambda: bob.request_task("assistant_reply"), 404, "no_task_available")
    assert [r["code"] for r in error["reasons"]] == ["nothing_open"]


# --- Submitting text -----------------------------------------------------------------------

BAD_TEXTS = [
    pytest.param("", id="empty"),
    pytest.param("   \n\t  ", id="whitespace-only"),
    pytest.param("x" * 2001, id="2001-characters"),
    pytest.param("  " + "x" * 2001 + "  ", id="2001-characters-inside-spaces"),
    pytest.param(None, id="null"),
    pytest.param(["A reply."], id="list"),
    pytest.param({"text": "A reply."}, id="object"),
    pytest.param(True, id="boolean"),
    pytest.param("Before\x00after", id="nul-character"),
]


@pytest.mark.parametrize("text", BAD_TEXTS)
def test_a_reply_with_bad_text_is_refused(bob, reply_task, text):
    refuses_and_keeps(
        lambda: bob.submit(reply_task["id"], key="k", text=text), 400, "invalid_input", "text"
    )


@pytest.mark.parametrize("text", BAD_TEXTS)
def test_a_first_prompt_with_bad_text_is_refused(bob, text):
    task = lease(bob, "initial_prompt")
    refuses_and_keeps(
        lambda: bob.submit(task["id"], key="k", text=text), 400, "invalid_input", "text"
    )


@pytest.mark.parametrize("text", [pytest.param(123, id="integer"), pytest.param(1.5, id="float")])
def test_a_reply_whose_text_is_a_number_is_refused(bob, reply_task, text):
    refuses_and_keeps(
        lambda: bob.submit(reply_task["id"], key="k", text=text), 400, "invalid_input", "text"
    )


def test_a_reply_without_text_is_refused(bob, reply_task):
    refuses_and_keeps(lambda: bob.submit(reply_task["id"], key="k"), 400, "invalid_input", "text")


def test_a_reply_of_exactly_2000_characters_is_accepted(bob, reply_task):
    text = "é" * 1999 + "."
    response = bob.submit(reply_task["id"], key="k", text=f"  {text}\n")
    assert response.status_code == 201, response.json()
    assert Message.objects.get(pk=response.json()["result_id"]).text == text


def test_a_first_prompt_of_exactly_2000_characters_is_accepted(bob):
    task = lease(bob, "initial_prompt")
    response = bob.submit(task["id"], key="k", text="x" * 2000)
    assert response.status_code == 201, response.json()
    assert len(Message.objects.get(pk=response.json()["result_id"]).text) == 2000


# --- Submitting labels ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("labels", "field"),
    [
        pytest.param(None, "labels", id="null"),
        pytest.param({}, "labels", id="empty"),
        pytest.param("spam", "labels", id="not-an-object"),
        pytest.param([0, 0], "labels", id="list"),
        pytest.param({**GOOD_LABELS, "sparkle": 1}, "labels.sparkle", id="unknown-name"),
        # Offered for assistant replies only, not for a first prompt.
        pytest.param({**GOOD_LABELS, "helpfulness": 1}, "labels.helpfulness", id="not-offered"),
        pytest.param({**GOOD_LABELS, "quality": -0.1}, "labels.quality", id="below-0"),
        pytest.param({**GOOD_LABELS, "quality": 1.5}, "labels.quality", id="above-1"),
        pytest.param({**GOOD_LABELS, "quality": "yes"}, "labels.quality", id="string"),
        pytest.param({**GOOD_LABELS, "quality": "0.5"}, "labels.quality", id="numeric-string"),
        pytest.param({**GOOD_LABELS, "quality": None}, "labels.quality", id="null-value"),
        pytest.param({**GOOD_LABELS, "spam": True}, "labels.spam", id="boolean"),
        pytest.param({**GOOD_LABELS, "spam": "yes"}, "labels.spam", id="yes-no-as-yes"),
        pytest.param({**GOOD_LABELS, "spam": 0.5}, "labels.spam", id="yes-no-at-half"),
        pytest.param(
            {**GOOD_LABELS, "lang_mismatch": 0.5}, "labels.lang_mismatch", id="flag-at-half"
        ),
        pytest.param({**GOOD_LABELS, "pii": 0.25}, "labels.pii", id="other-flag-at-quarter"),
        pytest.param({"lang_mismatch": 0, "quality": 1}, "labels.spam", id="spam-missing"),
        pytest.param({"spam": 0, "quality": 1}, "labels.lang_mismatch", id="mismatch-missing"),
    ],
)
def test_a_review_with_bad_labels_is_refused(bob, review_task, labels, field):
    refuses_and_keeps(
        lambda: bob.submit(review_task["id"], key="k", labels=labels),
        400,
        "invalid_input",
        field,
    )


def test_a_review_without_labels_is_refused(bob, review_task):
    refuses_and_keeps(
        lambda: bob.submit(review_task["id"], key="k", text="Looks fine."),
        400,
        "invalid_input",
        "labels",
    )


def test_a_review_names_every_bad_label_at_once(bob, review_task):
    labels = {"spam": 2, "sparkle": 0, "quality": -1}
    error = refuses_and_keeps(
        lambda: bob.submit(review_task["id"], key="k", labels=labels), 400, "invalid_input"
    )
    assert set(error["fields"]) == {
        "labels.spam",
        "labels.sparkle",
        "labels.quality",
        "labels.lang_mismatch",
    }


def test_a_review_with_a_nan_label_is_refused_as_bad_json(bob, review_task):
    body = '{"key": "k", "labels": {"spam": NaN, "lang_mismatch": 0}}'
    refuses_and_keeps(
        lambda: bob.client.post(submit_path(review_task), body, content_type="application/json"),
        400,
        "parse_error",
    )


@pytest.mark.parametrize("quality", [0, 0.33, 0.5, 1])
def test_a_scale_label_takes_any_value_from_0_to_1(bob, review_task, quality):
    labels = {"spam": 0, "lang_mismatch": 1, "quality": quality, "humor": 0.1}
    response = bob.submit(review_task["id"], key="k", labels=labels)
    assert response.status_code == 201, response.json()
    review = Review.objects.get(pk=response.json()["result_id"])
    assert review.values == {"spam": 0.0, "lang_mismatch": 1.0, "quality": quality, "humor": 0.1}


def test_yes_no_and_flag_labels_take_0_or_1(bob, review_task):
    labels = {"spam": 1, "lang_mismatch": 0.0, "pii": 1.0, "hate_speech": 0}
    response = bob.submit(review_task["id"], key="k", labels=labels)
    assert response.status_code == 201, response.json()


# --- Submitting rankings -------------------------------------------------------------------


def offered(task: dict) -> list[str]:
    return [reply["id"] for reply in task["replies"]]


@pytest.mark.parametrize(
    "make_ranking",
    [
        pytest.param(lambda ids: ids[:-1], id="missing-an-offered-id"),
        pytest.param(lambda ids: [*ids, str(uuid.uuid4())], id="with-an-extra-id"),
        pytest.param(lambda ids: [ids[0], *ids], id="with-a-duplicate"),
        pytest.param(lambda ids: [ids[0], ids[0], ids[1]], id="duplicate-in-place-of-one"),
        pytest.param(lambda ids: ["first", "second", "third"], id="not-uuids"),
        pytest.param(lambda ids: [1, 2, 3], id="numbers"),
        pytest.param(lambda ids: [], id="empty"),
        pytest.param(lambda ids: None, id="null"),
        pytest.param(lambda ids: ",".join(ids), id="a-string"),
        pytest.param(lambda ids: [[i] for i in ids], id="nested-lists"),
        pytest.param(lambda ids: {"order": ids}, id="an-object"),
    ],
)
def test_a_ranking_that_is_not_a_permutation_of_the_offered_replies_is_refused(
    bob, rank_task, make_ranking
):
    ranking = make_ranking(offered(rank_task))
    error = refuses_and_keeps(
        lambda: bob.submit(rank_task["id"], key="k", ranking=ranking), 400, "invalid_input"
    )
    assert any(name == "ranking" or name.startswith("ranking.") for name in error["fields"])


def test_a_ranking_of_another_messages_replies_is_refused(bob, rank_task):
    other = rankable_parent()
    ids = [str(m.id) for m in other.children.all()]
    refuses_and_keeps(
        lambda: bob.submit(rank_task["id"], key="k", ranking=ids), 400, "invalid_input", "ranking"
    )


def test_a_ranking_without_any_order_is_refused(bob, rank_task):
    refuses_and_keeps(lambda: bob.submit(rank_task["id"], key="k"), 400, "invalid_input", "ranking")


def test_not_rankable_with_a_partial_order_is_refused(bob, rank_task):
    refuses_and_keeps(
        lambda: bob.submit(
            rank_task["id"], key="k", not_rankable=True, ranking=offered(rank_task)[:1]
        ),
        400,
        "invalid_input",
        "ranking",
    )


def test_a_permutation_of_the_offered_replies_is_accepted(bob, rank_task):
    ranking = list(reversed(offered(rank_task)))
    response = bob.submit(rank_task["id"], key="k", ranking=ranking)
    assert response.status_code == 201, response.json()
    stored = Ranking.objects.get(pk=response.json()["result_id"])
    assert [str(i) for i in stored.ordered_ids] == ranking
    assert not stored.not_rankable


def test_not_rankable_is_accepted_without_an_order(bob, rank_task):
    response = bob.submit(rank_task["id"], key="k", not_rankable=True)
    assert response.status_code == 201, response.json()
    stored = Ranking.objects.get(pk=response.json()["result_id"])
    assert stored.not_rankable
    assert stored.ordered_ids == []


# --- Whose task, and when ------------------------------------------------------------------


def test_someone_elses_task_cannot_be_submitted_read_or_skipped(bob, carol, reply_task):
    refuses_and_keeps(
        lambda: carol.submit(reply_task["id"], key="k", text="Mine now."), 403, "not_your_task"
    )
    refuses_and_keeps(lambda: carol.get(f"{TASKS}{reply_task['id']}/"), 403, "not_your_task")
    refuses_and_keeps(
        lambda: carol.post(f"{TASKS}{reply_task['id']}/skip/", {"reason": "other"}),
        403,
        "not_your_task",
    )


def test_someone_elses_submitted_task_cannot_be_replayed_with_its_key(bob, carol, reply_task):
    assert bob.submit(reply_task["id"], key="k", text="A reply.").status_code == 201
    refuses_and_keeps(
        lambda: carol.submit(reply_task["id"], key="k", text="A reply."), 403, "not_your_task"
    )


def expire(task: dict) -> None:
    """Let the task's time run out: the task and its slot's lease both end in the past."""
    past = timezone.now() - timedelta(minutes=1)
    Task.objects.filter(pk=task["id"]).update(expires_at=past)
    Message.objects.filter(pk=task["message_id"]).update(lease_until=past)


@pytest.mark.parametrize("kind", ["reply_task", "review_task", "rank_task"])
def test_an_expired_task_is_refused(bob, kind, request):
    task = request.getfixturevalue(kind)
    expire(task)
    payload = {
        "reply_task": {"text": "A reply."},
        "review_task": {"labels": GOOD_LABELS},
        "rank_task": {"ranking": offered(task)},
    }[kind]
    refuses_and_keeps(lambda: bob.submit(task["id"], key="k", **payload), 409, "task_expired")


def test_an_expired_first_prompt_is_refused(bob):
    task = lease(bob, "initial_prompt")
    Task.objects.filter(pk=task["id"]).update(expires_at=timezone.now() - timedelta(seconds=1))
    refuses_and_keeps(
        lambda: bob.submit(task["id"], key="k", text="Why is the sky blue?"), 409, "task_expired"
    )


def test_an_expired_task_whose_slot_went_to_someone_else_is_refused(bob, carol, reply_task):
    expire(reply_task)
    mine = lease(carol, "assistant_reply")
    assert mine["message_id"] == reply_task["message_id"]
    refuses_and_keeps(
        lambda: bob.submit(reply_task["id"], key="k", text="Late reply."), 409, "task_expired"
    )
    assert carol.submit(mine["id"], key="k", text="On time.").status_code == 201


def test_an_expired_task_is_still_refused_as_expired_after_the_sweep(bob, reply_task):
    expire(reply_task)
    assert expire_tasks() == 1
    refuses_and_keeps(
        lambda: bob.submit(reply_task["id"], key="k", text="Late reply."), 409, "task_expired"
    )


def test_a_task_submitted_already_is_refused_unless_it_is_the_same_retry(bob, reply_task):
    first = bob.submit(reply_task["id"], key="first", text="A reply.")
    assert first.status_code == 201, first.json()
    result_id = first.json()["result_id"]
    assert first.json()["replayed"] is False

    before = snapshot()
    again = bob.submit(reply_task["id"], key="first", text="A reply.")
    assert again.status_code == 200, again.json()
    assert again.json() == {
        "task_id": reply_task["id"],
        "status": "submitted",
        "result_id": result_id,
        "replayed": True,
    }
    # A retry replays the first result even when its body differs: the key decides.
    assert bob.submit(reply_task["id"], key="first", text="Other.").json()["result_id"] == (
        result_id
    )
    assert snapshot() == before

    error = refuses_and_keeps(
        lambda: bob.submit(reply_task["id"], key="second", text="A reply."),
        409,
        "task_already_done",
    )
    assert error["result_id"] == result_id
    refuses_and_keeps(
        lambda: bob.submit(reply_task["id"], text="No key."), 409, "task_already_done"
    )


def test_a_review_submitted_already_is_refused(bob, review_task):
    assert bob.submit(review_task["id"], key="k", labels=GOOD_LABELS).status_code == 201
    refuses_and_keeps(
        lambda: bob.submit(review_task["id"], key="k2", labels=GOOD_LABELS),
        409,
        "task_already_done",
    )


def test_a_skipped_task_cannot_be_submitted(bob, reply_task):
    assert bob.post(f"{TASKS}{reply_task['id']}/skip/", {"reason": "other"}).status_code == 200
    refuses_and_keeps(
        lambda: bob.submit(reply_task["id"], key="k", text="Changed my mind."),
        409,
        "task_already_done",
    )


def test_an_idempotency_key_cannot_be_reused_on_another_task(bob):
    first = lease(bob, "initial_prompt")
    second = lease(bob, "initial_prompt")
    assert bob.submit(first["id"], key="same", text="First prompt.").status_code == 201
    refuses_and_keeps(
        lambda: bob.submit(second["id"], key="same", text="Second prompt."),
        409,
        "idempotency_key_reused",
        "key",
    )
    # The second task is still open: a fresh key submits it.
    assert bob.submit(second["id"], key="fresh", text="Second prompt.").status_code == 201


def test_another_volunteer_may_use_the_same_idempotency_key(bob, carol):
    mine, theirs = lease(bob, "initial_prompt"), lease(carol, "initial_prompt")
    assert bob.submit(mine["id"], key="same", text="Bob's prompt.").status_code == 201
    response = carol.submit(theirs["id"], key="same", text="Carol's prompt.")
    assert response.status_code == 201
    assert response.json()["replayed"] is False


def test_an_idempotency_key_over_100_characters_is_refused(bob, reply_task):
    refuses_and_keeps(
        lambda: bob.submit(reply_task["id"], key="k" * 101, text="A reply."),
        400,
        "invalid_input",
        "key",
    )


@pytest.mark.parametrize("verb", ["get", "submit", "skip"])
def test_an_unknown_task_is_not_found(bob, verb):
    growing_root()
    task_id = uuid.uuid4()
    do = {
        "get": lambda: bob.get(f"{TASKS}{task_id}/"),
        "submit": lambda: bob.submit(str(task_id), key="k", text="A reply."),
        "skip": lambda: bob.post(f"{TASKS}{task_id}/skip/", {"reason": "other"}),
    }[verb]
    refuses_and_keeps(do, 404, "not_found")


def test_a_task_id_that_is_not_a_uuid_is_not_found_in_the_api_format(bob):
    refuses_and_keeps(lambda: bob.get(f"{TASKS}not-a-uuid/"), 404, "not_found")


def test_a_method_an_endpoint_does_not_have_is_refused(bob, reply_task):
    refuses_and_keeps(
        lambda: bob.client.put(submit_path(reply_task), {}, format="json"),
        405,
        "method_not_allowed",
    )


# --- Halted trees --------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_tasks_on_a_halted_tree_cannot_be_submitted(volunteer, bob, carol):
    moderator = volunteer(role=Role.MODERATOR)
    reply = pending_reply()
    review = lease(bob, "label_assistant_reply")
    writing = lease(carol, "assistant_reply")
    assert review["message_id"] == str(reply.id)
    assert writing["message_id"] == str(reply.parent_id)

    halted = moderator.post(f"/api/v1/trees/{reply.tree_id}/halt/")
    assert halted.status_code == 200, halted.json()
    assert halted.json()["state"] == State.HALTED_BY_MODERATOR

    refuses_and_keeps(
        lambda: bob.submit(review["id"], key="k", labels=GOOD_LABELS), 409, "tree_halted"
    )
    refuses_and_keeps(
        lambda: carol.submit(writing["id"], key="k", text="A reply."), 409, "tree_halted"
    )
    refuses_and_keeps(lambda: bob.request_task("assistant_reply"), 404, "no_task_available")

    # Resumed where it stopped, the leased work can be handed in after all.
    assert moderator.post(f"/api/v1/trees/{reply.tree_id}/resume/").status_code == 200
    assert bob.submit(review["id"], key="k", labels=GOOD_LABELS).status_code == 201
    assert carol.submit(writing["id"], key="k", text="A reply.").status_code == 201


@pytest.mark.django_db(transaction=True)
def test_a_halted_tree_cannot_be_halted_again_nor_a_growing_one_resumed(volunteer):
    moderator = volunteer(role=Role.MODERATOR)
    root = growing_root()
    resume, halt = (f"/api/v1/trees/{root.tree_id}/{verb}/" for verb in ("resume", "halt"))
    refuses_and_keeps(lambda: moderator.post(resume), 409, "conflict")
    assert moderator.post(halt).status_code == 200
    refuses_and_keeps(lambda: moderator.post(halt), 409, "conflict")


@pytest.mark.parametrize("verb", ["halt", "resume"])
def test_halting_or_resuming_an_unknown_tree_is_not_found(volunteer, verb):
    moderator = volunteer(role=Role.MODERATOR)
    refuses_and_keeps(
        lambda: moderator.post(f"/api/v1/trees/{uuid.uuid4()}/{verb}/"), 404, "not_found"
    )


def test_a_reply_to_a_tree_that_moved_on_is_refused(bob, reply_task):
    MessageTree.objects.filter(pk=reply_task["tree_id"]).update(state=State.RANKING)
    refuses_and_keeps(
        lambda: bob.submit(reply_task["id"], key="k", text="Too late."), 409, "tree_moved_on"
    )


def test_a_review_of_a_message_deleted_meanwhile_is_refused(bob, review_task):
    Message.objects.filter(pk=review_task["message_id"]).update(deleted=True)
    error = refuses_and_keeps(
        lambda: bob.submit(review_task["id"], key="k", labels=GOOD_LABELS), 409, "tree_moved_on"
    )
    # Says what happened: the tree itself is still growing (found by bench/soak.py, where
    # auto-moderation hid a reported message under a volunteer's task).
    assert error["message"] == "The message this task works on was removed; ask for a new task."


@pytest.mark.django_db(transaction=True)
def test_deleting_a_message_ends_the_leases_on_it_and_its_tree_may_move_on(volunteer, bob):
    # Found by bench/soak.py: auto-moderation hid a reply under a volunteer's review task,
    # the tree moved to ranking (its only pending review was gone), and the lease stayed
    # live on a deleted message in a tree that no longer wanted the work.
    from backend.core.invariants import check_database

    moderator = volunteer(role=Role.MODERATOR)
    message_id = pending_reply().pk
    review_task = lease(bob, "label_assistant_reply")
    assert review_task["message_id"] == str(message_id)
    deleted = moderator.post(f"/api/v1/messages/{message_id}/delete/", {"reason": "spam"})
    assert deleted.status_code == 200, deleted.content

    slot = Message.objects.get(pk=message_id)
    assert (slot.deleted, slot.lease_task_id, slot.lease_until) == (True, None, None)
    assert Task.objects.get(pk=review_task["id"]).expires_at <= timezone.now()  # ended too
    broken = check_database()
    for rule in (
        "no live lease on a deleted message",
        "a live lease only on work its tree still needs",
        "a live leased task holds its slot",
    ):
        assert rule not in broken
    for _ in range(2):  # before and after the expiry job closes the task
        error = refuses_and_keeps(
            lambda: bob.submit(review_task["id"], key="k", labels=GOOD_LABELS),
            409,
            "tree_moved_on",
        )
        assert error["message"] == (
            "The message this task works on was removed; ask for a new task."
        )
        expire_tasks()
    assert Task.objects.get(pk=review_task["id"]).status == "expired"


# --- Skipping ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "body",
    [
        {"reason": "bored"},
        {"reason": ""},
        {},
        {"reason": "other", "note": "n" * 501},
    ],
)
def test_a_skip_without_a_known_reason_is_refused(bob, reply_task, body):
    field = "note" if "note" in body else "reason"
    refuses_and_keeps(
        lambda: bob.post(f"{TASKS}{reply_task['id']}/skip/", body), 400, "invalid_input", field
    )


def test_a_task_that_is_done_cannot_be_skipped(bob, reply_task):
    assert bob.submit(reply_task["id"], key="k", text="A reply.").status_code == 201
    refuses_and_keeps(
        lambda: bob.post(f"{TASKS}{reply_task['id']}/skip/", {"reason": "other"}),
        409,
        "task_already_done",
    )


def test_a_task_cannot_be_skipped_twice(bob, reply_task):
    skip = f"{TASKS}{reply_task['id']}/skip/"
    assert bob.post(skip, {"reason": "too_long"}).status_code == 200
    refuses_and_keeps(lambda: bob.post(skip, {"reason": "other"}), 409, "task_already_done")


# --- Reactions and reports -----------------------------------------------------------------


@pytest.fixture
def message() -> Message:
    return growing_root()


@pytest.mark.parametrize("emoji", ["thumbsup", "", "🙂", None])
def test_an_unknown_emoji_is_refused(bob, message, emoji):
    refuses_and_keeps(
        lambda: bob.post(f"/api/v1/messages/{message.id}/reactions/", {"emoji": emoji}),
        400,
        "invalid_input",
        "emoji",
    )


def test_taking_back_an_unknown_emoji_is_refused(bob, message):
    refuses_and_keeps(
        lambda: bob.client.delete(f"/api/v1/messages/{message.id}/reactions/thumbsup/"),
        400,
        "invalid_input",
        "emoji",
    )


def test_reacting_to_a_message_that_does_not_exist_is_not_found(bob, message):
    missing = uuid.uuid4()
    refuses_and_keeps(
        lambda: bob.post(f"/api/v1/messages/{missing}/reactions/", {"emoji": "+1"}),
        404,
        "not_found",
    )
    refuses_and_keeps(
        lambda: bob.client.delete(f"/api/v1/messages/{missing}/reactions/+1/"), 404, "not_found"
    )


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"reason": "boring"}, "reason"),
        ({}, "reason"),
        ({"reason": "spam", "text": "t" * 2001}, "text"),
    ],
)
def test_a_report_without_a_known_reason_is_refused(bob, message, body, field):
    refuses_and_keeps(
        lambda: bob.post(f"/api/v1/messages/{message.id}/reports/", body),
        400,
        "invalid_input",
        field,
    )


def test_a_second_open_report_of_the_same_message_is_refused(bob, message):
    path = f"/api/v1/messages/{message.id}/reports/"
    assert bob.post(path, {"reason": "spam"}).status_code == 201
    refuses_and_keeps(lambda: bob.post(path, {"reason": "offensive"}), 409, "conflict")


def test_reporting_a_message_that_does_not_exist_is_not_found(bob, message):
    refuses_and_keeps(
        lambda: bob.post(f"/api/v1/messages/{uuid.uuid4()}/reports/", {"reason": "spam"}),
        404,
        "not_found",
    )


# --- Profile, trees, availability ----------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"languages": ["en", "klingon"]}, "languages"),
        ({"languages": []}, "languages"),
        ({"languages": "en"}, "languages"),
        ({"display_name": "d" * 101}, "display_name"),
        ({"show_on_leaderboard": "sometimes"}, "show_on_leaderboard"),
    ],
)
def test_a_profile_change_with_bad_values_is_refused(bob, body, field):
    refuses_and_keeps(
        lambda: bob.client.patch("/api/v1/me/", body, format="json"), 400, "invalid_input", field
    )


def test_a_profile_change_is_all_or_nothing(bob):
    body = {"display_name": "Bobby", "languages": ["xx"]}
    refuses_and_keeps(
        lambda: bob.client.patch("/api/v1/me/", body, format="json"),
        400,
        "invalid_input",
        "languages",
    )


def test_listing_trees_in_an_unknown_state_is_refused(bob, message):
    refuses_and_keeps(
        lambda: bob.get("/api/v1/trees/", state="bogus"), 400, "invalid_input", "state"
    )


@pytest.mark.parametrize("query", [{}, {"lang": ""}, {"lang": "xx"}])
def test_availability_without_a_known_language_is_refused(bob, message, query):
    refuses_and_keeps(
        lambda: bob.get(f"{TASKS}availability/", **query), 400, "invalid_input", "lang"
    )


def test_a_tree_or_message_that_does_not_exist_is_not_found(bob):
    for path in (
        f"/api/v1/trees/{uuid.uuid4()}/",
        f"/api/v1/messages/{uuid.uuid4()}/",
        f"/api/v1/messages/{uuid.uuid4()}/conversation/",
    ):
        refuses_and_keeps(lambda path=path: bob.get(path), 404, "not_found")
