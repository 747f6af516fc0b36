"""The files of one dataset folder, written as trees stream in (no Django here).

Layout (paths relative to the folder):

    trees.jsonl.gz              OpenAssistant trees, one per line, all splits
    messages.parquet            one row per message, all splits (a `split` column)
    messages/<split>.jsonl.gz   the same rows by split, for the `messages` config
    sft/<split>.jsonl           {"messages": [...]}
    preference/<split>.jsonl    {"prompt", "chosen", "rejected", "margin"}

The flat rows are written twice because `datasets` reads every config of a folder with one
builder, chosen from the first config's files: a Parquet `messages` config beside JSONL
ones cannot load. messages.parquet stays for pandas, DuckDB and friends.

Output is byte-for-byte reproducible: gzip headers carry no name and no time, JSON keys
are sorted, and Parquet row groups are cut at fixed row counts. A split file is created
with its first row, so an empty split has no file (and no entry in the card).
"""

from __future__ import annotations

import gzip
import queue
import threading
from pathlib import Path
from typing import Any, Protocol

import orjson
import pyarrow as pa
import pyarrow.parquet as pq

from backend.exports.formats import FormattedTree

ROW_GROUP_SIZE = 20_000
# zlib level 1: on OpenAssistant-like text it writes files about a fifth larger than level 6
# (gzip's default) in a third of the time. At level 6 compressing the trees and the messages
# took more CPU than everything else in an export together (bench/export.py).
GZIP_LEVEL = 1
TREES_FILE = "trees.jsonl.gz"
PARQUET_FILE = "messages.parquet"

MESSAGE_SCHEMA = pa.schema(
    [
        ("message_id", pa.string()),
        ("parent_id", pa.string()),
        ("user_id", pa.string()),
        ("created_date", pa.string()),
        ("text", pa.string()),
        ("role", pa.string()),
        ("lang", pa.string()),
        ("review_count", pa.int32()),
        ("review_result", pa.bool_()),
        ("deleted", pa.bool_()),
        ("rank", pa.int32()),
        ("synthetic", pa.bool_()),
        ("model_name", pa.string()),
        ("emojis", pa.string()),
        ("labels", pa.string()),
        ("extra", pa.string()),
        ("message_tree_id", pa.string()),
        ("tree_state", pa.string()),
        ("split", pa.string()),
    ]
)


def _line(record: Any) -> bytes:
    return orjson.dumps(record, option=orjson.OPT_SORT_KEYS | orjson.OPT_APPEND_NEWLINE)


class _Stream(Protocol):
    def write(self, data: bytes, /) -> Any: ...
    def close(self) -> None: ...


class BackgroundGzip:
    """A gzip file compressed on a thread of its own. zlib lets go of the GIL while it
    works, so compressing runs beside the formatting of the next trees instead of after it
    (it was a third of an export's time). Writes are batched into chunks of BATCH_BYTES and
    at most QUEUE_CHUNKS wait, so memory stays bounded however fast trees come in.
    """

    BATCH_BYTES = 1 << 20
    QUEUE_CHUNKS = 8

    def __init__(self, path: Path) -> None:
        self._file = path.open("wb")
        # filename="" and mtime=0 keep the temporary folder's path and the clock out of the
        # header, which would otherwise differ between two runs over the same data.
        self._gzip = gzip.GzipFile(
            filename="", mode="wb", fileobj=self._file, mtime=0, compresslevel=GZIP_LEVEL
        )
        self._batch: list[bytes] = []
        self._batched = 0
        self._chunks: queue.Queue[bytes | None] = queue.Queue(maxsize=self.QUEUE_CHUNKS)
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._compress, name=f"gzip {path.name}")
        self._thread.start()

    def write(self, data: bytes) -> None:
        if self._error is not None:
            raise self._error
        self._batch.append(data)
        self._batched += len(data)
        if self._batched >= self.BATCH_BYTES:
            self._chunks.put(b"".join(self._batch))
            self._batch, self._batched = [], 0

    def close(self) -> None:
        if self._batch:
            self._chunks.put(b"".join(self._batch))
        self._chunks.put(None)
        self._thread.join()
        if self._error is not None:
            raise self._error

    def _compress(self) -> None:
        try:
            while (chunk := self._chunks.get()) is not None:
                if self._error is None:  # after a failure, drain so writers never block
                    self._gzip.write(chunk)
        except BaseException as exc:
            self._error = exc
            while self._chunks.get() is not None:
                pass
        finally:
            try:
                self._gzip.close()
            finally:
                self._file.close()


class DatasetWriter:
    """Open with `with`; `write` each tree; `rows` counts the rows of every file written."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.rows: dict[str, int] = {}
        self._files: dict[str, _Stream] = {}
        self._pending: list[dict[str, Any]] = []
        self._parquet: pq.ParquetWriter | None = None

    def __enter__(self) -> DatasetWriter:
        self._open(TREES_FILE)  # written even when no tree passes the filters
        self._parquet = pq.ParquetWriter(self.folder / PARQUET_FILE, MESSAGE_SCHEMA)
        self.rows[PARQUET_FILE] = 0
        return self

    def __exit__(self, exc_type: object, *exc_info: object) -> None:
        try:
            if exc_type is None and self._pending:
                self._write_group(self._pending)
        finally:
            self._close_all()

    def write(self, tree: FormattedTree) -> None:
        self._write(TREES_FILE, [tree.record])
        self._write(f"messages/{tree.split}.jsonl.gz", tree.messages)
        self._write(f"sft/{tree.split}.jsonl", tree.sft)
        self._write(f"preference/{tree.split}.jsonl", tree.preference)
        self._pending.extend(tree.messages)
        self.rows[PARQUET_FILE] += len(tree.messages)
        # Fixed-size row groups: where groups are cut is part of the file's bytes.
        while len(self._pending) >= ROW_GROUP_SIZE:
            self._write_group(self._pending[:ROW_GROUP_SIZE])
            del self._pending[:ROW_GROUP_SIZE]

    def _write(self, name: str, records: list[dict[str, Any]]) -> None:
        if not records:
            return
        stream = self._files.get(name) or self._open(name)
        stream.write(b"".join(_line(record) for record in records))
        self.rows[name] += len(records)

    def _open(self, name: str) -> _Stream:
        path = self.folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        # A large buffer for plain files too: every write lets go of the GIL, and each of
        # those hands it to the compressing threads for a while.
        stream: _Stream = (
            BackgroundGzip(path)
            if name.endswith(".gz")
            else path.open("wb", buffering=BackgroundGzip.BATCH_BYTES)
        )
        self._files[name] = stream
        self.rows[name] = 0
        return stream

    def _write_group(self, rows: list[dict[str, Any]]) -> None:
        assert self._parquet is not None
        # Column by column: twice as fast as Table.from_pylist, which looks up every key of
        # every row through the generic mapping protocol.
        columns = {name: [row[name] for row in rows] for name in MESSAGE_SCHEMA.names}
        self._parquet.write_table(pa.Table.from_pydict(columns, schema=MESSAGE_SCHEMA))

    def _close_all(self) -> None:
        try:
            for stream in self._files.values():
                stream.close()
        finally:
            if self._parquet is not None:
                self._parquet.close()
