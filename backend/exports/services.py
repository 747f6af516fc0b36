"""Dataset exports: planning a run, streaming the database into a version folder, publishing
it atomically; and takedowns.

A run writes into `<CHORUS_EXPORT_DIR>/.tmp-<export id>/` and only its last step renames
that folder to `v<N>`: readers never see a half-written version, and a failed run leaves
nothing but a failed DatasetExport row behind.

A run may be delivered twice: the broker hands the job out again when its worker died
(killed by the OOM killer, a redeploy) and, on Redis, when it ran past the visibility
timeout. While it runs, the run holds a PostgreSQL advisory lock on a connection of its
own, which the server releases the moment that worker's process dies. So a second
delivery can tell a live run (lock held: it does nothing) from a dead one (lock free: it
removes the dead run's folder and starts again), without timeouts.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import secrets
import shutil
import time
import uuid
from collections.abc import Iterator, Mapping
from datetime import timedelta
from pathlib import Path
from typing import Any

import orjson
import psycopg
from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from backend.accounts.models import User
from backend.core.errors import Conflict, InvalidInput, NotFound
from backend.exports import selectors
from backend.exports.card import CardInput, render_card
from backend.exports.formats import Anonymiser, format_tree
from backend.exports.models import DatasetExport, ExportStatus, Takedown
from backend.exports.options import ExportOptions
from backend.exports.stats import StatsCollector
from backend.exports.writer import DatasetWriter

log = logging.getLogger(__name__)

# pg_advisory_xact_lock key ("CHORUSEX"): versions are handed out one export at a time.
VERSION_LOCK = 0x43484F5255534558
# First half of the two-key advisory lock a running export holds ("CHRX"); the second
# half comes from the export's id.
RUN_LOCK_CLASS = 0x43485258
# Tests only: a file whose presence makes a run wait after its first tree (see _hold).
HOLD_FILE_VARIABLE = "CHORUS_TEST_EXPORT_HOLD_FILE"
MANIFEST_FILE = "export.json"
CARD_FILE = "README.md"
_VERSION_FOLDER = re.compile(r"^v(\d+)$")


def export_root() -> Path:
    return Path(settings.CHORUS_EXPORT_DIR)


def create_export(
    *, user: User | None, filters: Mapping[str, Any] | None, seed: int | None = None
) -> DatasetExport:
    """A pending export with checked options (InvalidInput otherwise, also for a language
    that no tree is in: such an export could only publish an empty version).

    Without a seed the previous version's is reused, so every tree keeps its split from
    version to version; only the first export draws one.
    """
    options = ExportOptions.from_json(filters)
    missing = selectors.languages_without_trees(options.langs)
    if missing:
        raise InvalidInput(
            "The export options are not valid.",
            fields={"langs": [f"no tree is in these languages: {', '.join(missing)}"]},
        )
    if seed is None:
        previous = selectors.previous_export()
        seed = previous.seed if previous is not None else secrets.randbelow(2**31)
    return DatasetExport.objects.create(filters=options.to_json(), seed=seed, created_by=user)


def start_export(
    *, user: User | None, filters: Mapping[str, Any] | None, seed: int | None = None
) -> DatasetExport:
    """Create an export and queue its run once this transaction commits."""
    from backend.exports import jobs  # jobs import services; imported here to avoid a cycle

    with transaction.atomic():
        export = create_export(user=user, filters=filters, seed=seed)
        jobs.run_export_job.delay_on_commit(str(export.id))
    return export


def run_export(*, export_id: uuid.UUID, salt: str | None = None) -> DatasetExport:
    """Write the export's version folder and publish it as the next version.

    `salt` (random when not given, never stored) anonymises user ids: the same seed and
    salt over the same data give the same bytes. A done export is returned as it is (a
    redelivered job), and so is one that another live worker is running; one running
    whose worker died starts again from nothing; a failed one raises Conflict. Any failure
    removes the temporary folder, marks the export failed and is raised again.
    """
    with _run_lock(export_id) as is_ours:
        if not is_ours:
            log.info("export %s runs in another worker; this delivery does nothing", export_id)
            return _get(export_id)
        export = _claim(export_id)
        if export.status == ExportStatus.DONE:
            return export
        folder = export_root() / f".tmp-{export_id.hex}"
        try:
            shutil.rmtree(folder, ignore_errors=True)  # what a dead run of it left behind
            folder.mkdir(parents=True)
            stats, rows = _write_dataset(export, folder, salt=salt or secrets.token_hex(16))
            _publish(export, folder, stats=stats, rows=rows)
        except BaseException as exc:
            shutil.rmtree(folder, ignore_errors=True)
            _mark_failed(export, exc)
            raise
        export.refresh_from_db()
        return export


@contextlib.contextmanager
def _run_lock(export_id: uuid.UUID) -> Iterator[bool]:
    """Hold the export's run lock, on a connection of its own, for the block; True when
    this process got it (no live run of the export exists elsewhere).

    Not on Django's connection: that one returns to the pool between jobs and may be
    replaced, while this lock must live exactly as long as this run (or its process).
    """
    from django.db import connection as django_connection

    params = django_connection.get_connection_params()
    key = int.from_bytes(export_id.bytes[:4], "big", signed=True)
    with psycopg.connect(**params, autocommit=True) as conn:
        row = conn.execute("SELECT pg_try_advisory_lock(%s, %s)", [RUN_LOCK_CLASS, key]).fetchone()
        yield bool(row and row[0])
    # Closing the connection releases the lock.


def _get(export_id: uuid.UUID) -> DatasetExport:
    export = DatasetExport.objects.filter(pk=export_id).first()
    if export is None:
        raise NotFound("No such export.")
    return export


def _claim(export_id: uuid.UUID) -> DatasetExport:
    # Only called under the run lock, so a "running" export has no live run: its worker
    # died and this delivery of the job starts it again.
    claimed = DatasetExport.objects.filter(
        pk=export_id, status__in=(ExportStatus.PENDING, ExportStatus.RUNNING)
    ).update(status=ExportStatus.RUNNING, started_at=timezone.now(), progress=0.0)
    export = _get(export_id)
    if not claimed and export.status != ExportStatus.DONE:
        raise Conflict(f"The export is {export.status}; only a pending export can run.")
    return export


def _write_dataset(
    export: DatasetExport, folder: Path, *, salt: str
) -> tuple[dict[str, Any], dict[str, int]]:
    """Stream every candidate tree through the formats into the writer; the figures."""
    options = ExportOptions.from_json(export.filters)
    anonymise = Anonymiser(salt)
    collector = StatsCollector()
    progress = _Progress(export, total=selectors.candidate_messages(options).count())
    with DatasetWriter(folder) as writer:
        for tree in selectors.stream_trees(options):
            formatted, excluded = format_tree(
                tree.rows,
                tree_id=tree.tree_id,
                state=tree.state,
                options=options,
                seed=export.seed,
                anonymise=anonymise,
            )
            collector.exclude(excluded, whole_tree=formatted is None)
            if formatted is not None:
                writer.write(formatted)
                collector.add(formatted)
            progress.advance(len(tree.rows))
            _hold()
    return collector.to_json(), writer.rows


def _hold() -> None:
    """Tests only: while the file named by CHORUS_TEST_EXPORT_HOLD_FILE exists, wait (after
    creating `<file>.reached`), so a fault test can kill the worker in the middle of a run.
    Unset in production, where this costs one environment lookup per tree."""
    hold = os.environ.get(HOLD_FILE_VARIABLE)
    if not hold or not os.path.exists(hold):
        return
    Path(f"{hold}.reached").touch()
    while os.path.exists(hold):
        time.sleep(0.05)


class _Progress:
    """Stores the share of messages read, about every 1%: at most a hundred UPDATEs."""

    def __init__(self, export: DatasetExport, *, total: int) -> None:
        self.export_id = export.pk
        self.total = max(total, 1)
        self.step = max(total // 100, 1)
        self.done = 0
        self.reported = 0

    def advance(self, messages: int) -> None:
        self.done += messages
        if self.done - self.reported >= self.step:
            self.reported = self.done
            # 1.0 means published, which only _publish may say.
            share = min(self.done / self.total, 0.99)
            DatasetExport.objects.filter(pk=self.export_id).update(progress=share)


def _highest_folder_version(root: Path) -> int:
    """The highest vN folder on disk: a folder whose row never committed must not be reused."""
    found = [int(m.group(1)) for p in root.iterdir() if (m := _VERSION_FOLDER.match(p.name))]
    return max(found, default=0)


def _publish(
    export: DatasetExport, folder: Path, *, stats: dict[str, Any], rows: dict[str, int]
) -> None:
    """Number the version, write its card and manifest, rename the folder into place."""
    published: Path | None = None
    try:
        with transaction.atomic():
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_xact_lock(%s)", [VERSION_LOCK])
            previous = selectors.previous_export()
            version = max(selectors.highest_version(), _highest_folder_version(folder.parent)) + 1
            since = None if previous is None else previous.started_at
            stats = {**stats, "takedowns_since_previous": selectors.takedowns_since(since)}
            _write_metadata(
                export, folder, version=version, previous=previous, stats=stats, rows=rows
            )
            target = folder.parent / f"v{version}"
            os.replace(folder, target)
            published = target
            # Only a run still marked running publishes: recover_stale_exports may have
            # given this one up as lost (a worker slower than CHORUS_EXPORT_STALE_MINUTES).
            updated = DatasetExport.objects.filter(
                pk=export.pk, status=ExportStatus.RUNNING
            ).update(
                status=ExportStatus.DONE,
                version=version,
                path=str(target),
                stats=stats,
                progress=1.0,
                finished_at=timezone.now(),
            )
            if not updated:
                raise Conflict("The export was given up as lost while it ran.")
    except BaseException:
        # The row did not commit, so the folder must not stay published either.
        if published is not None:
            shutil.rmtree(published, ignore_errors=True)
        raise


def _write_metadata(
    export: DatasetExport,
    folder: Path,
    *,
    version: int,
    previous: DatasetExport | None,
    stats: dict[str, Any],
    rows: dict[str, int],
) -> None:
    options = ExportOptions.from_json(export.filters)
    card = CardInput(
        version=version,
        options=options,
        seed=export.seed,
        stats=stats,
        rows=rows,
        license=settings.CHORUS_DATASET_LICENSE,
        previous_version=None if previous is None else previous.version,
        previous_stats=None if previous is None else previous.stats,
    )
    (folder / CARD_FILE).write_text(render_card(card), encoding="utf-8")
    manifest = {
        "format": "chorus-dataset/1",
        "version": version,
        "previous_version": card.previous_version,
        "seed": export.seed,
        "options": options.to_json(),
        "license": card.license,
        "files": dict(sorted(rows.items())),
        "stats": stats,
    }
    options_bytes = orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS | orjson.OPT_APPEND_NEWLINE
    (folder / MANIFEST_FILE).write_bytes(orjson.dumps(manifest, option=options_bytes))


def _mark_failed(export: DatasetExport, exc: BaseException) -> None:
    DatasetExport.objects.filter(pk=export.pk).update(
        status=ExportStatus.FAILED,
        error=f"{type(exc).__name__}: {exc}"[:10_000],
        finished_at=timezone.now(),
    )


@transaction.atomic
def retry_export(*, export_id: uuid.UUID, user: User | None = None) -> DatasetExport:
    """A new pending export with the filters and seed of a failed one (NotFound, Conflict).

    The failed row stays as it is: the history shows that the first run failed and why.
    """
    failed = DatasetExport.objects.filter(pk=export_id).first()
    if failed is None:
        raise NotFound("No such export.")
    if failed.status != ExportStatus.FAILED:
        raise Conflict(f"The export is {failed.status}; only a failed export can be retried.")
    return create_export(user=user, filters=failed.filters, seed=failed.seed)


def recover_stale_exports() -> int:
    """Mark exports running for longer than CHORUS_EXPORT_STALE_MINUTES failed ("worker
    lost") and remove temporary folders untouched for as long; the number of exports marked.

    A worker killed mid-run (OOM, a redeploy) never reaches run_export's cleanup, so its
    row would stay "running" and its half-written folder on disk forever.
    """
    stale = timedelta(minutes=settings.CHORUS_EXPORT_STALE_MINUTES)
    now = timezone.now()
    # A conditional UPDATE: an export that finishes meanwhile is no longer "running" and
    # is left alone (and _publish refuses to publish one marked failed here).
    lost = DatasetExport.objects.filter(
        status=ExportStatus.RUNNING, started_at__lt=now - stale
    ).update(status=ExportStatus.FAILED, error="worker lost", finished_at=now)
    root = export_root()
    if root.is_dir():
        oldest_kept = time.time() - stale.total_seconds()
        for folder in root.glob(".tmp-*"):
            if folder.is_dir() and _last_written(folder) < oldest_kept:
                shutil.rmtree(folder, ignore_errors=True)
    return lost


def requeue_waiting_exports() -> int:
    """Send the job again for every export still pending after
    CHORUS_EXPORT_REQUEUE_MINUTES; the number sent.

    An export's job is sent once its row commits, and a broker that cannot be reached then
    loses it (backend.celery.ChorusJob): the export would wait for a worker forever. One
    that is merely queued behind a long export gets another copy at each recovery run,
    which is harmless: the run lock and the claim make a job delivered twice run once.
    """
    from backend.exports import jobs  # jobs import services; imported here to avoid a cycle

    waited = timezone.now() - timedelta(minutes=settings.CHORUS_EXPORT_REQUEUE_MINUTES)
    waiting = DatasetExport.objects.filter(status=ExportStatus.PENDING, created_at__lt=waited)
    sent = 0
    for export_id in waiting.order_by("created_at").values_list("id", flat=True):
        jobs.run_export_job.delay(str(export_id))
        sent += 1
    if sent:
        log.warning("sent the job of %d export(s) still waiting for a worker again", sent)
    return sent


def _last_written(folder: Path) -> float:
    """The newest modification time in the folder: a live run keeps writing its files."""
    newest = folder.stat().st_mtime
    for parent, _, files in os.walk(folder):
        for name in files:
            newest = max(newest, os.stat(os.path.join(parent, name)).st_mtime)
    return newest


@transaction.atomic
def take_down_message(*, message_id: uuid.UUID, reason: str, user: User | None = None) -> Takedown:
    """Remove a message (and its replies) from every later dataset version. Idempotent: a
    second takedown of the same message keeps the first one's reason and time."""
    takedown, _ = Takedown.objects.get_or_create(
        message_id=message_id, defaults={"reason": reason, "created_by": user}
    )
    return takedown
