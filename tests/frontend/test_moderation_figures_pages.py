"""The moderators' figure pages and the exports page: who may open them, what they show,
and an export from the form to the downloaded archive."""

from __future__ import annotations

import io
import re
import tarfile
from datetime import timedelta
from pathlib import Path

import huggingface_hub.constants
import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from backend.accounts.models import Role, User
from backend.exports.models import DatasetExport, ExportStatus
from backend.moderation.models import Report
from backend.tasks.models import Task, TaskStatus
from backend.trees.rules import State
from tests.factories import MessageFactory, TreeFactory, UserFactory
from tests.frontend.conftest import make_volunteer

pytestmark = pytest.mark.django_db

PAGES = (
    "/moderation/trollboard/",
    "/moderation/quality/",
    "/moderation/statistics/",
    "/moderation/exports/",
)


@pytest.fixture(autouse=True)
def _setup(settings, tmp_path):  # type: ignore[no-untyped-def]
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    settings.CHORUS_EXPORT_DIR = str(tmp_path / "exports")


def client_for(role: str) -> Client:
    user = make_volunteer(f"{role}-user")
    User.objects.filter(pk=user.pk).update(role=role)
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def mod_client() -> Client:
    return client_for(Role.MODERATOR)


@pytest.mark.parametrize("path", PAGES)
def test_a_figures_page_is_for_moderators_and_admins_only(path):
    anonymous = Client().get(path)
    assert anonymous.status_code == 302
    assert anonymous["Location"].startswith("/accounts/login/")
    assert client_for(Role.VOLUNTEER).get(path).status_code == 403
    assert client_for(Role.ADMIN).get(path).status_code == 200


@pytest.mark.parametrize("path", PAGES)
def test_every_figures_page_is_in_the_moderation_navigation_marked_current(path, mod_client):
    html = mod_client.get(path).content.decode()
    assert f'href="{path}" aria-current="page"' in html
    for other in PAGES:
        assert f'href="{other}"' in html


def test_the_trollboard_links_each_user_to_their_moderation_page(mod_client):
    troll = UserFactory(username="trolly")
    reporter = UserFactory()
    for _ in range(2):
        Report.objects.create(
            message=MessageFactory(author=troll), reporter=reporter, reason="spam"
        )

    html = mod_client.get("/moderation/trollboard/", {"window": "day"}).content.decode()

    assert f'href="/moderation/users/{troll.pk}/">trolly</a>' in html
    assert '<td class="num">6</td>' in html  # 2 reports x 3


def test_the_quality_page_links_the_sets_that_agree_least(mod_client):
    parent = MessageFactory(replies_agreement=0.12, ranking_count=3, text="Which is best?")
    html = mod_client.get("/moderation/quality/").content.decode()
    assert f'href="/moderation/messages/{parent.pk}/">Which is best?</a>' in html
    assert f'href="/trees/{parent.tree_id}/"' in html
    assert 'role="img"' in html
    assert "0.12" in html


def test_the_quality_page_shows_a_dash_for_the_mean_of_no_sets(mod_client):
    html = mod_client.get("/moderation/quality/").content.decode()
    assert "0 ranked sibling sets, mean agreement \N{EN DASH}." in html
    MessageFactory(replies_agreement=0.5, ranking_count=3)
    MessageFactory(replies_agreement=0.25, ranking_count=3)
    html = mod_client.get("/moderation/quality/").content.decode()
    assert "2 ranked sibling sets, mean agreement 0.38." in html


def test_the_statistics_page_draws_its_charts_with_a_table_of_the_same_figures(mod_client):
    user = UserFactory()
    TreeFactory(state=State.GROWING, lang="de")
    Task.objects.create(
        type="initial_prompt",
        lang="en",
        user=user,
        status=TaskStatus.SUBMITTED,
        expires_at=timezone.now() + timedelta(minutes=30),
        done_at=timezone.now(),
    )

    html = mod_client.get("/moderation/statistics/", {"days": "90"}).content.decode()

    assert html.count('<svg class="chart ') == 3
    assert html.count('role="img"') == 3
    assert html.count('<details class="chart-data">') == 3
    assert "<dd>1</dd>" in html  # one volunteer active today
    assert 'href="?days=90" aria-current="page"' in html


@pytest.mark.parametrize("path", PAGES)
def test_a_figures_page_runs_the_same_few_queries_whatever_the_data(path, mod_client):
    def count() -> int:
        with CaptureQueriesContext(connection) as queries:
            assert mod_client.get(path).status_code == 200
        return len(queries)

    before = count()
    reporter = UserFactory()
    for n in range(6):
        author = UserFactory(username=f"author{n}")
        message = MessageFactory(author=author, replies_agreement=n / 6, ranking_count=2)
        Report.objects.create(message=message, reporter=reporter, reason="spam")
        TreeFactory(lang=f"l{n}")
        DatasetExport.objects.create(seed=n, created_by=author, status=ExportStatus.RUNNING)
    assert count() == before <= 10


# --- Exports -------------------------------------------------------------------------------


def ready_tree() -> None:
    tree = TreeFactory(state=State.READY_FOR_EXPORT)
    prompt = MessageFactory(tree=tree, review_result=True, review_count=3)
    MessageFactory(
        tree=tree, parent=prompt, role="assistant", review_result=True, review_count=3, rank=0
    )


def test_an_export_started_from_the_page_runs_reports_progress_and_downloads_as_a_tar(
    mod_client, django_capture_on_commit_callbacks
):
    for _ in range(3):
        ready_tree()

    with django_capture_on_commit_callbacks(execute=True):
        started = mod_client.post(
            "/moderation/exports/",
            {"states": ["ready_for_export"], "validation": "0", "test": "0"},
        )
    assert started.status_code == 302

    export = DatasetExport.objects.get()
    assert (export.status, export.version, export.progress) == (ExportStatus.DONE, 1, 1.0)
    assert export.filters["states"] == ["ready_for_export"]
    progress = mod_client.get(f"/api/v1/moderation/exports/{export.pk}/").json()
    assert (progress["status"], progress["progress"], progress["version"]) == ("done", 1.0, 1)

    page = mod_client.get("/moderation/exports/").content.decode()
    download_url = f"/moderation/exports/{export.pk}/download/"
    assert download_url in page

    response = mod_client.get(download_url)
    assert response.streaming
    assert response["Content-Disposition"] == 'attachment; filename="chorus-dataset-v1.tar"'
    with tarfile.open(fileobj=io.BytesIO(b"".join(response.streaming_content))) as archive:
        names = set(archive.getnames())
        assert {
            "chorus-dataset-v1/README.md",
            "chorus-dataset-v1/export.json",
            "chorus-dataset-v1/trees.jsonl.gz",
            "chorus-dataset-v1/messages.parquet",
            "chorus-dataset-v1/sft/train.jsonl",
        } <= names
        folder = Path(export.path)
        member = archive.extractfile("chorus-dataset-v1/sft/train.jsonl")
        assert member is not None
        assert member.read() == (folder / "sft" / "train.jsonl").read_bytes()
        assert len((folder / "sft" / "train.jsonl").read_text().splitlines()) == 3

    # API clients get the same archive.
    from_api = mod_client.get(f"/api/v1/moderation/exports/{export.pk}/download/")
    assert from_api["Content-Type"] == "application/x-tar"
    assert b"".join(from_api.streaming_content) == b"".join(
        mod_client.get(download_url).streaming_content
    )


def test_a_running_export_shows_a_progress_bar_that_the_page_follows(mod_client):
    export = DatasetExport.objects.create(seed=1, status=ExportStatus.RUNNING, progress=0.42)

    html = mod_client.get("/moderation/exports/").content.decode()

    assert f'data-poll="/api/v1/moderation/exports/{export.pk}/"' in html
    assert 'value="0.420000"' in html
    assert "42 %" in html
    # Without JavaScript the page reloads itself while an export runs.
    assert '<noscript><meta http-equiv="refresh"' in html
    assert "js/exports.js" in html


def test_bad_export_options_are_shown_beside_their_field_and_nothing_starts(mod_client):
    response = mod_client.post(
        "/moderation/exports/", {"states": ["ready_for_export"], "validation": "0.7", "test": "0.5"}
    )
    assert response.status_code == 400
    assert "validation and test together must leave some trees to train on" in (
        response.content.decode()
    )
    assert not DatasetExport.objects.exists()


def test_each_done_version_in_the_list_shows_its_trees_and_messages(mod_client):
    def done(version: int, trees: int, messages: int) -> DatasetExport:
        return DatasetExport.objects.create(
            seed=1,
            status=ExportStatus.DONE,
            version=version,
            progress=1.0,
            stats={"trees": trees, "messages": messages},
        )

    empty, full, single = done(1, 0, 0), done(2, 120, 2345), done(3, 1, 1)
    running = DatasetExport.objects.create(seed=1, status=ExportStatus.RUNNING, progress=0.5)

    html = mod_client.get("/moderation/exports/").content.decode()

    def counts(export: DatasetExport) -> str:
        row = re.search(rf'data-export="{export.pk}".*?</tr>', html, re.DOTALL)
        assert row is not None
        shown = re.search(r"data-counts>(.*?)</span></span>", row.group())
        return re.sub(r"<.*?>", "", shown.group(1)) if shown else ""

    assert counts(empty) == "0 trees · 0 messages"
    assert 'class="counts badge warn" data-counts' in html  # an empty version stands out
    assert counts(full) == "120 trees · 2345 messages"
    assert counts(single) == "1 tree · 1 message"
    assert counts(running) == ""


BANNER = "The export options are not valid; see the fields below."


def languages_field(html: str) -> str:
    """The Languages field's markup, up to the next field."""
    start = html.index('<label for="x-langs">')
    return html[start : html.index('<div class="field">', start)]


def test_a_bad_language_is_named_beside_the_languages_field_and_nothing_starts(mod_client):
    TreeFactory(lang="en")

    not_codes = mod_client.post(
        "/moderation/exports/", {"states": ["ready_for_export"], "langs": "zz, <b>x</b>"}
    )
    no_trees = mod_client.post(
        "/moderation/exports/", {"states": ["ready_for_export"], "langs": "en, zz"}
    )

    assert (not_codes.status_code, no_trees.status_code) == (400, 400)
    html = not_codes.content.decode()
    assert BANNER in html
    field = languages_field(html)
    assert "not language codes like en or pt-BR: &lt;b&gt;x&lt;/b&gt;" in field
    assert "<b>x</b>" not in html
    html = no_trees.content.decode()
    assert BANNER in html
    assert "no tree is in these languages: zz" in languages_field(html)
    assert not DatasetExport.objects.exists()


@pytest.mark.parametrize("field", ["since", "until"])
def test_a_date_that_is_not_one_gets_the_banner_and_an_example_beside_its_field(mod_client, field):
    response = mod_client.post(
        "/moderation/exports/", {"states": ["ready_for_export"], field: "yesterday"}
    )

    assert response.status_code == 400
    html = response.content.decode()
    assert BANNER in html
    beside = html[html.index(f'<label for="x-{field}">') :]
    beside = beside[: beside.index("</div>")]
    assert '<p class="errors">An ISO date, e.g. 2026-11-25.</p>' in beside
    assert "isoformat" not in html
    assert not DatasetExport.objects.exists()


def test_only_moderators_may_download_or_push_an_export(mod_client):
    export = DatasetExport.objects.create(seed=1)
    volunteer = client_for(Role.VOLUNTEER)
    assert volunteer.get(f"/moderation/exports/{export.pk}/download/").status_code == 403
    assert volunteer.post(f"/moderation/exports/{export.pk}/push/").status_code == 403
    assert Client().get(f"/moderation/exports/{export.pk}/download/").status_code == 302
    # An export that is not done has nothing to download.
    assert mod_client.get(f"/moderation/exports/{export.pk}/download/").status_code == 404
    api = f"/api/v1/moderation/exports/{export.pk}/download/"
    assert Client().get(api).status_code == 401
    assert volunteer.get(api).status_code == 403
    refused = mod_client.get(api)
    assert (refused.status_code, refused.json()["error"]["code"]) == (404, "not_found")


def test_pushing_while_the_hub_is_unreachable_shows_why_and_records_nothing(
    mod_client, settings, monkeypatch, django_capture_on_commit_callbacks
):
    settings.HF_TOKEN = "hf_test"
    settings.CHORUS_HF_DATASET_REPO = "chorus/data"
    # Nothing listens on port 9: as offline as a machine gets.
    monkeypatch.setattr(huggingface_hub.constants, "ENDPOINT", "http://127.0.0.1:9")
    ready_tree()
    with django_capture_on_commit_callbacks(execute=True):
        mod_client.post("/moderation/exports/", {"states": ["ready_for_export"]})
    export = DatasetExport.objects.get(status=ExportStatus.DONE)

    response = mod_client.post(f"/moderation/exports/{export.pk}/push/", follow=True)

    html = response.content.decode()
    assert "The push failed: Could not reach the Hugging Face Hub" in html
    assert "the local export v1 is intact" in html
    export.refresh_from_db()
    assert export.pushed_at is None


@pytest.mark.parametrize("path", PAGES)
def test_the_moderation_menu_counts_open_reports_on_every_figures_page(mod_client, path) -> None:  # type: ignore[no-untyped-def]
    Report.objects.create(message=MessageFactory(), reporter=UserFactory(), reason="spam")
    page = mod_client.get(path).content.decode()
    assert "data-open-reports>1</span>" in page
