"""End to end in a real browser: Chromium driven by Playwright against the live server."""

from __future__ import annotations

import re

import pytest
from django.utils import translation

from backend.accounts.models import User
from backend.accounts.services import create_api_client
from backend.moderation.models import Report
from backend.tasks.models import Task, TaskStatus
from backend.trees.models import Message, Ranking, Review
from frontend import text
from tests.frontend.conftest import PASSWORD, make_volunteer
from tests.frontend.scenario import build_open_work

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

ALL_TYPES = [
    "initial_prompt",
    "assistant_reply",
    "prompter_reply",
    "label_initial_prompt",
    "label_assistant_reply",
    "label_prompter_reply",
    "rank_assistant_replies",
    "rank_prompter_replies",
]


def dashboard_counts(page, lang: str = "en") -> dict[str, int]:
    rows = page.locator(f"section[data-lang={lang}] tr[data-task-type]")
    return {
        rows.nth(i).get_attribute("data-task-type"): int(
            rows.nth(i).locator("[data-count]").inner_text()
        )
        for i in range(rows.count())
    }


def start(page, task_type: str, lang: str = "en") -> None:
    page.locator(f"section[data-lang={lang}] tr[data-task-type={task_type}] button").click()
    page.wait_for_url(re.compile(r"/tasks/[0-9a-f-]+/$"))


def log_in(page, username: str) -> None:
    page.goto("/accounts/login/")
    page.fill("input[name=login]", username)
    page.fill("input[name=password]", PASSWORD)
    page.locator("form button[type=submit]").last.click()
    page.wait_for_url("**/dashboard/")


def write(page, camera, words: str, name: str) -> None:
    """Type into the editor, go to the review step with Ctrl+Enter, submit."""
    page.fill("textarea[name=text]", words)
    # The server's rendering of the first words arrives in the preview.
    page.locator("[data-preview]").get_by_text(words.split()[0]).first.wait_for()
    camera.shoot(page, f"{name}-editing")
    page.keyboard.press("Control+Enter")
    page.locator("[data-final-preview]").wait_for()
    camera.shoot(page, f"{name}-review")
    page.locator("button[data-submit]").click()
    page.wait_for_url("**/dashboard/?done=*")


def review(page, camera, name: str) -> None:
    page.locator("input[name=spam][value='0']").check()
    page.locator("input[name=quality][value='0.75']").check()
    camera.shoot(page, name)
    page.locator("button[data-submit]").click()
    page.wait_for_url("**/dashboard/?done=*")


def test_a_new_volunteer_signs_up_learns_and_does_every_kind_of_task(new_page, camera, quick_trees):
    work = build_open_work("en")
    page = new_page()

    # Sign up, accepting the terms.
    page.goto("/")
    camera.shoot(page, "home")
    page.get_by_role("link", name="Sign up and start").click()
    page.fill("input[name=email]", "nina@example.org")
    page.fill("input[name=username]", "nina")
    page.fill("input[name=password1]", PASSWORD)
    page.fill("input[name=password2]", PASSWORD)
    page.get_by_label("English").check()
    page.locator("input[name=accept_terms]").check()
    page.locator("input[name=accept_data_use]").check()
    camera.shoot(page, "sign-up")
    page.locator("form button[type=submit]").last.click()

    # The tutorial comes first: a wrong answer gets feedback, then each step passes.
    page.wait_for_url("**/tutorial/**")
    page.locator("input[name=spam][value='0']").check()
    page.get_by_role("button", name="Check my answer").click()
    page.get_by_text("Not quite.").wait_for()
    camera.shoot(page, "tutorial-feedback")
    page.locator("input[name=spam][value='1']").check()
    page.get_by_role("button", name="Check my answer").click()
    page.get_by_text("Correct!").wait_for()
    page.locator("[data-continue]").click()
    # Rank with the keyboard: the wrong reply (shown first) goes to the bottom.
    first = page.locator(".rank-item").first
    first.focus()
    page.keyboard.press("Alt+ArrowDown")
    page.keyboard.press("Alt+ArrowDown")
    camera.shoot(page, "tutorial-rank")
    page.get_by_role("button", name="Check my answer").click()
    page.get_by_text("Correct!").wait_for()
    page.locator("[data-continue]").click()
    page.fill(
        "textarea[name=text]",
        "A haiku is a short Japanese poem in three lines of five, seven and five syllables.",
    )
    page.get_by_role("button", name="Check my answer").click()
    page.get_by_text("Our example answer").wait_for()
    page.locator("[data-continue]").click()
    page.wait_for_url("**/dashboard/")
    nina = User.objects.get(username="nina")
    assert nina.tutorial_completed_at is not None
    assert nina.accepted_terms_version == 1

    before = dashboard_counts(page)
    assert all(before[kind] >= 1 for kind in ALL_TYPES), before
    camera.shoot(page, "dashboard-before")

    # Skip one, with a reason.
    start(page, "initial_prompt")
    page.get_by_text("Skip this task").click()
    page.select_option("select[name=reason]", "too_long")
    page.get_by_role("button", name="Skip", exact=True).click()
    page.wait_for_url("**/dashboard/")
    assert Task.objects.get(user=nina, status=TaskStatus.SKIPPED).skip_reason == "too_long"

    # Every kind of task, through its page.
    start(page, "initial_prompt")
    write(page, camera, "What are **three** easy houseplants for a dark flat?", "prompt")
    start(page, "assistant_reply")
    write(page, camera, "Keep it in a warm, bright spot and water it *sparingly*.", "assistant")
    start(page, "prompter_reply")
    write(page, camera, "And how often should I fertilise it?", "user")
    start(page, "label_initial_prompt")
    review(page, camera, "label-prompt")

    start(page, "label_assistant_reply")
    # Report the reply under review, then come back and finish the review.
    page.locator(".msg.target .report-link").click()
    page.select_option("select[name=reason]", "incorrect")
    page.fill("textarea[name=text]", "Basil does not mind cold glass this much.")
    camera.shoot(page, "report")
    page.get_by_role("button", name="Send report").click()
    page.wait_for_url(re.compile(r"/tasks/[0-9a-f-]+/$"))
    page.get_by_text("A moderator will look at this message").wait_for()
    review(page, camera, "label-assistant")
    assert Report.objects.get(reporter=nina).reason == "incorrect"

    start(page, "label_prompter_reply")
    review(page, camera, "label-user")

    start(page, "rank_assistant_replies")
    # Drag the second reply above the first by its handle.
    items = page.locator(".rank-item")
    second_id = items.nth(1).get_attribute("data-id")
    items.nth(1).locator(".handle").drag_to(items.nth(0), target_position={"x": 20, "y": 5})
    assert items.nth(0).get_attribute("data-id") == second_id
    assert page.locator(".rank-item.dragging").count() == 0
    assert page.locator("[data-expand]:visible").count() == 0  # short replies are not folded
    camera.shoot(page, "rank-assistant")
    page.locator("button[data-submit]").click()
    page.wait_for_url("**/dashboard/?done=*")
    assert str(Ranking.objects.get(user=nina, parent__role="prompter").ordered_ids[0]) == second_id

    start(page, "rank_prompter_replies")
    page.locator(".rank-item").nth(1).locator("[data-move=up]").click()
    camera.shoot(page, "rank-user")
    page.locator("button[data-submit]").click()
    page.wait_for_url("**/dashboard/?done=*")

    # The dashboard's counts moved with the work done.
    after = dashboard_counts(page)
    camera.shoot(page, "dashboard-after")
    assert page.locator("[data-stat=tasks]").inner_text() == "8"
    # Slots done are gone (accepted reviews open new ones elsewhere, e.g. a reply to the
    # user message nina accepted).
    for kind in ("label_initial_prompt", "rank_assistant_replies", "rank_prompter_replies"):
        assert after.get(kind, 0) == before[kind] - 1, (kind, before, after)
    assert Message.objects.filter(author=nina).count() == 3
    assert Review.objects.filter(user=nina).count() == 3
    assert Ranking.objects.filter(user=nina).count() == 2
    assert work.ranking_tree.id  # the tree ranked above


def test_a_german_speaking_volunteer_works_in_german(new_page, camera, quick_trees):
    build_open_work("de")
    make_volunteer("jonas", languages=["de"])
    page = new_page(locale="en-GB")
    page.goto("/accounts/login/")
    # Switch the interface to German with the switcher in the header.
    with page.expect_navigation():
        page.select_option("#ui-language", "de")
    assert page.locator("html").get_attribute("lang") == "de"
    page.fill("input[name=login]", "jonas")
    page.fill("input[name=password]", PASSWORD)
    page.locator("form button[type=submit]").last.click()
    page.wait_for_url("**/dashboard/")
    with translation.override("de"):
        title = str(text.TASK_TITLES["assistant_reply"])
        heading = str(text.TASK_INSTRUCTIONS["assistant_reply"])
    assert title != "Reply as the assistant"
    camera.shoot(page, "dashboard-de")

    start(page, "assistant_reply", lang="de")
    assert page.locator("h1").inner_text() == title
    assert heading in page.locator(".task-header").inner_text()
    write(page, camera, "Stell es an ein helles Fenster und gieße es *sparsam*.", "antwort")
    message = Message.objects.get(author__username="jonas")
    assert message.lang == "de"
    assert message.text.startswith("Stell es")
    assert page.locator("html").get_attribute("lang") == "de"


def test_a_reload_in_the_middle_of_a_long_answer_keeps_the_draft(new_page, camera, quick_trees):
    build_open_work("en")
    make_volunteer("lena")
    page = new_page()
    log_in(page, "lena")
    start(page, "assistant_reply")
    long_answer = "\n\n".join(
        f"Paragraph {n}: basil wants light, warmth and water in that order." for n in range(12)
    )
    page.locator("textarea[name=text]").press_sequentially(long_answer[:200])
    page.fill("textarea[name=text]", long_answer)
    page.locator("[data-draft-status]").filter(has_text="Draft saved").wait_for()
    task_url = page.url
    page.reload()
    assert page.url == task_url
    assert page.input_value("textarea[name=text]") == long_answer
    page.get_by_text("Draft restored").wait_for()
    camera.shoot(page, "restored")
    # The connection drops: the text is still kept in the browser, and comes back.
    page.context.set_offline(True)
    page.fill("textarea[name=text]", long_answer + "\n\nOne more line written offline.")
    page.context.set_offline(False)
    page.reload()
    assert page.input_value("textarea[name=text]").endswith("written offline.")
    # Submitting clears the draft.
    page.locator("textarea[name=text]").press("Control+Enter")
    page.locator("button[data-submit]").click()
    page.wait_for_url("**/dashboard/?done=*")
    assert (
        page.evaluate("Object.keys(localStorage).filter(k => k.startsWith('chorus-draft'))") == []
    )


def test_html_and_scripts_in_messages_are_shown_as_text_never_run(new_page, camera, quick_trees):
    work = build_open_work("en")
    payload = (
        "Hello <script>window.__pwned = 1</script> "
        '<img src="x" onerror="window.__pwned = 2"> '
        "[link](javascript:window.__pwned=3) "
        '<a href="#" onclick="window.__pwned=4">click</a>'
    )
    Message.objects.filter(pk=work.growing_root.pk).update(text=payload)
    make_volunteer("eve")
    page = new_page()
    log_in(page, "eve")
    start(page, "assistant_reply")
    root = page.locator(".msg").first
    assert "<script>window.__pwned = 1</script>" in root.inner_text()
    assert root.locator("script, img, [onclick], [onerror]").count() == 0
    page.get_by_text("click").click()
    # The same payload typed into the editor's live preview, and on the review step.
    page.fill("textarea[name=text]", payload)
    page.locator("[data-preview]").get_by_text("Hello").wait_for()
    page.keyboard.press("Control+Enter")
    page.locator("[data-final-preview]").wait_for()
    camera.shoot(page, "payload-on-review")
    assert page.evaluate("window.__pwned") is None


def test_the_pages_work_on_a_phone_in_dark_mode(new_page, camera, quick_trees):
    build_open_work("en")
    make_volunteer("sam")
    page = new_page(width=390, height=844)
    page.emulate_media(color_scheme="dark")
    log_in(page, "sam")
    camera.shoot(page, "dashboard-phone-dark")
    background = page.evaluate("getComputedStyle(document.body).backgroundColor")
    assert background == "rgb(21, 23, 27)"
    start(page, "rank_assistant_replies")
    camera.shoot(page, "rank-phone-dark")
    # No sideways scrolling on a phone.
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    # The manual toggle overrides the system and is remembered.
    page.locator("[data-theme-toggle]").click()
    page.reload()
    assert page.evaluate("document.documentElement.dataset.theme") == "light"
    camera.shoot(page, "rank-phone-light")


def test_the_settings_page_fits_a_phone_with_an_api_key(new_page, camera):
    sam = make_volunteer("sam")
    create_api_client(owner=sam, name="Nightly ranking export script")
    page = new_page(width=390, height=844)
    log_in(page, "sam")
    page.goto("/settings/")
    keys = page.locator("table.keys")
    keys.scroll_into_view_if_needed()
    camera.shoot(page, "settings-phone")
    # The page itself never scrolls sideways; the table scrolls inside its card.
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    card = page.locator("#api-keys").bounding_box()
    scroller = page.locator("#api-keys .table-scroll").bounding_box()
    assert scroller["x"] + scroller["width"] <= card["x"] + card["width"]
    revoke = keys.get_by_role("button", name="Revoke")
    revoke.scroll_into_view_if_needed()
    assert revoke.is_visible()
