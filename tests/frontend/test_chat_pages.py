"""The chat pages through Django's test client: the list, a chat, the form that works
without JavaScript (the whole reply from a real tiny model), votes, reports, exclusion and
proposals, and nothing of anyone else's chat."""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse

from backend.assistant import services
from backend.assistant.models import Chat, ChatMessage, ChatReport
from backend.trees.models import Message
from tests.frontend.conftest import make_volunteer
from tests.inference import MODEL_ID

pytestmark = pytest.mark.django_db

QUESTION = "Which plants like shade?"


def answered(owner, *, vote: int = 0) -> tuple[Chat, ChatMessage]:  # type: ignore[no-untyped-def]
    chat = services.create_chat(owner=owner)
    question = services.add_user_message(chat=chat, user=owner, text=QUESTION)
    reply = services.save_reply(
        chat=chat,
        reply_to=question,
        text="**Ferns** and hostas.",
        model_name="m",
        finish_reason="stop",
    )
    if vote:
        reply = services.vote(message=reply, user=owner, value=vote)
    return chat, reply


def test_the_main_navigation_links_to_the_chat(newbie_client: Client) -> None:
    page = newbie_client.get(reverse("dashboard")).content.decode()
    assert f'href="{reverse("chats")}"' in page


def test_a_volunteer_starts_a_chat_from_the_list(newbie_client: Client, newbie) -> None:  # type: ignore[no-untyped-def]
    listing = newbie_client.get(reverse("chats"))
    assert listing.status_code == 200
    assert "No chats yet" in listing.content.decode()
    created = newbie_client.post(reverse("chats"))
    chat = Chat.objects.get(owner=newbie)
    assert created["Location"] == reverse("chat", args=[chat.id])
    page = newbie_client.get(created["Location"]).content.decode()
    assert f'data-socket="/ws/chat/{chat.id}/"' in page


def test_without_javascript_the_form_brings_back_the_whole_reply(  # type: ignore[no-untyped-def]
    newbie_client: Client, newbie, inference
) -> None:
    chat = services.create_chat(owner=newbie)
    response = newbie_client.post(reverse("chat", args=[chat.id]), {"text": QUESTION})
    assert response.status_code == 302
    question, reply = ChatMessage.objects.filter(chat=chat).order_by("created_at")
    assert (question.text, reply.role, reply.model_name) == (QUESTION, "assistant", MODEL_ID)
    page = newbie_client.get(reverse("chat", args=[chat.id])).content.decode()
    assert QUESTION in page
    assert f'id="c-{reply.id}"' in page
    assert reverse("chat_vote", args=[chat.id, reply.id]) in page


def test_the_page_says_when_the_server_is_down_and_keeps_the_message(  # type: ignore[no-untyped-def]
    newbie_client: Client, newbie, inference_down
) -> None:
    chat = services.create_chat(owner=newbie)
    response = newbie_client.post(reverse("chat", args=[chat.id]), {"text": QUESTION}, follow=True)
    page = response.content.decode()
    assert "The assistant cannot be reached right now" in page
    assert QUESTION in page
    assert ChatMessage.objects.get(chat=chat).text == QUESTION


def test_the_page_says_when_the_assistant_is_switched_off(  # type: ignore[no-untyped-def]
    newbie_client: Client, newbie, settings
) -> None:
    settings.INFERENCE_URL = ""
    chat = services.create_chat(owner=newbie)
    page = newbie_client.get(reverse("chat", args=[chat.id])).content.decode()
    assert "The assistant is switched off on this site" in page
    assert "chat.js" not in page
    assert "switched off" in newbie_client.get(reverse("chats")).content.decode()


def test_someone_elses_chat_is_not_found(newbie_client: Client) -> None:
    chat, reply = answered(make_volunteer("other"), vote=1)
    assert newbie_client.get(reverse("chat", args=[chat.id])).status_code == 404
    assert newbie_client.post(reverse("chat", args=[chat.id]), {"text": "hi"}).status_code == 404
    for name in ("chat_vote", "chat_propose", "chat_report"):
        assert newbie_client.post(reverse(name, args=[chat.id, reply.id])).status_code == 404
    assert newbie_client.post(reverse("chat_exclude", args=[chat.id])).status_code == 404
    assert newbie_client.post(reverse("chat_delete", args=[chat.id])).status_code == 404
    assert Chat.objects.filter(pk=chat.pk).exists()
    assert QUESTION not in newbie_client.get(reverse("chats")).content.decode()


def test_a_vote_from_the_page_script_returns_the_replys_new_html(
    newbie_client: Client, newbie
) -> None:  # type: ignore[no-untyped-def]
    chat, reply = answered(newbie)
    url = reverse("chat_vote", args=[chat.id, reply.id])
    response = newbie_client.post(url, {"vote": "1"}, HTTP_ACCEPT="application/json")
    body = response.json()
    assert body["vote"] == 1
    assert 'aria-pressed="true"' in body["html"]
    assert "Offer my question as a new prompt" in body["html"]
    # Without the script: back to the reply.
    plain = newbie_client.post(url, {"vote": "-1"})
    assert plain["Location"].endswith(f"#c-{reply.id}")
    reply.refresh_from_db()
    assert reply.vote == -1
    assert newbie_client.post(url, {"vote": "7"}, HTTP_ACCEPT="application/json").status_code == 400


def test_a_proposed_question_becomes_a_prompt_in_review(newbie_client: Client, newbie) -> None:  # type: ignore[no-untyped-def]
    chat, reply = answered(newbie, vote=1)
    response = newbie_client.post(reverse("chat_propose", args=[chat.id, reply.id]), follow=True)
    assert "now a prompt waiting for review" in response.content.decode()
    prompt = Message.objects.get()
    assert (prompt.text, prompt.author_id, prompt.tree.state) == (
        QUESTION,
        newbie.id,
        "initial_prompt_review",
    )


def test_an_excluded_chat_offers_no_proposals(newbie_client: Client, newbie) -> None:  # type: ignore[no-untyped-def]
    chat, reply = answered(newbie, vote=1)
    newbie_client.post(reverse("chat_exclude", args=[chat.id]), {"excluded": "1"})
    chat.refresh_from_db()
    assert chat.excluded_from_training
    page = newbie_client.get(reverse("chat", args=[chat.id])).content.decode()
    assert "Offer my question as a new prompt" not in page
    assert "Excluded from training" in page
    response = newbie_client.post(reverse("chat_propose", args=[chat.id, reply.id]), follow=True)
    assert "excluded from training" in response.content.decode()
    assert not Message.objects.exists()


def test_a_reply_is_reported_from_its_page(newbie_client: Client, newbie) -> None:  # type: ignore[no-untyped-def]
    chat, reply = answered(newbie)
    url = reverse("chat_report", args=[chat.id, reply.id])
    form = newbie_client.get(url).content.decode()
    assert "Ferns" in form
    response = newbie_client.post(url, {"reason": "incorrect", "text": "not true"}, follow=True)
    assert "kept for the moderators" in response.content.decode()
    assert ChatReport.objects.get().message_id == reply.id
    page = newbie_client.get(reverse("chat", args=[chat.id])).content.decode()
    assert "Reported" in page


def test_a_chat_is_deleted_from_its_page(newbie_client: Client, newbie) -> None:  # type: ignore[no-untyped-def]
    chat, _reply = answered(newbie)
    response = newbie_client.post(reverse("chat_delete", args=[chat.id]))
    assert response["Location"] == reverse("chats")
    assert not Chat.objects.exists()


def test_moderators_review_reported_chat_replies_on_their_page(
    newbie_client: Client, newbie
) -> None:  # type: ignore[no-untyped-def]
    from backend.accounts.models import Role

    _chat, reply = answered(newbie)
    report = services.report_reply(message=reply, user=newbie, reason="offensive", text="rude")
    assert newbie_client.get(reverse("chat_reports")).status_code == 403

    moderator = make_volunteer("mod")
    moderator.role = Role.MODERATOR
    moderator.save(update_fields=["role"])
    client = Client()
    client.force_login(moderator)
    page = client.get(reverse("chat_reports")).content.decode()
    assert "rude" in page
    assert QUESTION in page
    assert "<strong>Ferns</strong>" in page
    client.post(reverse("chat_reports"), {"report": str(report.id)})
    report.refresh_from_db()
    assert report.resolved_by == moderator
    assert "No open reports of chat replies" in client.get(reverse("chat_reports")).content.decode()
