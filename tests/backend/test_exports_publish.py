"""Publishing dataset versions to the Hugging Face Hub, and recovering exports whose worker
died. This machine has no network: the real HfApi is pointed at a closed local port, and a
small recording stand-in plays the Hub where a push must succeed."""

from __future__ import annotations

import hashlib
import os
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from io import StringIO
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone
from huggingface_hub import HfApi

from backend.core.errors import Conflict, InvalidInput, NotFound, PublishFailed
from backend.exports import jobs, publishing, services
from backend.exports.models import DatasetExport, ExportStatus
from tests.backend.test_exports import conversation
from tests.factories import TreeFactory

pytestmark = pytest.mark.django_db

# Nothing listens on the discard port: every request fails to connect, at once.
UNREACHABLE = "http://127.0.0.1:9"


@pytest.fixture(autouse=True)
def export_dir(settings, tmp_path) -> Path:
    settings.CHORUS_EXPORT_DIR = str(tmp_path / "exports")
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    settings.HF_TOKEN = ""
    settings.CHORUS_HF_DATASET_REPO = ""
    return tmp_path / "exports"


@pytest.fixture
def done_export() -> DatasetExport:
    conversation()
    planned = services.create_export(user=None, filters={"validation": 0}, seed=3)
    return services.run_export(export_id=planned.id, salt="s")


class FakeHub:
    """Stands in for HfApi (an external service these tests cannot reach): records calls."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, tuple[Any, ...], dict[str, Any]]] = []

    def create_repo(self, *args: Any, **kwargs: Any) -> str:
        self.calls.append(("create_repo", args, kwargs))
        return f"https://huggingface.co/datasets/{args[0]}"

    def create_branch(self, *args: Any, **kwargs: Any) -> None:
        self.calls.append(("create_branch", args, kwargs))

    def upload_folder(self, *args: Any, **kwargs: Any) -> SimpleNamespace:
        # What the Hub would receive: the folder's files as they are when uploaded.
        folder = Path(kwargs["folder_path"])
        kwargs["files"] = sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))
        self.calls.append(("upload_folder", args, kwargs))
        return SimpleNamespace(oid="c0ffee" * 6 + "abcd")

    def create_tag(self, *args: Any, **kwargs: Any) -> None:
        self.calls.append(("create_tag", args, kwargs))

    def called(self, name: str) -> list[tuple[tuple[Any, ...], dict[str, Any]]]:
        return [(args, kwargs) for called, args, kwargs in self.calls if called == name]


def folder_hashes(folder: Path) -> dict[str, str]:
    return {
        str(path.relative_to(folder)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(folder.rglob("*"))
        if path.is_file()
    } | {str(path.relative_to(folder)) + "/": "" for path in folder.rglob("*") if path.is_dir()}


def assert_not_pushed(export: DatasetExport) -> None:
    export.refresh_from_db()
    assert (export.pushed_repo, export.pushed_at, export.pushed_revision) == ("", None, "")


# --- pushing ---------------------------------------------------------------------------------


def test_a_push_creates_the_dataset_repo_uploads_the_folder_tags_it_and_is_recorded(
    done_export,
):
    hub = FakeHub()
    before = timezone.now()

    pushed = publishing.push_export(
        export=done_export, repo_id="chorus/data", token="hf_x", private=True, api=hub
    )

    assert [name for name, _, _ in hub.calls] == ["create_repo", "upload_folder", "create_tag"]
    ((repo_args, repo_kwargs),) = hub.called("create_repo")
    assert repo_args == ("chorus/data",)
    assert repo_kwargs == {
        "repo_type": "dataset",
        "private": True,
        "exist_ok": True,
        "token": "hf_x",
    }
    ((_, upload),) = hub.called("upload_folder")
    assert upload["repo_id"] == "chorus/data"
    assert upload["repo_type"] == "dataset"
    assert upload["folder_path"] == done_export.path
    assert upload["commit_message"] == "Chorus dataset v1"
    assert upload["revision"] is None
    assert {"README.md", "export.json", "trees.jsonl.gz"} <= set(upload["files"])
    ((tag_args, tag),) = hub.called("create_tag")
    assert tag_args == ("chorus/data",)
    assert (tag["tag"], tag["revision"], tag["repo_type"]) == (
        "v1",
        "c0ffee" * 6 + "abcd",
        "dataset",
    )
    assert pushed.pushed_repo == "chorus/data"
    assert pushed.pushed_revision == "c0ffee" * 6 + "abcd"
    assert pushed.pushed_at is not None
    assert pushed.pushed_at >= before


def test_a_public_push_to_a_branch_creates_the_branch_and_commits_there_without_a_tag(
    done_export,
):
    hub = FakeHub()

    publishing.push_export(
        export=done_export,
        repo_id="chorus/data",
        token="hf_x",
        private=False,
        revision="staging",
        tag=False,
        api=hub,
    )

    assert [name for name, _, _ in hub.calls] == ["create_repo", "create_branch", "upload_folder"]
    assert hub.called("create_repo")[0][1]["private"] is False
    ((branch_args, branch),) = hub.called("create_branch")
    assert (branch_args, branch["branch"], branch["exist_ok"]) == (
        ("chorus/data",),
        "staging",
        True,
    )
    assert hub.called("upload_folder")[0][1]["revision"] == "staging"


def test_an_unreachable_hub_gives_a_clear_error_leaves_the_folder_untouched_and_records_nothing(
    done_export,
):
    folder = Path(done_export.path)
    before = folder_hashes(folder)

    with pytest.raises(PublishFailed) as raised:
        publishing.push_export(
            export=done_export,
            repo_id="chorus/data",
            token="hf_x",
            private=True,
            api=HfApi(endpoint=UNREACHABLE),
        )

    assert raised.value.message.startswith("Could not reach the Hugging Face Hub (")
    assert raised.value.message.endswith(f"the local export v1 is intact at {folder}.")
    assert (raised.value.code, raised.value.status) == ("publish_failed", 502)
    assert "hf_x" not in raised.value.message
    assert folder_hashes(folder) == before
    assert_not_pushed(done_export)


class RefusingHandler(BaseHTTPRequestHandler):
    """A Hub that answers every request 401, as it does for a bad token."""

    def _refuse(self) -> None:
        body = b'{"error": "Invalid credentials in Authorization header"}'
        self.send_response(401)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = do_PUT = do_HEAD = _refuse

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def refusing_hub() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), RefusingHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_a_hub_refusing_the_push_is_a_publish_failure_and_nothing_is_recorded(
    done_export, refusing_hub
):
    before = folder_hashes(Path(done_export.path))

    with pytest.raises(PublishFailed, match=r"refused the push \(.*401"):
        publishing.push_export(
            export=done_export,
            repo_id="chorus/data",
            token="hf_bad",
            private=True,
            api=HfApi(endpoint=refusing_hub),
        )

    assert folder_hashes(Path(done_export.path)) == before
    assert_not_pushed(done_export)


@pytest.mark.parametrize(
    ("repo_id", "token", "message"),
    [
        ("chorus/data", "", "No Hugging Face token"),
        ("chorus/data", None, "No Hugging Face token"),
        ("", "hf_x", "ORG/NAME"),
        ("just-a-name", "hf_x", "ORG/NAME"),
    ],
)
def test_a_push_without_a_token_or_a_repo_is_refused_before_reaching_the_hub(
    done_export, repo_id, token, message
):
    hub = FakeHub()

    with pytest.raises(InvalidInput, match=message):
        publishing.push_export(
            export=done_export, repo_id=repo_id, token=token, private=True, api=hub
        )

    assert hub.calls == []
    assert_not_pushed(done_export)


@pytest.mark.parametrize(
    "status", [ExportStatus.PENDING, ExportStatus.RUNNING, ExportStatus.FAILED]
)
def test_an_export_that_is_not_done_cannot_be_pushed(status):
    export = DatasetExport.objects.create(seed=1, status=status)
    hub = FakeHub()

    with pytest.raises(InvalidInput, match=f"The export is {status}; only a done export"):
        publishing.push_export(
            export=export, repo_id="chorus/data", token="hf_x", private=True, api=hub
        )

    assert hub.calls == []


def test_a_done_export_whose_folder_was_removed_cannot_be_pushed(done_export):
    Path(done_export.path).rename(Path(done_export.path).with_name("moved"))

    with pytest.raises(InvalidInput, match="folder of export v1 is missing"):
        publishing.push_export(
            export=done_export, repo_id="chorus/data", token="hf_x", private=True, api=FakeHub()
        )


def test_the_push_job_reads_token_and_repo_from_settings(done_export, settings, monkeypatch):
    settings.HF_TOKEN = "hf_settings"
    settings.CHORUS_HF_DATASET_REPO = "chorus/from-settings"
    hub = FakeHub()
    monkeypatch.setattr("huggingface_hub.HfApi", lambda **_: hub)

    revision = jobs.push_export_job.delay(str(done_export.id)).get()

    assert revision == "c0ffee" * 6 + "abcd"
    ((repo_args, repo_kwargs),) = hub.called("create_repo")
    assert (repo_args, repo_kwargs["token"]) == (("chorus/from-settings",), "hf_settings")
    done_export.refresh_from_db()
    assert done_export.pushed_repo == "chorus/from-settings"


# --- the command -------------------------------------------------------------------------------


def test_the_command_refuses_to_push_without_a_token(done_export, settings):
    settings.CHORUS_HF_DATASET_REPO = "chorus/data"

    with pytest.raises(CommandError, match="No Hugging Face token: set HF_TOKEN"):
        call_command("push_dataset")

    assert_not_pushed(done_export)


def test_the_command_reports_an_unreachable_hub_and_the_intact_local_copy(
    done_export, settings, monkeypatch
):
    monkeypatch.setattr("huggingface_hub.HfApi", lambda **kw: HfApi(endpoint=UNREACHABLE, **kw))
    settings.HF_TOKEN = "hf_settings"
    before = folder_hashes(Path(done_export.path))

    with pytest.raises(CommandError) as raised:
        call_command("push_dataset", "1", "--repo", "chorus/data", "--public")

    message = str(raised.value)
    assert message.startswith("Could not reach the Hugging Face Hub")
    assert f"the local export v1 is intact at {done_export.path}." in message
    assert folder_hashes(Path(done_export.path)) == before
    assert_not_pushed(done_export)


def test_the_command_pushes_the_latest_version_by_default_and_prints_where(
    done_export, monkeypatch
):
    second = services.run_export(
        export_id=services.create_export(user=None, filters={}, seed=3).id, salt="s"
    )
    hub = FakeHub()
    monkeypatch.setattr("huggingface_hub.HfApi", lambda **_: hub)
    out = StringIO()

    call_command("push_dataset", "--repo", "chorus/data", "--token", "hf_arg", stdout=out)

    assert hub.called("upload_folder")[0][1]["folder_path"] == second.path
    assert hub.called("create_repo")[0][1]["private"] is True
    assert "v2 pushed to https://huggingface.co/datasets/chorus/data" in out.getvalue()
    assert_not_pushed(done_export)


def test_the_command_refuses_a_version_that_does_not_exist_or_is_not_done(done_export):
    with pytest.raises(CommandError, match="There is no export v7"):
        call_command("push_dataset", "7", "--repo", "chorus/data", "--token", "hf_x")


def test_the_command_says_when_there_is_nothing_to_push_yet():
    with pytest.raises(CommandError, match="no finished export to push yet"):
        call_command("push_dataset", "--repo", "chorus/data", "--token", "hf_x")


# --- stale runs ------------------------------------------------------------------------------


def make_tmp_folder(root: Path, *, age: timedelta) -> Path:
    folder = root / f".tmp-{uuid.uuid4().hex}"
    (folder / "sft").mkdir(parents=True)
    (folder / "sft" / "train.jsonl").write_text("{}\n")
    moment = time.time() - age.total_seconds()
    for path in (folder / "sft" / "train.jsonl", folder / "sft", folder):
        os.utime(path, (moment, moment))
    return folder


def test_an_export_running_past_the_stale_limit_is_marked_failed_as_worker_lost(settings):
    settings.CHORUS_EXPORT_STALE_MINUTES = 120
    now = timezone.now()
    lost = DatasetExport.objects.create(
        seed=1, status=ExportStatus.RUNNING, started_at=now - timedelta(minutes=121)
    )
    alive = DatasetExport.objects.create(
        seed=1, status=ExportStatus.RUNNING, started_at=now - timedelta(minutes=119)
    )
    pending = DatasetExport.objects.create(seed=1, created_at=now - timedelta(days=1))

    assert services.recover_stale_exports() == 1

    lost.refresh_from_db()
    assert (lost.status, lost.error) == (ExportStatus.FAILED, "worker lost")
    assert lost.finished_at is not None
    alive.refresh_from_db()
    assert alive.status == ExportStatus.RUNNING
    pending.refresh_from_db()
    assert pending.status == ExportStatus.PENDING


def test_recovery_removes_only_temporary_folders_untouched_for_longer_than_the_limit(
    export_dir, done_export, settings
):
    settings.CHORUS_EXPORT_STALE_MINUTES = 60
    old = make_tmp_folder(export_dir, age=timedelta(minutes=61))
    fresh = make_tmp_folder(export_dir, age=timedelta(minutes=59))
    # An old folder whose run is still writing a file is kept.
    writing = make_tmp_folder(export_dir, age=timedelta(minutes=90))
    (writing / "sft" / "train.jsonl").touch()
    version = Path(done_export.path)
    os.utime(version, (0, 0))
    before = folder_hashes(version)

    jobs.recover_stale_exports_job.delay().get()

    assert not old.exists()
    assert fresh.is_dir()
    assert writing.is_dir()
    assert folder_hashes(version) == before


def test_recovery_does_nothing_when_the_export_folder_does_not_exist_yet(export_dir):
    assert not export_dir.exists()

    assert services.recover_stale_exports() == 0


def test_a_run_given_up_as_lost_does_not_publish_when_it_finally_finishes(export_dir, monkeypatch):
    conversation()
    planned = services.create_export(user=None, filters={}, seed=1)
    original = services._write_metadata

    def lost_meanwhile(*args: Any, **kwargs: Any) -> None:
        DatasetExport.objects.filter(pk=planned.pk).update(
            status=ExportStatus.FAILED, error="worker lost"
        )
        original(*args, **kwargs)

    monkeypatch.setattr(services, "_write_metadata", lost_meanwhile)

    with pytest.raises(Conflict, match="given up as lost"):
        services.run_export(export_id=planned.id, salt="s")

    planned.refresh_from_db()
    assert (planned.status, planned.version) == (ExportStatus.FAILED, None)
    assert list(export_dir.iterdir()) == []


# --- retrying --------------------------------------------------------------------------------


def test_retrying_a_failed_export_creates_a_pending_one_with_the_same_filters_and_seed():
    TreeFactory(lang="de")
    failed = DatasetExport.objects.create(
        seed=42, filters={"langs": ["de"]}, status=ExportStatus.FAILED, error="worker lost"
    )

    retry = services.retry_export(export_id=failed.id)

    assert retry.pk != failed.pk
    assert (retry.status, retry.seed, retry.filters) == (
        ExportStatus.PENDING,
        42,
        services.create_export(user=None, filters={"langs": ["de"]}, seed=1).filters,
    )
    failed.refresh_from_db()
    assert (failed.status, failed.error) == (ExportStatus.FAILED, "worker lost")


@pytest.mark.parametrize("status", [ExportStatus.PENDING, ExportStatus.RUNNING, ExportStatus.DONE])
def test_only_a_failed_export_can_be_retried(status):
    export = DatasetExport.objects.create(
        seed=1, status=status, version=1 if status == ExportStatus.DONE else None
    )

    with pytest.raises(Conflict, match="only a failed export can be retried"):
        services.retry_export(export_id=export.id)


def test_retrying_an_unknown_export_is_not_found():
    with pytest.raises(NotFound):
        services.retry_export(export_id=uuid.uuid4())


def test_the_command_retries_a_failed_export_and_publishes_it(export_dir):
    conversation()
    failed = DatasetExport.objects.create(
        seed=9, filters={"validation": 0}, status=ExportStatus.FAILED, error="worker lost"
    )
    out = StringIO()

    call_command("export_dataset", "--retry", str(failed.id), "--salt", "s", stdout=out)

    retried = DatasetExport.objects.get(status=ExportStatus.DONE)
    assert (retried.seed, retried.version) == (9, 1)
    assert retried.filters["validation"] == 0
    assert str(export_dir / "v1") in out.getvalue()


def test_the_command_refuses_a_retry_with_new_filters():
    failed = DatasetExport.objects.create(seed=9, status=ExportStatus.FAILED)

    with pytest.raises(CommandError, match="reuses the failed export's filters and seed"):
        call_command("export_dataset", "--retry", str(failed.id), "--lang", "en")
