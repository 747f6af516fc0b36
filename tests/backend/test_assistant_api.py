"""The chat API, /api/v1/chats/: owner only, votes, reports, exclusion, bad input, replies
from a real (tiny) inference server, and up-voted turns proposed as prompts for review."""

from __future__ import annotations

import uuid

import pytest

from backend.assistant import services
from backend.assistant.models import ChatMessage, ChatReport
from backend.moderation.models import Report
from backend.tasks import services as tasks
from backend.trees.models import Message
from backend.trees.rules import State
from tests.inference import MODEL_ID

pytestmark = pytest.mark.django_db

QUESTION = "What is a prime number?"


def answered_chat(owner, *, vote: int = 0):  # type: ignore[no-untyped-def]
    """A chat with one question and the model's reply (saved as the consumer saves it)."""
    chat = services.create_chat(owner=owner)
    question = services.add_user_message(chat=chat, user=owner, text=QUESTION)
    reply = services.save_reply(
        chat=chat,
        reply_to=question,
        text="A number with two divisors.",
        model_name="m",
        finish_reason="stop",
    )
    if vote:
        services.vote(message=reply, user=owner, value=vote)
        reply.refresh_from_db()
    return chat, question, reply


def test_a_volunteer_creates_lists_and_reads_their_chats(bob) -> None:  # type: ignore[no-untyped-def]
    created = bob.post("/api/v1/chats/", {"title": "Basil"})
    assert created.status_code == 201, created.content
    chat_id = created.json()["id"]
    listed = bob.get("/api/v1/chats/").json()
    assert [c["id"] for c in listed["results"]] == [chat_id]
    detail = bob.get(f"/api/v1/chats/{chat_id}/").json()
    assert detail["title"] == "Basil"
    assert detail["messages"] == []
    assert detail["excluded_from_training"] is False


def test_sending_a_message_returns_the_models_whole_reply(bob, inference) -> None:  # type: ignore[no-untyped-def]
    chat_id = bob.post("/api/v1/chats/").json()["id"]
    response = bob.post(f"/api/v1/chats/{chat_id}/messages/", {"text": QUESTION})
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["message"]["text"] == QUESTION
    assert body["reply"]["role"] == "assistant"
    assert body["reply"]["model_name"] == MODEL_ID
    assert body["reply"]["reply_to_id"] == body["message"]["id"]
    listed = bob.get(f"/api/v1/chats/{chat_id}/messages/").json()
    assert [m["role"] for m in listed] == ["user", "assistant"]
    assert bob.get(f"/api/v1/chats/{chat_id}/").json()["title"] == QUESTION


def test_a_server_that_is_down_answers_503_and_the_message_is_kept(bob, inference_down) -> None:  # type: ignore[no-untyped-def]
    chat_id = bob.post("/api/v1/chats/").json()["id"]
    response = bob.post(f"/api/v1/chats/{chat_id}/messages/", {"text": QUESTION})
    assert response.status_code == 503
    error = response.json()["error"]
    assert error["code"] == "inference_unavailable"
    kept = ChatMessage.objects.get(chat_id=chat_id)
    assert error["user_message_id"] == str(kept.id)
    assert kept.text == QUESTION


def test_without_an_inference_server_nothing_is_sent(bob, settings) -> None:  # type: ignore[no-untyped-def]
    settings.INFERENCE_URL = ""
    chat_id = bob.post("/api/v1/chats/").json()["id"]
    response = bob.post(f"/api/v1/chats/{chat_id}/messages/", {"text": QUESTION})
    assert response.status_code == 503
    assert response.json()["error"]["code"] == "inference_off"
    assert not ChatMessage.objects.exists()


def test_someone_elses_chat_is_not_found_for_every_action(bob, carol) -> None:  # type: ignore[no-untyped-def]
    chat, _question, reply = answered_chat(bob.user, vote=1)
    base = f"/api/v1/chats/{chat.id}/"
    assert carol.get(base).status_code == 404
    assert carol.get(f"{base}messages/").status_code == 404
    assert carol.client.patch(base, {"title": "mine"}, format="json").status_code == 404
    assert carol.client.delete(base).status_code == 404
    assert carol.post(f"{base}messages/", {"text": "hi"}).status_code == 404
    for action, body in (
        ("vote", {"vote": -1}),
        ("report", {"reason": "spam"}),
        ("propose", {}),
    ):
        response = carol.post(f"{base}messages/{reply.id}/{action}/", body)
        assert response.status_code == 404, action
        assert response.json()["error"]["code"] == "not_found"
    assert carol.get("/api/v1/chats/").json()["results"] == []
    reply.refresh_from_db()
    assert reply.vote == 1
    assert not ChatReport.objects.exists()


def test_anonymous_clients_are_refused(client) -> None:  # type: ignore[no-untyped-def]
    assert client.get("/api/v1/chats/").status_code == 401


def test_the_owner_votes_on_a_reply_and_takes_the_vote_back(bob) -> None:  # type: ignore[no-untyped-def]
    chat, question, reply = answered_chat(bob.user)
    url = f"/api/v1/chats/{chat.id}/messages/{reply.id}/vote/"
    assert bob.post(url, {"vote": -1}).json()["vote"] == -1
    assert bob.post(url, {"vote": 1}).json()["vote"] == 1
    assert bob.post(url, {"vote": 0}).json()["vote"] == 0
    bad = bob.post(url, {"vote": 2})
    assert bad.status_code == 400
    assert "vote" in bad.json()["error"]["fields"]
    own = bob.post(f"/api/v1/chats/{chat.id}/messages/{question.id}/vote/", {"vote": 1})
    assert own.status_code == 400  # only the assistant's replies are voted on
    reply.refresh_from_db()
    assert reply.vote == 0


def test_a_reply_is_reported_once_with_a_reason(bob) -> None:  # type: ignore[no-untyped-def]
    chat, _question, reply = answered_chat(bob.user)
    url = f"/api/v1/chats/{chat.id}/messages/{reply.id}/report/"
    assert bob.post(url, {"reason": "nonsense"}).status_code == 400
    first = bob.post(url, {"reason": "incorrect", "text": "wrong maths"})
    assert first.status_code == 201, first.content
    assert bob.post(url, {"reason": "spam"}).status_code == 409
    report = ChatReport.objects.get()
    assert (report.message_id, report.reason, report.text) == (reply.id, "incorrect", "wrong maths")
    detail = bob.get(f"/api/v1/chats/{chat.id}/").json()
    assert [m["is_reported"] for m in detail["messages"]] == [False, True]


def test_a_chat_is_renamed_and_excluded_from_training(bob) -> None:  # type: ignore[no-untyped-def]
    chat, _question, _reply = answered_chat(bob.user)
    url = f"/api/v1/chats/{chat.id}/"
    response = bob.client.patch(url, {"excluded_from_training": True}, format="json")
    assert response.status_code == 200
    assert response.json()["excluded_from_training"] is True
    assert (
        bob.client.patch(url, {"excluded_from_training": "maybe"}, format="json").status_code == 400
    )
    chat.refresh_from_db()
    assert chat.excluded_from_training is True


def test_bad_input_is_refused_with_the_fields_named(bob) -> None:  # type: ignore[no-untyped-def]
    chat_id = bob.post("/api/v1/chats/").json()["id"]
    empty = bob.post(f"/api/v1/chats/{chat_id}/messages/", {"text": "   "})
    assert empty.status_code == 400
    assert "text" in empty.json()["error"]["fields"]
    missing = bob.post(f"/api/v1/chats/{chat_id}/messages/", {})
    assert missing.status_code == 400
    too_long = bob.post(f"/api/v1/chats/{chat_id}/messages/", {"text": "x" * 2001})
    assert too_long.status_code == 400
    assert bob.get(f"/api/v1/chats/{uuid.uuid4()}/").status_code == 404
    assert not ChatMessage.objects.exists()


def test_a_chat_is_deleted_with_its_messages(bob) -> None:  # type: ignore[no-untyped-def]
    chat, _question, _reply = answered_chat(bob.user)
    assert bob.client.delete(f"/api/v1/chats/{chat.id}/").status_code == 204
    assert not ChatMessage.objects.exists()


# --- Up-voted turns become initial prompts ---------------------------------------------------


def test_an_upvoted_turn_becomes_an_initial_prompt_in_review(bob, carol, settings) -> None:  # type: ignore[no-untyped-def]
    chat, question, reply = answered_chat(bob.user, vote=1)
    url = f"/api/v1/chats/{chat.id}/messages/{reply.id}/propose/"
    response = bob.post(url, {"lang": "en"})
    assert response.status_code == 201, response.content
    prompt = Message.objects.select_related("tree").get(pk=response.json()["prompt_id"])
    assert (prompt.text, prompt.author_id, prompt.parent_id) == (QUESTION, bob.user.id, None)
    assert prompt.tree.state == State.INITIAL_PROMPT_REVIEW
    assert prompt.synthetic is False
    question.refresh_from_db()
    assert question.proposed_prompt_id == prompt.id
    # Another volunteer gets it to review, like any volunteer's prompt.
    task = carol.request_task("label_initial_prompt").json()
    assert task["conversation"][-1]["id"] == str(prompt.id)
    # Once only.
    again = bob.post(url, {"lang": "en"})
    assert again.status_code == 409


def test_only_upvoted_turns_of_included_chats_can_be_proposed(bob) -> None:  # type: ignore[no-untyped-def]
    chat, _question, reply = answered_chat(bob.user)
    url = f"/api/v1/chats/{chat.id}/messages/{reply.id}/propose/"
    not_voted = bob.post(url)
    assert not_voted.status_code == 400
    bob.post(f"/api/v1/chats/{chat.id}/messages/{reply.id}/vote/", {"vote": 1})
    bob.client.patch(f"/api/v1/chats/{chat.id}/", {"excluded_from_training": True}, format="json")
    excluded = bob.post(url)
    assert excluded.status_code == 403
    assert bob.post(url.replace("propose", "vote"), {"vote": 1}).status_code == 200
    assert bob.post(url, {"lang": "xx"}).status_code in (400, 403)
    assert not Message.objects.exists()


def test_a_proposal_passes_the_same_checks_as_a_prompt_written_in_a_task(bob) -> None:  # type: ignore[no-untyped-def]
    # A near-duplicate of a live prompt is refused; personal data goes to the moderators.
    tasks.propose_prompt(user=bob.user, text=QUESTION, lang="en")
    chat, _question, reply = answered_chat(bob.user, vote=1)
    refused = bob.post(f"/api/v1/chats/{chat.id}/messages/{reply.id}/propose/")
    assert refused.status_code == 409
    assert refused.json()["error"]["code"] == "duplicate_prompt"
    assert Message.objects.count() == 1

    prompt = tasks.propose_prompt(
        user=bob.user, text="Write to me at jane.roe@mailbox.org about my plants.", lang="en"
    )
    (report,) = Report.objects.filter(message=prompt)
    assert report.reporter is None
    assert report.details == {"pii": ["email"]}


def test_a_proposal_waits_when_the_review_queue_is_full(bob, settings) -> None:  # type: ignore[no-untyped-def]
    settings.CHORUS_TREE = {**settings.CHORUS_TREE, "max_prompts_in_review": 0}
    chat, _question, reply = answered_chat(bob.user, vote=1)
    response = bob.post(f"/api/v1/chats/{chat.id}/messages/{reply.id}/propose/")
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "prompt_queue_full"
    assert not Message.objects.exists()


# --- Moderators -----------------------------------------------------------------------------


def test_moderators_see_reported_replies_with_their_question_and_resolve_them(  # type: ignore[no-untyped-def]
    bob, moderator
) -> None:
    _chat, _question, reply = answered_chat(bob.user)
    services.report_reply(message=reply, user=bob.user, reason="incorrect", text="wrong")

    assert bob.get("/api/v1/moderation/chat-reports/").status_code == 403
    (item,) = moderator.get("/api/v1/moderation/chat-reports/").json()
    assert (item["reply_id"], item["question"], item["reason"]) == (
        str(reply.id),
        QUESTION,
        "incorrect",
    )
    assert item["reporter"] == bob.user.username

    url = f"/api/v1/moderation/chat-reports/{item['id']}/resolve/"
    assert bob.post(url).status_code == 403
    assert moderator.post(url).status_code == 200
    assert moderator.get("/api/v1/moderation/chat-reports/").json() == []
    report = ChatReport.objects.get()
    assert report.resolved_by == moderator.user
    assert (
        moderator.post(f"/api/v1/moderation/chat-reports/{uuid.uuid4()}/resolve/").status_code
        == 404
    )


def test_a_whole_reply_is_read_as_a_stream_and_refused_past_its_deadline(inference) -> None:  # type: ignore[no-untyped-def]
    import time

    from backend.assistant.inference import Turn, complete_reply
    from backend.core.errors import InferenceTimeout

    turns = [Turn(role="user", content=QUESTION)]
    reply = complete_reply(turns)
    assert reply.model == MODEL_ID
    assert reply.text
    with pytest.raises(InferenceTimeout):
        complete_reply(turns, deadline=time.monotonic() - 1)


def test_a_stalled_server_answers_504_and_the_message_is_kept(bob, inference_stalled) -> None:  # type: ignore[no-untyped-def]
    chat_id = bob.post("/api/v1/chats/").json()["id"]
    response = bob.post(f"/api/v1/chats/{chat_id}/messages/", {"text": QUESTION})
    assert response.status_code == 504
    assert response.json()["error"]["code"] == "inference_timeout"
    assert ChatMessage.objects.get(chat_id=chat_id).text == QUESTION


def test_a_banned_owner_is_told_they_are_banned_even_with_the_assistant_off(  # type: ignore[no-untyped-def]
    bob, settings
) -> None:
    chat, _question, _reply = answered_chat(bob.user)
    bob.user.is_banned = True
    bob.user.save(update_fields=["is_banned"])
    settings.INFERENCE_URL = ""
    response = bob.post(f"/api/v1/chats/{chat.id}/messages/", {"text": "Still here?"})
    assert response.status_code == 403, response.content
    assert response.json()["error"]["code"] == "user_banned"
    assert ChatMessage.objects.filter(chat=chat).count() == 2
