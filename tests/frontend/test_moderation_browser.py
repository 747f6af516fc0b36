"""A report reaches a moderator live, and the moderator's edit sends the message back to
review: two people in two browsers on the real ASGI application (WebSockets included)."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect
from rest_framework.test import APIClient

from backend.accounts.models import Role, User
from backend.accounts.services import (
    accept_terms,
    complete_tutorial,
    create_api_client,
    create_user,
)
from backend.core.demo import Crowd
from backend.moderation.models import Action, AuditEntry, Report
from backend.moderation.services import ban_user, edit_message, report_message
from backend.trees.models import Message, MessageRevision, Review
from tests.frontend.conftest import PASSWORD, make_volunteer

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

ANSWER = "Give it six hours of sun and water it when the top soil is dry."
EDITED = "Give basil six hours of sun a day, and water it when the top soil feels dry."


def log_in(page, username: str) -> None:  # type: ignore[no-untyped-def]
    page.goto("/accounts/login/")
    page.fill("input[name=login]", username)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_load_state()


def reviewed_answer() -> Message:
    """An accepted assistant reply, with its review, under an accepted prompt."""
    users = {
        name: create_user(username=name, languages=["en"], accepted_terms_version=1)
        for name in ("ann", "bea", "cem")
    }
    crowd = Crowd(users)
    root = crowd.prompt("ann", "How do I keep basil alive on a windowsill?", lang="en")
    crowd.review("bea", root)
    crowd.ensure_growing(root)
    answer = crowd.reply("bea", root, ANSWER)
    crowd.review("cem", answer)
    answer.refresh_from_db()
    assert answer.review_result is True
    return answer


def test_a_report_arrives_live_and_an_edit_sends_the_message_back_to_review(
    new_live_page, camera, quick_trees
):
    answer = reviewed_answer()
    make_volunteer("rae")
    moderator = create_user(username="mo", password=PASSWORD, role=Role.MODERATOR)
    accept_terms(user=moderator)
    complete_tutorial(user=moderator)

    # The moderator has the queue open, its live feed connected.
    mod = new_live_page()
    log_in(mod, "mo")
    with mod.expect_websocket(lambda ws: ws.url.endswith("/ws/moderation/")) as feed:
        mod.goto("/moderation/")
    expect(mod.locator("[data-empty]")).to_be_visible()
    feed.value  # noqa: B018 (connected)
    camera.shoot(mod, "queue-empty")

    # A volunteer reports the answer from the tree page.
    volunteer = new_live_page(width=390, height=844)  # a phone
    log_in(volunteer, "rae")
    volunteer.goto(f"/trees/{answer.tree_id}/")
    volunteer.locator(f"#m-{answer.id} .report-link").click()
    volunteer.select_option("select[name=reason]", "incorrect")
    volunteer.fill("textarea[name=text]", "This is not quite right about the watering.")
    camera.shoot(volunteer, "report-form")
    volunteer.get_by_role("button", name="Send report").click()
    volunteer.wait_for_load_state()
    assert Report.objects.filter(message=answer, resolved_at=None).count() == 1
    camera.shoot(volunteer, "reported")

    # The card arrives on the moderator's page without a reload, ready to act on.
    card = mod.locator(f'[data-message="{answer.id}"]')
    expect(card).to_be_visible()
    expect(card).to_contain_text("not quite right about the watering")
    expect(mod.locator("[data-empty]")).to_have_count(0)
    token = card.locator('input[name="csrfmiddlewaretoken"]').first.get_attribute("value")
    assert token, "a card that arrived live has no CSRF token"
    camera.shoot(mod, "report-arrived")

    # The moderator opens it and edits the text, saying why.
    card.get_by_role("link", name="Open").click()
    expect(mod).to_have_url(re.compile(f"/moderation/messages/{answer.id}/$"))
    # A blank reason (spaces pass the browser's `required`) is refused in the form, and the
    # edited text is kept for the second try.
    mod.fill("#edit-text", EDITED)
    mod.fill("#edit-reason", "   ")
    mod.get_by_role("button", name="Save the edit").click()
    expect(mod.locator(".errors")).to_contain_text(
        "“Reason (goes into the audit log)” is empty; please fill it in."
    )
    expect(mod.locator("#edit-text")).to_have_value(EDITED)
    assert not MessageRevision.objects.exists()
    camera.shoot(mod, "edit-refused")
    mod.fill("#edit-reason", "Clearer watering advice")
    mod.get_by_role("button", name="Save the edit").click()
    expect(mod.locator(".messages")).to_contain_text("The message was edited")
    expect(mod.locator(".conversation")).to_contain_text("six hours of sun a day")
    revisions = mod.locator(".revisions")
    expect(revisions).to_contain_text(ANSWER)
    expect(revisions).to_contain_text("Clearer watering advice")
    expect(mod.locator('tr[data-action="message_edit"]')).to_contain_text("mo")
    camera.shoot(mod, "edited")

    mod.goto("/moderation/audit/")
    expect(mod.locator('tr[data-action="message_edit"]')).to_contain_text("Clearer watering advice")
    camera.shoot(mod, "audit-log")

    revision = MessageRevision.objects.get(message=answer)
    assert (revision.previous_text, revision.editor_id) == (ANSWER, moderator.pk)
    assert AuditEntry.objects.filter(action=Action.MESSAGE_EDIT, target_id=str(answer.pk)).exists()

    # Its review went stale: it is back in the review queue, and a volunteer gets it.
    answer.refresh_from_db()
    assert (answer.text, answer.review_count, answer.review_result) == (EDITED, 0, None)
    assert Review.objects.filter(message=answer, is_stale=True).count() == 1
    reviewer = User.objects.create(username="vic", languages=["en"], accepted_terms_version=1)
    _, key = create_api_client(owner=reviewer, name="vic's")
    client = APIClient(SERVER_NAME="localhost")  # the live server narrows ALLOWED_HOSTS
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")
    task = client.post("/api/v1/tasks/", {"type": "label_assistant_reply", "lang": "en"}, "json")
    assert task.status_code == 201, (task.status_code, task.content[:500])
    assert task.json()["message_id"] == str(answer.id)
    assert task.json()["conversation"][-1]["text"] == EDITED


def test_one_long_word_never_widens_the_moderation_pages(new_page, camera, quick_trees):
    """A reason, a report or a message may be one long word (a URL): it wraps."""
    answer = reviewed_answer()
    word = "https://example.org/" + "a" * 580
    reporter = make_volunteer("rae")
    report_message(message=answer, reporter=reporter, reason="spam", text=word)
    moderator = make_volunteer("mo")
    User.objects.filter(pk=moderator.pk).update(role=Role.MODERATOR)
    moderator.refresh_from_db()
    edit_message(moderator=moderator, message_id=answer.id, text=f"{EDITED} {word}", reason=word)
    ban_user(moderator=moderator, user_id=reporter.id, reason=word)
    pages = {
        "message": f"/moderation/messages/{answer.id}/",
        "queue": "/moderation/",
        "audit": "/moderation/audit/",
        "author": f"/moderation/users/{answer.author_id}/",
        "banned": f"/moderation/users/{reporter.id}/",
        "search": "/moderation/search/?q=basil",
    }
    for width, height in ((1280, 900), (390, 844)):
        page = new_page(width=width, height=height)
        log_in(page, "mo")
        for name, path in pages.items():
            page.goto(path)
            expect(page.locator("main")).to_contain_text("example.org/aa")
            camera.shoot(page, f"{name}-{width}")
            scroll_width = page.evaluate("document.documentElement.scrollWidth")
            assert scroll_width <= width, (path, scroll_width)
