"""The moderators' figures and exports in a real browser: charts in both themes and on a
phone, and an export's progress bar following the run without a reload."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from backend.accounts.models import Role, User
from backend.exports.models import DatasetExport, ExportStatus
from backend.moderation.models import Report
from tests.factories import MessageFactory, TreeFactory, UserFactory
from tests.frontend.conftest import make_volunteer
from tests.frontend.test_browser import log_in

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def moderator() -> User:
    user = make_volunteer("mia")
    User.objects.filter(pk=user.pk).update(role=Role.MODERATOR)
    return user


def test_the_figures_read_at_a_glance_in_light_and_dark_and_on_a_phone(new_page, camera, moderator):
    reporter = UserFactory()
    for n, lang in enumerate(["en", "en", "de", "fr"]):
        tree = TreeFactory(lang=lang)
        message = MessageFactory(tree=tree, replies_agreement=n / 4, ranking_count=3)
        Report.objects.create(message=message, reporter=reporter, reason="spam")
    page = new_page()
    log_in(page, "mia")

    for path in ("trollboard", "quality", "statistics"):
        page.goto(f"/moderation/{path}/")
        camera.shoot(page, f"{path}-light")
    assert page.locator("svg.chart[role=img]").count() == 3
    page.locator("details.chart-data summary").first.click()
    assert page.locator("details.chart-data table").first.is_visible()

    page.emulate_media(color_scheme="dark")
    page.goto("/moderation/statistics/")
    camera.shoot(page, "statistics-dark")
    bar_fill = page.locator("svg.chart rect.chart-bar").first.evaluate(
        "bar => getComputedStyle(bar).fill"
    )
    assert bar_fill == "rgb(126, 162, 255)"  # the dark theme's accent

    phone = new_page(width=390, height=844)
    log_in(phone, "mia")
    for path in ("quality", "statistics"):
        phone.goto(f"/moderation/{path}/")
        camera.shoot(phone, f"{path}-phone")
        assert phone.evaluate("document.documentElement.scrollWidth") <= 390


def test_a_running_exports_progress_bar_moves_and_the_page_shows_the_version_when_done(
    new_page, camera, moderator, tmp_path
):
    export = DatasetExport.objects.create(seed=1, status=ExportStatus.RUNNING, progress=0.1)
    page = new_page()
    log_in(page, "mia")
    page.goto("/moderation/exports/")
    bar = page.locator(f"tr[data-export='{export.pk}'] progress")
    assert bar.evaluate("bar => bar.value") == pytest.approx(0.1)
    camera.shoot(page, "running")

    DatasetExport.objects.filter(pk=export.pk).update(progress=0.6)
    # Polled by Playwright's expect (a string predicate would need eval, which the page's
    # Content-Security-Policy forbids).
    expect(page.locator(f"tr[data-export='{export.pk}'] [data-percent]")).to_have_text("60 %")
    progress = page.locator(f"tr[data-export='{export.pk}'] progress")
    assert progress.evaluate("bar => bar.value") > 0.5

    folder = tmp_path / "v1"
    folder.mkdir()
    DatasetExport.objects.filter(pk=export.pk).update(
        status=ExportStatus.DONE, version=1, progress=1.0, path=str(folder)
    )
    page.wait_for_selector("text=Download (tar)")
    camera.shoot(page, "done")
    assert page.locator("text=Push to the Hub").is_visible()


def test_a_versions_trees_and_messages_show_beside_its_status_on_a_phone(
    new_page, camera, moderator, tmp_path
):
    empty, full = (
        DatasetExport.objects.create(
            seed=1,
            status=ExportStatus.DONE,
            version=version,
            progress=1.0,
            path=str(tmp_path),
            stats={"trees": trees, "messages": messages},
        )
        for version, trees, messages in ((1, 0, 0), (2, 120, 2345))
    )
    phone = new_page(width=390, height=844)
    log_in(phone, "mia")
    phone.goto("/moderation/exports/")
    camera.shoot(phone, "versions-phone", full_page=False)

    for export, shown in ((empty, "0 trees · 0 messages"), (full, "120 trees · 2345 messages")):
        counts = phone.locator(f"tr[data-export='{export.pk}'] [data-counts]")
        expect(counts).to_have_text(shown)
        expect(counts).to_be_in_viewport(ratio=1)  # without scrolling the table sideways
    assert phone.evaluate("document.documentElement.scrollWidth") <= 390
