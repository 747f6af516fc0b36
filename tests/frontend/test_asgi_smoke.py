"""The browser reaches Chorus's ASGI application: pages, static files and WebSockets."""

import pytest

from tests.frontend.conftest import PASSWORD, make_volunteer

pytestmark = pytest.mark.django_db(transaction=True)


def test_the_dashboard_receives_its_live_counts_over_a_websocket(new_live_page) -> None:  # type: ignore[no-untyped-def]
    make_volunteer("smoke")
    page = new_live_page()
    page.goto("/accounts/login/")
    page.fill("input[name=login]", "smoke")
    page.fill("input[name=password]", PASSWORD)
    with page.expect_websocket(lambda ws: ws.url.endswith("/ws/tasks/")) as opened:
        page.click("button[type=submit]")
    frame = opened.value.wait_for_event("framereceived")
    assert '"type": "counts"' in str(frame)
