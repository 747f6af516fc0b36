"""Reads for exports: the message stream, tree by tree, and earlier versions.

The stream reads Message and MessageTree directly rather than through trees.selectors: it
is one wide, ordered scan whose columns are the export format's, and no other app needs it.
"""

from __future__ import annotations

import contextlib
import gc
import queue
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any
from uuid import UUID

import orjson
import psycopg
from django.db import connection
from django.db.models import Case, Count, F, Q, QuerySet, Sum, TextField, When
from django.db.models.functions import Cast, Extract

from backend.accounts.models import User
from backend.core.errors import NotFound
from backend.exports.formats import MessageRow
from backend.exports.models import DatasetExport, ExportStatus, Takedown
from backend.exports.options import ExportOptions
from backend.trees.models import Message, MessageTree

# Trees fetched per round trip when the stream reads through a server-side cursor (inside
# a transaction), and COPY blocks queued ahead of the formatting (outside one): memory
# stays at one batch plus the tree being formatted, whatever the size of the database.
CHUNK_SIZE = 200
QUEUE_BLOCKS = 8

# One JSON array per tree: [tree id, state, [message, ...]], each message an array in
# MessageRow's field order (in no particular order: formats.build_tree sorts). PostgreSQL
# builds and escapes the JSON on its own core while Python formats the trees before; one
# orjson call then parses a whole batch of trees. created_at comes as Python's isoformat()
# of the UTC time (formats.iso), which is what the formats print. Withdrawn consents and
# takedowns are tested against hashed sets (both are few) rather than a join per message.
_TREES_SQL = """
SELECT json_build_array(t.id, t.state, (
    SELECT json_agg(json_build_array(
        m.id, m.parent_id, m.role, m.text, m.lang, m.author_id,
        to_char(m.created_at AT TIME ZONE 'UTC', CASE
            WHEN extract(microseconds FROM m.created_at)::bigint %% 1000000 = 0
            THEN 'YYYY-MM-DD"T"HH24:MI:SS"+00:00"'
            ELSE 'YYYY-MM-DD"T"HH24:MI:SS.US"+00:00"' END),
        m.review_count, m.review_result, m.label_summary, m.rank, m.consensus_strength,
        m.replies_agreement, m.synthetic, m.model_name, m.deleted, m.emojis,
        m.source_extra,
        coalesce(m.author_id IN (
            SELECT id FROM accounts_user WHERE data_consent_withdrawn_at IS NOT NULL
        ), false),
        m.id IN (SELECT message_id FROM exports_takedown)
    ))
    FROM trees_message m
    WHERE m.tree_id = t.id
))::text
FROM trees_messagetree t
WHERE t.state = ANY(%s) {langs}
ORDER BY t.id
"""

# COPY's CSV format with a delimiter and a quote that JSON text never holds raw (PostgreSQL
# escapes every control character in it): each line is one tree's JSON, unescaped.
_COPY = "COPY ({query}) TO STDOUT WITH (FORMAT csv, DELIMITER E'\\x1f', QUOTE E'\\x1e')"


@dataclass
class TreeRows:
    tree_id: str
    state: str
    rows: list[MessageRow]


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


def _trees_query(options: ExportOptions) -> tuple[str, list[Any]]:
    params: list[Any] = [list(options.states)]
    langs = ""
    if options.langs:
        langs = "AND t.lang = ANY(%s)"
        params.append(list(options.langs))
    return _TREES_SQL.format(langs=langs), params


def stream_trees(options: ExportOptions) -> Iterator[TreeRows]:
    """Every candidate tree with all its messages, trees in id order, in constant memory.

    Outside a transaction (production) the trees come by COPY on a connection of the
    stream's own: PostgreSQL runs ahead of the formatting instead of waiting for each
    FETCH, and Django's connection stays free for the progress updates. Inside one (tests,
    a caller's atomic block) a second connection could not see its rows, so they come
    through a server-side cursor on Django's connection.
    """
    with _collector_paused():
        for batch in stream_batches(options):
            for tree_id, state, messages in orjson.loads(batch):
                if messages:
                    yield TreeRows(
                        tree_id=tree_id, state=state, rows=[_message_row(m) for m in messages]
                    )


def stream_batches(options: ExportOptions) -> Iterator[bytes]:
    """The candidate trees as JSON arrays of trees, a batch at a time (see stream_trees)."""
    sql, params = _trees_query(options)
    if connection.get_autocommit():
        return _copied_batches(sql, params)
    return _fetched_batches(sql, params)


@contextlib.contextmanager
def _collector_paused() -> Iterator[None]:
    """Python's cyclic garbage collector off while the trees stream (and are formatted and
    written, between two trees). An export makes millions of short-lived containers and no
    reference cycles, so reference counting frees all of it; the collector's passes over
    the young objects, and over the whole heap now and then, took about a third of the
    main thread's time. tests/backend/test_exports_formats.py checks that formatting and
    writing a tree leave no cycles behind.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def _fetched_batches(sql: str, params: list[Any]) -> Iterator[bytes]:
    """JSON arrays of trees through a server-side cursor (no WITH HOLD in a transaction)."""
    with connection.chunked_cursor() as cursor:
        cursor.execute(sql, params)
        while lines := cursor.fetchmany(CHUNK_SIZE):
            yield ("[" + ",".join(line for (line,) in lines) + "]").encode()


def _copied_batches(sql: str, params: list[Any]) -> Iterator[bytes]:
    """JSON arrays of trees from COPY, read on a thread so that PostgreSQL never waits for
    the formatting while the queue has room."""
    blocks: queue.Queue[bytes | BaseException | None] = queue.Queue(maxsize=QUEUE_BLOCKS)
    stop = threading.Event()
    reader = threading.Thread(
        target=_read_copy, args=(sql, params, blocks, stop), name="export stream", daemon=True
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


def _read_copy(
    sql: str,
    params: list[Any],
    blocks: queue.Queue[bytes | BaseException | None],
    stop: threading.Event,
) -> None:
    try:
        with psycopg.connect(**connection.get_connection_params()) as conn:
            conn.autocommit = True
            with psycopg.ClientCursor(conn) as cursor:
                query = cursor.mogrify(sql, params)
                with cursor.copy(_COPY.format(query=query)) as copy:
                    pending: list[bytes] = []
                    size = 0
                    for data in copy:
                        if stop.is_set():
                            raise _Stopped  # the copy cancels the query on its way out
                        pending.append(bytes(data))
                        size += len(data)
                        if size >= 1 << 20:
                            blocks.put(_json_batch(pending))
                            pending, size = [], 0
                    if pending:
                        blocks.put(_json_batch(pending))
        blocks.put(None)
    except _Stopped:
        pass
    except BaseException as exc:
        blocks.put(exc)


class _Stopped(Exception):
    """The formatting stopped reading (it failed): the COPY is abandoned."""


def _json_batch(lines: list[bytes]) -> bytes:
    # Every line is one tree's JSON and a newline.
    return b"[" + b",".join(line[:-1] for line in lines) + b"]"


def _message_row(m: list[Any]) -> MessageRow:
    created = m[6]
    m[6] = datetime.fromisoformat(created)
    # PostgreSQL prints a whole float without a point, which JSON reads as an int (and
    # NaN as a string).
    if m[11] is not None and m[11].__class__ is not float:
        m[11] = float(m[11])
    if m[12] is not None and m[12].__class__ is not float:
        m[12] = float(m[12])
    m[9] = m[9] or {}
    m[16] = m[16] or {}
    m[17] = m[17] or {}
    m.append(created)  # created_iso
    return MessageRow(*m)


def languages_without_trees(langs: Iterable[str]) -> list[str]:
    """Those of `langs` that no conversation tree is in, whatever its state, sorted."""
    wanted = set(langs)
    if not wanted:
        return []
    found = MessageTree.objects.filter(lang__in=wanted).values_list("lang", flat=True)
    return sorted(wanted - set(found.order_by().distinct()))


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
