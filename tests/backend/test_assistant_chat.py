"""Chats with the served model: the WebSocket stream, the API, votes, reports, exclusion
and up-voted turns proposed as prompts, against a real (tiny) inference server."""

from __future__ import annotations

import pytest
from channels.testing import WebsocketCommunicator
from django.test import Client

from backend.accounts.models import User
from backend.accounts.services import create_user
from backend.asgi import application
from backend.assistant import services
from backend.assistant.models import Chat, ChatMessage
from tests.conftest import run_async
from tests.inference import MODEL_ID

QUESTION = "How do I keep basil alive on a windowsill?"


def session_cookie(user) -> str:  # type: ignore[no-untyped-def]
    client = Client()
    client.force_login(user)
    return f"sessionid={client.cookies['sessionid'].value}"


def chat_socket(chat: Chat, cookie: str) -> WebsocketCommunicator:
    return WebsocketCommunicator(
        application,
        f"/ws/chat/{chat.id}/",
        headers=[(b"cookie", cookie.encode()), (b"origin", b"http://localhost")],
    )


async def converse(chat: Chat, cookie: str, text: str) -> list[dict]:
    """Send one message and collect the events up to the last one (done, error...)."""
    socket = chat_socket(chat, cookie)
    connected, code = await socket.connect()
    assert connected, code
    await socket.send_json_to({"type": "send", "text": text})
    events = []
    while not events or events[-1]["type"] in ("message", "delta"):
        events.append(await socket.receive_json_from(timeout=30))
    await socket.disconnect()
    return events


def a_chat(username: str = "ada") -> Chat:
    owner = create_user(username=username, languages=["en"], accepted_terms_version=1)
    return services.create_chat(owner=owner)


# --- The WebSocket ---------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_the_reply_streams_in_several_pieces_before_it_is_saved_whole(inference) -> None:
    chat = a_chat()
    events = run_async(converse, chat, session_cookie(chat.owner), QUESTION)

    kinds = [event["type"] for event in events]
    assert kinds[0] == "message"
    assert events[0]["chat_title"] == QUESTION
    assert kinds[-1] == "done"
    deltas = [event["text"] for event in events if event["type"] == "delta"]
    assert len(deltas) >= 2, kinds
    question, reply = ChatMessage.objects.filter(chat=chat).order_by("created_at")
    assert (question.role, question.text) == ("user", QUESTION)
    assert (reply.role, reply.reply_to_id, reply.model_name) == ("assistant", question.id, MODEL_ID)
    assert reply.text == "".join(deltas)
    assert events[-1]["message"]["id"] == str(reply.id)
    assert f'id="c-{reply.id}"' in events[-1]["message"]["html"]
    chat.refresh_from_db()
    assert chat.title == QUESTION
    assert chat.model_name == MODEL_ID


@pytest.mark.django_db(transaction=True)
def test_the_model_reads_the_whole_conversation_on_the_second_turn(inference) -> None:
    from backend.assistant.selectors import chat_turns

    chat = a_chat()
    cookie = session_cookie(chat.owner)
    run_async(converse, chat, cookie, QUESTION)
    events = run_async(converse, chat, cookie, "And in winter?")
    assert events[-1]["type"] == "done"
    roles = [turn.role for turn in chat_turns(chat)]
    assert roles == ["user", "assistant", "user", "assistant"]


@pytest.mark.django_db(transaction=True)
def test_a_server_that_is_down_gives_a_clear_error_and_keeps_the_message(inference_down) -> None:
    chat = a_chat()
    events = run_async(converse, chat, session_cookie(chat.owner), QUESTION)

    assert [e["type"] for e in events] == ["message", "error"]
    assert events[-1]["code"] == "inference_unavailable"
    assert "cannot be reached" in events[-1]["message"]
    kept = ChatMessage.objects.get(chat=chat)
    assert (kept.role, kept.text) == ("user", QUESTION)
    assert events[-1]["user_message_id"] == str(kept.id)


@pytest.mark.django_db(transaction=True)
def test_a_server_that_stalls_is_reported_as_slow(inference_stalled) -> None:
    chat = a_chat()
    events = run_async(converse, chat, session_cookie(chat.owner), QUESTION)

    assert events[-1]["type"] == "error"
    assert events[-1]["code"] == "inference_timeout"
    assert ChatMessage.objects.filter(chat=chat, role="user").count() == 1
    assert not ChatMessage.objects.filter(chat=chat, role="assistant").exists()


@pytest.mark.django_db(transaction=True)
def test_the_socket_says_so_when_the_assistant_is_switched_off(settings) -> None:
    settings.INFERENCE_URL = ""
    chat = a_chat()
    events = run_async(converse, chat, session_cookie(chat.owner), QUESTION)
    assert [(e["type"], e.get("code")) for e in events] == [("error", "inference_off")]
    assert not ChatMessage.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_a_banned_owner_is_told_so_on_the_socket_even_with_the_assistant_off(settings) -> None:
    # The socket makes the checks of the API and the plain form, in the same order.
    settings.INFERENCE_URL = ""
    chat = a_chat()
    cookie = session_cookie(chat.owner)
    User.objects.filter(pk=chat.owner_id).update(is_banned=True)
    events = run_async(converse, chat, cookie, QUESTION)
    assert [(e["type"], e.get("code")) for e in events] == [("error", "user_banned")]
    assert not ChatMessage.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_a_stopped_reply_keeps_what_came_so_far(inference, settings) -> None:
    settings.INFERENCE_MAX_TOKENS = 400
    chat = a_chat()
    cookie = session_cookie(chat.owner)

    async def scenario() -> list[dict]:
        socket = chat_socket(chat, cookie)
        await socket.connect()
        await socket.send_json_to({"type": "send", "text": QUESTION})
        events = [await socket.receive_json_from(timeout=30)]  # the user's message
        events.append(await socket.receive_json_from(timeout=30))  # the first piece
        await socket.send_json_to({"type": "cancel"})
        while events[-1]["type"] == "delta":
            events.append(await socket.receive_json_from(timeout=30))
        await socket.disconnect()
        return events

    events = run_async(scenario)
    assert events[-1]["type"] == "cancelled"
    reply = ChatMessage.objects.get(chat=chat, role="assistant")
    assert reply.finish_reason == "cancelled"
    assert reply.text == "".join(e["text"] for e in events if e["type"] == "delta")


@pytest.mark.django_db(transaction=True)
def test_only_the_owner_may_open_a_chats_socket(inference) -> None:
    chat = a_chat()
    cookie = session_cookie(create_user(username="eve", accepted_terms_version=1))

    async def scenario() -> tuple:
        foreign = chat_socket(chat, cookie)
        anonymous = WebsocketCommunicator(
            application, f"/ws/chat/{chat.id}/", headers=[(b"origin", b"http://localhost")]
        )
        return await foreign.connect(), await anonymous.connect()

    (connected, code), (anonymous_connected, anonymous_code) = run_async(scenario)
    assert (connected, code) == (False, 4403)
    assert (anonymous_connected, anonymous_code) == (False, 4401)


@pytest.mark.django_db(transaction=True)
def test_an_empty_message_is_refused_on_the_socket_and_nothing_is_saved(inference) -> None:
    chat = a_chat()
    events = run_async(converse, chat, session_cookie(chat.owner), "   ")
    assert [(e["type"], e.get("code")) for e in events] == [("error", "invalid_input")]
    assert not ChatMessage.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_garbage_on_the_socket_gets_an_error_and_the_chat_goes_on(inference) -> None:
    chat = a_chat()
    cookie = session_cookie(chat.owner)

    async def scenario() -> list[dict]:
        socket = chat_socket(chat, cookie)
        await socket.connect()
        await socket.send_to(text_data="not json")
        await socket.send_json_to({"type": "dance"})
        answers = [await socket.receive_json_from(timeout=5) for _ in range(2)]
        await socket.send_json_to({"type": "send", "text": QUESTION})
        answers.append(await socket.receive_json_from(timeout=30))
        await socket.disconnect()
        return answers

    answers = run_async(scenario)
    assert [(a["type"], a.get("code")) for a in answers[:2]] == [("error", "invalid_input")] * 2
    assert answers[2]["type"] == "message"
