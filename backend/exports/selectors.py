"""Reads for exports: the message stream, tree by tree, and earlier versions.

The stream reads Message and MessageTree directly rather than through trees.selectors: it
is one wide, ordered scan whose columns are the export format's, and no other app needs it.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from operator import itemgetter
from pathlib import Path
from typing import Any
from uuid import UUID

import orjson
from django.db import connection
from django.db.models import Case, Exists, OuterRef, Q, QuerySet, TextField, When
from django.db.models.functions import Cast

from backend.core.errors import NotFound
from backend.exports.formats import MessageRow
from backend.exports.models import DatasetExport, ExportStatus, Takedown
from backend.exports.options import ExportOptions
from backend.trees.models import Message

# Rows fetched per round trip from the server-side cursor: memory stays at one chunk plus
# the tree being assembled, whatever the size of the database.
CHUNK_SIZE = 2000

# The stream's columns, in MessageRow's order after the tree's id and state. Ids, times and
# JSON come as text: psycopg hands text over without conversion, and the formats need ids
# and times as text anyway (Django's own loaders for uuid and timestamptz are pure Python
# and were a fifth of an export's time). UUIDs print in the same order as they sort.
_COLUMNS = (
    "tree_key",
    "tree__state",
    "key",
    "parent_key",
    "role",
    "text",
    "lang",
    "author_key",
    "created_text",
    "review_count",
    "review_result",
    "labels_json",
    "rank",
    "consensus_strength",
    "replies_agreement",
    "synthetic",
    "model_name",
    "deleted",
    "emojis_json",
    "extra_json",
    "is_consent_withdrawn",
    "is_taken_down",
)


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
    """Every candidate message as a tuple of _COLUMNS, trees in id order.

    Ordering by tree id alone lets PostgreSQL walk the (tree, parent) index instead of
    sorting the table; the order within a tree is fixed later (formats.build_tree).
    """
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
            is_consent_withdrawn=Q(author__data_consent_withdrawn_at__isnull=False),
            is_taken_down=Exists(Takedown.objects.filter(message_id=OuterRef("id"))),
        )
        .order_by("tree_id")
        .values_list(*_COLUMNS)
    )


def stream_query(options: ExportOptions) -> str:
    """The stream's SQL with its parameters inlined (for `COPY (...) TO STDOUT` in the
    benchmark, which compares the export with PostgreSQL's own rate for the same rows)."""
    sql, params = stream_rows(options).query.sql_with_params()
    with connection.cursor() as cursor:
        return cursor.mogrify(sql, params)


def stream_trees(options: ExportOptions) -> Iterator[TreeRows]:
    """Every candidate tree with all its messages, trees in id order, in constant memory.

    The rows come through a server-side cursor (Django's, as `.iterator()` uses: declared
    WITH HOLD in autocommit mode) in chunks, as plain tuples: no model instances, no
    per-row converters.
    """
    sql, params = stream_rows(options).query.sql_with_params()
    with connection.chunked_cursor() as cursor:
        cursor.execute(sql, params)
        chunks = iter(lambda: cursor.fetchmany(CHUNK_SIZE), [])
        rows = itertools.chain.from_iterable(chunks)
        for tree_id, group in itertools.groupby(rows, key=itemgetter(0)):
            tree = list(group)
            yield TreeRows(tree_id=tree_id, state=tree[0][1], rows=[_message_row(r) for r in tree])


def _message_row(row: tuple[Any, ...]) -> MessageRow:
    return MessageRow(
        id=row[2],
        parent_id=row[3],
        role=row[4],
        text=row[5],
        lang=row[6],
        author_id=row[7],
        created_at=datetime.fromisoformat(row[8]),
        review_count=row[9],
        review_result=row[10],
        labels=_json_object(row[11]),
        rank=row[12],
        consensus_strength=row[13],
        replies_agreement=row[14],
        synthetic=row[15],
        model_name=row[16],
        deleted=row[17],
        emojis=_json_object(row[18]),
        extra=_json_object(row[19]),
        is_consent_withdrawn=row[20],
        is_taken_down=row[21],
    )


def _json_object(text: str) -> Any:
    # Most messages have no emojis and no extras: "{}" needs no parser.
    return {} if text == "{}" else orjson.loads(text) or {}


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
