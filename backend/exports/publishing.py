"""Publishing a finished dataset version to the Hugging Face Hub as a dataset repo.

A push only reads the version folder: whatever happens on the network, the local export
stays as it was, and a failed push records nothing on the DatasetExport.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.conf import settings
from django.utils import timezone

from backend.core.errors import ChorusError, InvalidInput, NotFound, PublishFailed
from backend.exports import selectors
from backend.exports.models import DatasetExport, ExportStatus


def find_export_to_push(*, version: int | None) -> DatasetExport:
    """The done export of that version, or the latest one (NotFound, InvalidInput)."""
    if version is None:
        latest = selectors.previous_export()
        if latest is None:
            raise NotFound("There is no finished export to push yet.")
        return latest
    export = DatasetExport.objects.filter(version=version).first()
    if export is None:
        raise NotFound(f"There is no export v{version}.")
    return export


def push_export(
    *,
    export: DatasetExport,
    repo_id: str | None,
    token: str | None,
    private: bool,
    revision: str | None = None,
    tag: bool = True,
    api: Any = None,
) -> DatasetExport:
    """Upload the export's version folder to the dataset repo `repo_id` and record the push.

    The repo is created when missing (`private` only applies then: the Hub keeps an
    existing repo's visibility). `revision` names a branch to commit to (created when
    missing; the default branch otherwise). With `tag`, the commit is tagged `vN`. `api`
    is an `HfApi`; tests hand in a stand-in for the Hub.

    Raises InvalidInput (no token or repo, export not done, folder missing) and
    PublishFailed (network or Hub errors).
    """
    folder = _check_pushable(export, repo_id=repo_id, token=token)
    if api is None:
        from huggingface_hub import HfApi  # imported here: only pushes need it

        api = HfApi(token=token)
    tag_name = f"v{export.version}"
    kind: dict[str, Any] = {"repo_type": "dataset", "token": token}
    try:
        api.create_repo(repo_id, private=private, exist_ok=True, **kind)
        if revision:
            api.create_branch(repo_id, branch=revision, exist_ok=True, **kind)
        commit = api.upload_folder(
            repo_id=repo_id,
            folder_path=str(folder),
            revision=revision,
            commit_message=f"Chorus dataset {tag_name}",
            **kind,
        )
        commit_id = str(getattr(commit, "oid", "") or "")
        if tag:
            api.create_tag(
                repo_id, tag=tag_name, revision=commit_id or revision, exist_ok=True, **kind
            )
    # The Hub's refusals, the HTTP library's connection errors and bad repo names mean the
    # push did not happen; anything else is a bug here and is raised as it is.
    except _hub_errors() as exc:
        raise _publish_error(exc, export=export, folder=folder) from exc
    DatasetExport.objects.filter(pk=export.pk).update(
        pushed_repo=repo_id,
        pushed_at=timezone.now(),
        pushed_revision=commit_id or revision or "",
    )
    export.refresh_from_db()
    return export


def default_repo() -> str:
    return str(settings.CHORUS_HF_DATASET_REPO)


def default_token() -> str:
    return str(settings.HF_TOKEN)


def _check_pushable(export: DatasetExport, *, repo_id: str | None, token: str | None) -> Path:
    if not token:
        raise InvalidInput(
            "No Hugging Face token: set HF_TOKEN or pass one.",
            fields={"token": ["This field is required."]},
        )
    if not repo_id or repo_id.count("/") != 1:
        raise InvalidInput(
            "Name the dataset repo as ORG/NAME: set CHORUS_HF_DATASET_REPO or pass one.",
            fields={"repo_id": ["Expected ORG/NAME."]},
        )
    if export.status != ExportStatus.DONE or export.version is None:
        raise InvalidInput(f"The export is {export.status}; only a done export can be pushed.")
    folder = Path(export.path)
    if not folder.is_dir():
        raise InvalidInput(f"The folder of export v{export.version} is missing: {folder}.")
    return folder


def _hub_errors() -> tuple[type[Exception], ...]:
    """What a failed call of the Hub client raises, across huggingface_hub versions: its
    HTTP library's errors (requests' are OSErrors; huggingface_hub.errors.HTTPError is the
    base of the httpx-based versions' ones), HfHubHTTPError and HFValidationError."""
    from huggingface_hub import errors
    from huggingface_hub.utils import HFValidationError

    http_error: type[Exception] = getattr(errors, "HTTPError", OSError)
    return (OSError, http_error, HFValidationError)


def _publish_error(exc: Exception, *, export: DatasetExport, folder: Path) -> ChorusError:
    from huggingface_hub.utils import HfHubHTTPError, HFValidationError

    intact = f"the local export v{export.version} is intact at {folder}."
    if isinstance(exc, HFValidationError):
        return InvalidInput(f"The Hugging Face Hub refused the repo name ({exc}); {intact}")
    if isinstance(exc, HfHubHTTPError):
        return PublishFailed(f"The Hugging Face Hub refused the push ({exc}); {intact}")
    return PublishFailed(f"Could not reach the Hugging Face Hub ({exc}); {intact}")
