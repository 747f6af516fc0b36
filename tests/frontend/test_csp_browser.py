"""Every main page works in Chromium under the real Content-Security-Policy: no violation
is reported, and the behaviour only the pages' scripts provide (theme toggle, live previews,
drafts, WebSocket feeds, the chat, Swagger UI) happens."""

from __future__ import annotations

import re
import time

import pytest
from playwright.sync_api import expect

from backend.accounts.models import Role
from backend.accounts.services import accept_terms, complete_tutorial, create_user
from backend.moderation.models import Report
from backend.trees.models import Message
from tests.frontend.conftest import PASSWORD, make_volunteer
from tests.frontend.scenario import build_open_work

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

# Runs before any page script (Playwright injects it outside the page's CSP).
RECORD_VIOLATIONS = """
window.__cspViolations = [];
document.addEventListener("securitypolicyviolation", (event) => {
  window.__cspViolations.push(
    `${event.effectiveDirective} blocked ${event.blockedURI || "inline"} on ${location.pathname}`
  );
});
"""


class Watched:
    """A page whose CSP violations (events and console errors) are collected."""

    def __init__(self, page) -> None:  # type: ignore[no-untyped-def]
        self.page = page
        self.console: list[str] = []
        page.add_init_script(RECORD_VIOLATIONS)
        page.on("console", self._console)

    def _console(self, message) -> None:  # type: ignore[no-untyped-def]
        if "Content Security Policy" in message.text or "Content-Security-Policy" in message.text:
            self.console.append(message.text)

    def goto(self, path: str, **options):  # type: ignore[no-untyped-def]
        response = self.page.goto(path, **options)
        assert response is not None
        assert response.status < 400, (path, response.status)
        csp = response.header_value("content-security-policy")
        assert "script-src 'self'" in (csp or ""), (path, csp)
        return response

    def assert_clean(self) -> None:
        time.sleep(0.2)  # a violation event is dispatched asynchronously
        events = self.page.evaluate("window.__cspViolations || []")
        assert events == [], events
        assert self.console == [], self.console


def log_in(watched: Watched, username: str) -> None:
    watched.goto("/accounts/login/")
    watched.page.fill("input[name=login]", username)
    watched.page.fill("input[name=password]", PASSWORD)
    watched.page.locator("form button[type=submit]").last.click()
    watched.page.wait_for_url("**/dashboard/")


def test_the_volunteer_pages_work_under_the_policy(  # type: ignore[no-untyped-def]
    new_live_page, camera, quick_trees, inference_down
) -> None:
    work = build_open_work("en")
    make_volunteer("lena")
    volunteer = Watched(new_live_page())

    # Home: the theme toggle is the page script's own behaviour.
    volunteer.goto("/")
    toggle = volunteer.page.locator("[data-theme-toggle]")
    before = toggle.get_attribute("aria-pressed")
    toggle.click()
    expect(toggle).not_to_have_attribute("aria-pressed", before or "")
    # The site's icon, linked by the page and asked for by browsers at /favicon.ico.
    linked = volunteer.page.locator('link[rel="icon"]').get_attribute("href")
    for path in (linked, "/favicon.ico"):
        icon = volunteer.page.request.get(path)
        assert icon.ok, (path, icon.status)
        assert icon.headers["content-type"].startswith("image/svg+xml"), path
    volunteer.assert_clean()

    # Log in (a form posting to the site), arriving on the dashboard with its live counts.
    with volunteer.page.expect_websocket(lambda ws: ws.url.endswith("/ws/tasks/")) as feed:
        log_in(volunteer, "lena")
    assert '"type": "counts"' in str(feed.value.wait_for_event("framereceived"))
    camera.shoot(volunteer.page, "dashboard")
    volunteer.assert_clean()

    # A task page: the server's preview arrives as one types, and the draft is kept.
    volunteer.page.locator(
        "section[data-lang=en] tr[data-task-type=assistant_reply] button"
    ).click()
    volunteer.page.wait_for_url(re.compile(r"/tasks/[0-9a-f-]+/$"))
    volunteer.page.fill("textarea[name=text]", "Basil | wants *light* and warmth.")
    volunteer.page.locator("[data-preview] em").get_by_text("light").wait_for()
    volunteer.page.locator("[data-draft-status]").filter(has_text="Draft saved").wait_for()
    camera.shoot(volunteer.page, "task")
    volunteer.assert_clean()

    # A tree page, with a markdown table whose columns are aligned (classes, not styles).
    root = work.growing_root
    Message.objects.filter(pk=root.pk).update(
        text=root.text + "\n\n| plant | sun |\n|:-|-:|\n| basil | 6 h |"
    )
    volunteer.goto(f"/trees/{root.tree_id}/")
    expect(volunteer.page.locator(".markdown td.align-right")).to_have_css("text-align", "right")
    camera.shoot(volunteer.page, "tree")
    volunteer.assert_clean()

    # The chat: the question goes over the WebSocket, the answer that the model is down
    # comes back over it.
    volunteer.goto("/chat/")
    with volunteer.page.expect_websocket(lambda ws: "/ws/chat/" in ws.url):
        volunteer.page.get_by_role("button", name="New chat").first.click()
    time.sleep(0.2)
    volunteer.page.get_by_label("Your message").fill("Is basil a herb?")
    volunteer.page.get_by_role("button", name="Send").click()
    expect(volunteer.page.get_by_role("alert")).to_contain_text("cannot be reached")
    camera.shoot(volunteer.page, "chat")
    volunteer.assert_clean()

    # The settings page: a new API key, shown once.
    volunteer.goto("/settings/")
    volunteer.page.get_by_label("Name of the new key").fill("my bot")
    volunteer.page.get_by_role("button", name="Make a key").click()
    expect(volunteer.page.locator("#new-key")).to_have_value(re.compile(r"^chorus_"))
    camera.shoot(volunteer.page, "new-key")
    volunteer.assert_clean()

    # The API docs: Swagger UI draws the operations from the schema.
    # Its bundle is large and the schema is built on request: slow on a busy machine.
    volunteer.goto("/api/docs/", wait_until="domcontentloaded", timeout=60_000)
    volunteer.page.locator(".opblock").first.wait_for(timeout=60_000)
    camera.shoot(volunteer.page, "api-docs")
    volunteer.assert_clean()

    # An API endpoint opened in the browser: its JSON, shown by the browser (DRF's own
    # pages, which the policy would break, are for DEBUG only).
    response = volunteer.goto("/api/v1/me/")
    assert response.header_value("content-type") == "application/json"
    expect(volunteer.page.locator("body")).to_contain_text('"username"')
    volunteer.assert_clean()


def test_the_moderation_queue_works_under_the_policy(  # type: ignore[no-untyped-def]
    new_live_page, camera, quick_trees
) -> None:
    work = build_open_work("en")
    make_volunteer("rae")
    moderator = create_user(username="mo", password=PASSWORD, role=Role.MODERATOR)
    accept_terms(user=moderator)
    complete_tutorial(user=moderator)

    mod = Watched(new_live_page())
    log_in(mod, "mo")
    mod.goto("/moderation/")
    expect(mod.page.locator("[data-live-status]")).to_have_attribute("data-state", "open")
    mod.assert_clean()

    # A report from the tree page arrives on the queue without a reload.
    volunteer = Watched(new_live_page())
    log_in(volunteer, "rae")
    answer = work.growing_root
    volunteer.goto(f"/trees/{answer.tree_id}/")
    volunteer.page.locator(f"#m-{answer.id} .report-link").click()
    volunteer.page.select_option("select[name=reason]", "spam")
    volunteer.page.get_by_role("button", name="Send report").click()
    volunteer.page.wait_for_load_state()
    assert Report.objects.filter(message=answer).count() == 1
    volunteer.assert_clean()

    expect(mod.page.locator(f'[data-message="{answer.id}"]')).to_be_visible()
    camera.shoot(mod.page, "queue")
    mod.goto(f"/moderation/messages/{answer.id}/")
    mod.goto("/moderation/audit/")
    mod.assert_clean()
