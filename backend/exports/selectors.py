"""Reads for exports: the message stream, in batches of whole trees, and earlier versions.

The stream reads Message and MessageTree directly rather than through trees.selectors: it
is one wide, ordered scan whose columns are the export format's, and no other app needs it.
"""

from __future__ import annotations

import contextlib
import io
import queue
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any
from uuid import UUID

import polars as pl
import psycopg
import pyarrow.csv as pacsv
from django.db import connection
from django.db.models import Case, Count, F, Q, QuerySet, Sum, TextField, When
from django.db.models.functions import Cast, Extract

from backend.accounts.models import User
from backend.core.errors import NotFound
from backend.exports import frames
from backend.exports.models import DatasetExport, ExportStatus, Takedown
from backend.exports.options import ExportOptions
from backend.trees.models import Message

# Rows fetched per round trip when the stream reads through a server-side cursor (inside a
# transaction).
CHUNK_SIZE = 2000

# The messages of the candidate trees as plain columns, in frames.INPUT_TYPES' order,
# trees in id order: what frames.shape works on. Dates come printed as the export prints
# them (formats.iso) and as microseconds; each catalogue label's value has a column (for
# the label filters and statistics). Most messages have no extras: their JSON is left alone.
_FRAME_SQL = """
SELECT m.tree_id::text, t.state, m.id::text, m.parent_id::text, m.role, m.text, m.lang,
    m.author_id::text,
    to_char(m.created_at AT TIME ZONE 'UTC', CASE
        WHEN extract(microseconds FROM m.created_at)::bigint %% 1000000 = 0
        THEN 'YYYY-MM-DD"T"HH24:MI:SS"+00:00"'
        ELSE 'YYYY-MM-DD"T"HH24:MI:SS.US"+00:00"' END),
    (extract(epoch FROM m.created_at) * 1000000)::bigint,
    m.depth, m.review_count, m.review_result, m.label_summary::text, m.rank,
    m.consensus_strength, m.replies_agreement, m.synthetic, m.model_name, m.deleted,
    m.emojis::text,
    CASE WHEN m.source_extra = '{{}}'::jsonb THEN '{{}}' ELSE x.extra::text END,
    CASE WHEN m.source_extra <> '{{}}'::jsonb THEN (x.extra - %(modelled)s::text[])::text END,
    CASE WHEN m.parent_id IS NULL AND jsonb_typeof(m.source_extra -> 'tree') = 'object'
        THEN ((m.source_extra -> 'tree') - ARRAY['message_tree_id', 'tree_state', 'prompt'])::text
    END,
    coalesce(m.author_id IN (
        SELECT id FROM accounts_user WHERE data_consent_withdrawn_at IS NOT NULL
    ), false),
    m.id IN (SELECT message_id FROM exports_takedown),
    {labels}
FROM trees_message m
JOIN trees_messagetree t ON t.id = m.tree_id
CROSS JOIN LATERAL (SELECT CASE WHEN m.parent_id IS NULL THEN m.source_extra - 'tree'
    ELSE m.source_extra END AS extra) x
WHERE t.state = ANY(%(states)s) {langs}
ORDER BY m.tree_id
"""
# Modelled fields of a tree line's message: an extra of the same name gives way.
_MODELLED = [*frames.NODE_FIELDS, "emojis", "replies", "labels"]
# A batch is cut at the first tree that starts after FRAME_ROWS rows (from a cursor) or
# FRAME_BYTES of CSV (from COPY), and at most two wait while one is shaped: memory stays at
# a few batches whatever the size of the database. Smaller batches cost more per message
# (each column operation has a fixed cost), larger ones more memory.
FRAME_ROWS = 4_000
FRAME_BYTES = 3 << 20


def candidate_messages(options: ExportOptions) -> QuerySet[Message]:
    """Messages of the trees the tree-level filters (state, language) keep."""
    messages = Message.objects.filter(tree__state__in=options.states)
    if options.langs:
        messages = messages.filter(tree__lang__in=options.langs)
    return messages


def stream_rows(options: ExportOptions) -> QuerySet[Message, tuple[Any, ...]]:
    """Every candidate message as a plain row of the columns the export reads, trees in id
    order: what the export streams, before PostgreSQL shapes it into JSON per tree (the
    benchmark times COPY of this query as the rate at which the rows can leave the
    database)."""
    text = TextField()
    return (
        candidate_messages(options)
        .annotate(
            tree_key=Cast("tree_id", text),
            key=Cast("id", text),
            parent_key=Cast("parent_id", text),
            author_key=Cast("author_id", text),
            created_text=Cast("created_at", text),
            labels_json=Cast("label_summary", text),
            emojis_json=Cast("emojis", text),
            extra_json=Cast("source_extra", text),
            is_consent_withdrawn=Q(author_id__in=_withdrawn_authors()),
            is_taken_down=Q(id__in=Takedown.objects.values("message_id")),
        )
        .order_by("tree_id")
        .values_list(
            *("tree_key", "tree__state", "key", "parent_key", "role", "text", "lang"),
            *("author_key", "created_text", "review_count", "review_result", "labels_json"),
            *("rank", "consensus_strength", "replies_agreement", "synthetic", "model_name"),
            *("deleted", "emojis_json", "extra_json", "is_consent_withdrawn", "is_taken_down"),
        )
    )


def _withdrawn_authors() -> QuerySet[User, Any]:
    return User.objects.filter(data_consent_withdrawn_at__isnull=False).values("id")


def stream_query(options: ExportOptions) -> str:
    """stream_rows' SQL with its parameters inlined (for `COPY (...) TO STDOUT`)."""
    sql, params = stream_rows(options).query.sql_with_params()
    with connection.cursor() as cursor:
        return cursor.mogrify(sql, params)


def _frame_query(options: ExportOptions) -> tuple[str, dict[str, Any]]:
    params: dict[str, Any] = {
        "states": list(options.states),
        "modelled": _MODELLED,
    }
    langs = ""
    if options.langs:
        langs = "AND t.lang = ANY(%(langs)s)"
        params["langs"] = list(options.langs)
    labels = ",\n    ".join(
        f"(m.label_summary -> '{name}' -> 'value')::float8" for name in frames.LABEL_NAMES
    )
    return _FRAME_SQL.format(langs=langs, labels=labels), params


def stream_frames(options: ExportOptions) -> Iterator[pl.DataFrame]:
    """Every candidate tree with all its messages, as batches of whole trees (trees in id
    order), in constant memory.

    Outside a transaction (production) the rows come by COPY, in CSV, on a connection of
    the stream's own, read on a thread: PostgreSQL works ahead on the other core while
    the previous batch is shaped, and Django's connection stays free for the progress
    updates; pyarrow parses each batch's CSV in C++. Inside one (tests, a caller's atomic
    block) a second connection could not see the rows, so they come through a server-side
    cursor on Django's connection.
    """
    sql, params = _frame_query(options)
    if connection.get_autocommit():
        yield from _copied_frames(sql, params)
    else:
        yield from _fetched_frames(sql, params)


def _fetched_frames(sql: str, params: dict[str, Any]) -> Iterator[pl.DataFrame]:
    with connection.chunked_cursor() as cursor:
        cursor.execute(sql, params)
        pending: list[tuple[Any, ...]] = []
        while rows := cursor.fetchmany(CHUNK_SIZE):
            for row in rows:
                if len(pending) >= FRAME_ROWS and row[0] != pending[-1][0]:
                    yield frames.frame_from_rows(pending)
                    pending = []
                pending.append(row)
        if pending:
            yield frames.frame_from_rows(pending)


_CSV_READ = pacsv.ReadOptions(column_names=list(frames.INPUT_TYPES), block_size=4 << 20)
_CSV_PARSE = pacsv.ParseOptions(newlines_in_values=True)
_CSV_CONVERT = pacsv.ConvertOptions(
    column_types=frames.INPUT_TYPES,
    strings_can_be_null=True,
    quoted_strings_can_be_null=False,
    true_values=["t"],
    false_values=["f"],
)


def _copied_frames(sql: str, params: dict[str, Any]) -> Iterator[pl.DataFrame]:
    """Batches of whole trees from COPY, read and parsed on a thread so that PostgreSQL
    never waits for the shaping while the queue has room."""
    blocks: queue.Queue[pl.DataFrame | BaseException | None] = queue.Queue(maxsize=2)
    stop = threading.Event()
    reader = threading.Thread(
        target=_read_frames, args=(sql, params, blocks, stop), name="export stream", daemon=True
    )
    reader.start()
    try:
        while (block := blocks.get()) is not None:
            if isinstance(block, BaseException):
                raise block
            yield block
    finally:
        stop.set()
        while reader.is_alive():  # unblock a reader waiting for room, then let it finish
            with contextlib.suppress(queue.Empty):
                blocks.get(timeout=0.1)
        reader.join()


def _read_frames(
    sql: str,
    params: dict[str, Any],
    blocks: queue.Queue[pl.DataFrame | BaseException | None],
    stop: threading.Event,
) -> None:
    """COPY's rows (PostgreSQL sends each row as one message) joined into blocks of about
    FRAME_BYTES, cut only where a tree ends: every CSV row starts with its tree's id,
    printed in 36 characters."""
    try:
        with psycopg.connect(**connection.get_connection_params()) as conn:
            conn.autocommit = True
            with psycopg.ClientCursor(conn) as cursor:
                query = cursor.mogrify(sql, params)
                with cursor.copy(f"COPY ({query}) TO STDOUT WITH (FORMAT csv)") as copy:
                    pending: list[bytes] = []
                    size = 0
                    tree = b""
                    for data in copy:
                        row = bytes(data)
                        if size >= FRAME_BYTES and row[:36] != tree:
                            if stop.is_set():
                                raise _Stopped  # the copy cancels the query on its way out
                            blocks.put(_parsed(pending))
                            pending, size = [], 0
                        tree = row[:36]
                        pending.append(row)
                        size += len(row)
                    if pending:
                        blocks.put(_parsed(pending))
        blocks.put(None)
    except _Stopped:
        pass
    except BaseException as exc:
        blocks.put(exc)


def _parsed(rows: list[bytes]) -> pl.DataFrame:
    """CSV rows as a batch, parsed by pyarrow in C++ (without the GIL)."""
    table = pacsv.read_csv(
        io.BytesIO(b"".join(rows)),
        read_options=_CSV_READ,
        parse_options=_CSV_PARSE,
        convert_options=_CSV_CONVERT,
    )
    return pl.from_arrow(table)  # type: ignore[return-value]


class _Stopped(Exception):
    """The shaping stopped reading (it failed): the COPY is abandoned."""


def get_export(export_id: UUID) -> DatasetExport:
    export = DatasetExport.objects.filter(pk=export_id).first()
    if export is None:
        raise NotFound("No such export.")
    return export


def previous_export() -> DatasetExport | None:
    """The latest published version."""
    return DatasetExport.objects.filter(status=ExportStatus.DONE).order_by("-version").first()


def highest_version() -> int:
    latest = previous_export()
    return 0 if latest is None or latest.version is None else latest.version


def takedowns_since(moment: datetime | None) -> int:
    takedowns = Takedown.objects.all()
    if moment is not None:
        takedowns = takedowns.filter(created_at__gt=moment)
    return takedowns.count()


def recent_exports(*, limit: int = 20) -> list[DatasetExport]:
    """The latest exports, running and pending ones first, then by when they were made."""
    return list(
        DatasetExport.objects.select_related("created_by").order_by(
            Case(
                When(status__in=[ExportStatus.RUNNING, ExportStatus.PENDING], then=0),
                default=1,
            ),
            "-created_at",
        )[:limit]
    )


def downloadable_version(export_id: UUID) -> tuple[DatasetExport, Path]:
    """A done export and its version folder (NotFound when not done or the folder is gone)."""
    export = get_export(export_id)
    folder = Path(export.path)
    if export.status != ExportStatus.DONE or not export.path or not folder.is_dir():
        raise NotFound("This export has no version folder to download.")
    return export, folder


# --- Figures for monitoring (backend.core.metrics reads them at each scrape) ---------------


@dataclass(frozen=True)
class ExportDurations:
    """Run times of the finished exports of one status, as a cumulative histogram."""

    bucket_counts: list[int]  # exports that ran at most each bound, in the bounds' order
    count: int
    total_seconds: float


def export_counts() -> dict[str, int]:
    """How many exports are in each status (every status, zero where none)."""
    counts = dict.fromkeys(ExportStatus.values, 0)
    rows = DatasetExport.objects.values_list("status").annotate(n=Count("id")).order_by()
    counts.update(dict(rows))
    return counts


def export_durations(bounds: list[float]) -> dict[str, ExportDurations]:
    """From start to finish, in seconds, of the done and failed exports, by status: one
    statement, however many exports there are."""
    seconds = Extract(F("finished_at") - F("started_at"), "epoch")
    buckets = {
        f"le_{i}": Count("id", filter=Q(seconds__lte=bound)) for i, bound in enumerate(bounds)
    }
    rows = (
        DatasetExport.objects.filter(
            status__in=[ExportStatus.DONE, ExportStatus.FAILED],
            started_at__isnull=False,
            finished_at__isnull=False,
        )
        .annotate(seconds=seconds)
        .values("status")
        .annotate(n=Count("id"), total=Sum("seconds"), **buckets)
        .values_list("status", "n", "total", *buckets)
        .order_by()
    )
    return {
        status: ExportDurations(
            bucket_counts=list(below), count=n, total_seconds=float(total or 0.0)
        )
        for status, n, total, *below in rows
    }
