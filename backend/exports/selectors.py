"""Reads for exports: the message stream, tree by tree, and earlier versions.

The stream reads Message and MessageTree directly rather than through trees.selectors: it
is one wide, ordered scan whose columns are the export format's, and no other app needs it.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

import orjson
from django.db.models import Exists, OuterRef, QuerySet, TextField
from django.db.models.functions import Cast

from backend.core.errors import NotFound
from backend.exports.formats import MessageRow
from backend.exports.models import DatasetExport, ExportStatus, Takedown
from backend.exports.options import ExportOptions
from backend.trees.models import Message

# Rows fetched per round trip from the server-side cursor: memory stays at one chunk plus
# the tree being assembled, whatever the size of the database.
CHUNK_SIZE = 2000

_COLUMNS = (
    "tree_id",
    "tree__state",
    "id",
    "parent_id",
    "role",
    "text",
    "lang",
    "author_id",
    "created_at",
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
    "author__data_consent_withdrawn_at",
    "is_taken_down",
)


@dataclass
class TreeRows:
    tree_id: UUID
    state: str
    rows: list[MessageRow]


def candidate_messages(options: ExportOptions) -> QuerySet[Message]:
    """Messages of the trees the tree-level filters (state, language) keep."""
    messages = Message.objects.filter(tree__state__in=options.states)
    if options.langs:
        messages = messages.filter(tree__lang__in=options.langs)
    return messages


def stream_trees(options: ExportOptions) -> Iterator[TreeRows]:
    """Every candidate tree with all its messages, trees in id order, in constant memory.

    Ordering by tree id alone lets PostgreSQL walk the (tree, parent) index instead of
    sorting the table; the order within a tree is fixed later (formats.build_tree).
    `.iterator()` reads through a server-side cursor on PostgreSQL.
    """
    rows = (
        candidate_messages(options)
        .annotate(
            is_taken_down=Exists(Takedown.objects.filter(message_id=OuterRef("id"))),
            # JSON columns come as text and are parsed by orjson: several times faster than
            # the json module behind JSONField, on three columns of every row.
            labels_json=Cast("label_summary", TextField()),
            emojis_json=Cast("emojis", TextField()),
            extra_json=Cast("source_extra", TextField()),
        )
        .order_by("tree_id")
        .values_list(*_COLUMNS)
        .iterator(chunk_size=CHUNK_SIZE)
    )
    for tree_id, group in itertools.groupby(rows, key=lambda row: row[0]):
        first = next(group)
        yield TreeRows(
            tree_id=tree_id,
            state=first[1],
            rows=[_message_row(row) for row in itertools.chain((first,), group)],
        )


def _message_row(row: tuple) -> MessageRow:
    return MessageRow(
        id=row[2],
        parent_id=row[3],
        role=row[4],
        text=row[5],
        lang=row[6],
        author_id=row[7],
        created_at=row[8],
        review_count=row[9],
        review_result=row[10],
        labels=orjson.loads(row[11]) or {},
        rank=row[12],
        consensus_strength=row[13],
        replies_agreement=row[14],
        synthetic=row[15],
        model_name=row[16],
        deleted=row[17],
        emojis=orjson.loads(row[18]) or {},
        extra=orjson.loads(row[19]) or {},
        is_consent_withdrawn=row[20] is not None,
        is_taken_down=row[21],
    )


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
