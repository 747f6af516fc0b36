"""End to end in Chromium: a volunteer chats with the served (tiny) model, watches the reply
arrive piece by piece over the WebSocket, votes on it and offers the question as a prompt."""

from __future__ import annotations

import json
import time

import pytest

from backend.assistant.models import ChatMessage
from backend.trees.models import Message
from tests.frontend.conftest import PASSWORD, make_volunteer

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

QUESTION = "How do I keep basil alive on a windowsill?"

# Records the length of the reply being written each time it changes.
WATCH_STREAM = """() => {
  window.streamLengths = [];
  new MutationObserver(() => {
    const body = document.querySelector(".chat-msg.streaming .chat-stream");
    if (body) window.streamLengths.push(body.textContent.length);
  }).observe(document.getElementById("chat-log"),
             {childList: true, subtree: true, characterData: true});
}"""


def test_a_volunteer_sees_the_reply_stream_in_and_votes_on_it(  # type: ignore[no-untyped-def]
    new_live_page, camera, inference, settings
) -> None:
    settings.INFERENCE_MAX_TOKENS = 120
    make_volunteer("chatter")
    page = new_live_page()
    page.goto("/accounts/login/")
    page.fill("input[name=login]", "chatter")
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.get_by_role("link", name="Chat", exact=True).click()
    camera.shoot(page, "chat-list")

    with page.expect_websocket(lambda ws: "/ws/chat/" in ws.url) as opened:
        page.get_by_role("button", name="New chat").first.click()
    socket = opened.value
    frames: list[dict] = []
    socket.on("framereceived", lambda payload: frames.append(json.loads(payload)))
    page.wait_for_function("() => document.getElementById('chat-send') !== null")
    page.evaluate(WATCH_STREAM)
    time.sleep(0.2)  # the socket's open handler ran

    page.get_by_label("Your message").fill(QUESTION)
    page.get_by_role("button", name="Send").click()
    page.wait_for_function("() => (window.streamLengths || []).some(n => n > 0)")
    camera.shoot(page, "streaming")
    reply = page.locator(".chat-msg.role-assistant:not(.streaming)")
    reply.wait_for()
    camera.shoot(page, "answered")

    kinds = [frame["type"] for frame in frames]
    assert kinds[0] == "message"
    assert kinds[-1] == "done"
    assert kinds.count("delta") >= 2, kinds
    growth = page.evaluate("window.streamLengths")
    assert len(set(growth) - {0}) >= 2, growth  # the text grew in view before it was done
    assert growth == sorted(growth)
    saved = ChatMessage.objects.get(role="assistant")
    assert saved.text == "".join(f["text"] for f in frames if f["type"] == "delta")
    assert page.locator(".chat-msg.role-prompter").inner_text().count(QUESTION) == 1
    assert page.get_by_role("heading", level=1).inner_text() == QUESTION  # named by it

    reply.get_by_role("button", name="Good answer").click()
    page.locator(".vote-up[aria-pressed=true]").wait_for()
    saved.refresh_from_db()
    assert saved.vote == 1
    camera.shoot(page, "voted")

    page.get_by_role("button", name="Offer my question as a new prompt").click()
    page.get_by_text("now a prompt waiting for review").wait_for()
    camera.shoot(page, "proposed")
    assert Message.objects.get().text == QUESTION


def test_the_chat_says_so_when_the_inference_server_is_down(  # type: ignore[no-untyped-def]
    new_live_page, camera, inference_down
) -> None:
    make_volunteer("unlucky")
    page = new_live_page(width=390, height=800)  # a phone
    page.goto("/accounts/login/")
    page.fill("input[name=login]", "unlucky")
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.goto("/chat/")
    with page.expect_websocket(lambda ws: "/ws/chat/" in ws.url):
        page.get_by_role("button", name="New chat").first.click()
    time.sleep(0.2)
    page.get_by_label("Your message").fill(QUESTION)
    page.get_by_role("button", name="Send").click()
    alert = page.get_by_role("alert")
    alert.wait_for()
    assert "cannot be reached" in alert.inner_text()
    assert QUESTION in page.locator(".chat-msg.role-prompter").inner_text()
    assert page.get_by_role("button", name="Send").is_enabled()
    camera.shoot(page, "server-down")
