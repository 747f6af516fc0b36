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

import queue
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO, Protocol

import orjson
import pyarrow as pa
import pyarrow.parquet as pq
from isal import igzip

from backend.exports.formats import FLAT_COLUMNS, FormattedTree

ROW_GROUP_SIZE = 20_000
# ISA-L's igzip at its level 2: on OpenAssistant-like text its files are 4% smaller than
# zlib's level 1 (the previous writer) and it deflates them 3.6 times as fast (270 against
# 76 MB/s on one core); zlib was a fifth of an export's CPU (bench/export.py). The bytes it
# writes are the same from run to run on one machine; ISA-L picks its code for the CPU's
# instruction set, so another machine may write another (equally valid) deflate stream of
# the same content.
GZIP_LEVEL = 2
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


assert tuple(MESSAGE_SCHEMA.names) == FLAT_COLUMNS  # the order of FormattedTree.table


def _line(record: Any) -> bytes:
    return orjson.dumps(record, option=orjson.OPT_SORT_KEYS | orjson.OPT_APPEND_NEWLINE)


def _flat_line(row: dict[str, Any]) -> bytes:
    # Flat rows are made with their keys in sorted order (formats.tree_records) and hold
    # no dicts: printed as they are, without sorting each row's keys again.
    return orjson.dumps(row, option=orjson.OPT_APPEND_NEWLINE)


class _Sink(Protocol):
    def write(self, data: bytes, /) -> Any: ...


class _Background:
    """Items handled in order on a thread of their own, so that the formatting of the next
    trees goes on meanwhile: file writes, igzip and Parquet's encoders all let go of the GIL
    while they work. At most QUEUE_ITEMS wait, so memory stays bounded however fast trees
    come in; a failure on the thread is raised by the next write or by close().
    """

    QUEUE_ITEMS = 8

    def __init__(self, name: str) -> None:
        self._items: queue.Queue[Any] = queue.Queue(maxsize=self.QUEUE_ITEMS)
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._drain, name=name)
        self._thread.start()

    def _put(self, item: Any) -> None:
        if self._error is not None:
            raise self._error
        self._items.put(item)

    def _stop(self) -> None:
        self._items.put(None)
        self._thread.join()
        if self._error is not None:
            raise self._error

    def _handle(self, item: Any) -> None:
        raise NotImplementedError

    def _finish(self) -> None:
        raise NotImplementedError

    def _drain(self) -> None:
        try:
            while (item := self._items.get()) is not None:
                if self._error is None:  # after a failure, drain so writers never block
                    self._handle(item)
        except BaseException as exc:
            self._error = exc
            while self._items.get() is not None:
                pass
        finally:
            self._finish()


class BackgroundFile(_Background):
    """A file written on a thread of its own, in chunks of BATCH_BYTES."""

    BATCH_BYTES = 1 << 20
    QUEUE_ITEMS = 4

    def __init__(self, path: Path) -> None:
        self._file = path.open("wb")
        self._sink = self._open_sink(self._file)
        self._batch: list[bytes] = []
        self._batched = 0
        super().__init__(f"write {path.name}")

    def write(self, data: bytes) -> None:
        self._batch.append(data)
        self._batched += len(data)
        if self._batched >= self.BATCH_BYTES:
            self._put(b"".join(self._batch))
            self._batch, self._batched = [], 0

    def close(self) -> None:
        if self._batch:
            self._put(b"".join(self._batch))
        self._stop()

    def _open_sink(self, file: BinaryIO) -> _Sink:
        return file

    def _handle(self, item: bytes) -> None:
        self._sink.write(item)

    def _finish(self) -> None:
        self._file.close()


class BackgroundGzip(BackgroundFile):
    """A gzip file compressed on a thread of its own (compressing after the formatting
    instead of beside it was a third of an export's time)."""

    def _open_sink(self, file: BinaryIO) -> _Sink:
        # filename="" and mtime=0 keep the temporary folder's path and the clock out of the
        # header, which would otherwise differ between two runs over the same data.
        self._gzip = igzip.IGzipFile(
            filename="", mode="wb", fileobj=file, mtime=0, compresslevel=GZIP_LEVEL
        )
        return self._gzip

    def _finish(self) -> None:
        try:
            self._gzip.close()
        finally:
            self._file.close()


class BackgroundParquet(_Background):
    """A Parquet file whose row groups are encoded and written on a thread of their own."""

    QUEUE_ITEMS = 1  # a row group is tens of megabytes

    def __init__(self, path: Path, schema: pa.Schema) -> None:
        self._writer = pq.ParquetWriter(path, schema)
        super().__init__(f"write {path.name}")

    def write_table(self, table: pa.Table) -> None:
        self._put(table)

    def close(self) -> None:
        self._stop()

    def _handle(self, item: pa.Table) -> None:
        self._writer.write_table(item)

    def _finish(self) -> None:
        self._writer.close()


class DatasetWriter:
    """Open with `with`; `write` each tree; `rows` counts the rows of every file written."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.rows: dict[str, int] = {}
        self._files: dict[str, BackgroundFile] = {}
        self._pending: list[tuple[Any, ...]] = []
        self._parquet: BackgroundParquet | None = None

    def __enter__(self) -> DatasetWriter:
        self._open(TREES_FILE)  # written even when no tree passes the filters
        self._parquet = BackgroundParquet(self.folder / PARQUET_FILE, MESSAGE_SCHEMA)
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
        self._write(f"messages/{tree.split}.jsonl.gz", tree.messages, _flat_line)
        self._write(f"sft/{tree.split}.jsonl", tree.sft)
        self._write(f"preference/{tree.split}.jsonl", tree.preference)
        self._pending.extend(tree.table)
        self.rows[PARQUET_FILE] += len(tree.messages)
        # Fixed-size row groups: where groups are cut is part of the file's bytes.
        while len(self._pending) >= ROW_GROUP_SIZE:
            self._write_group(self._pending[:ROW_GROUP_SIZE])
            del self._pending[:ROW_GROUP_SIZE]

    def _write(
        self, name: str, records: list[dict[str, Any]], line: Callable[[Any], bytes] = _line
    ) -> None:
        if not records:
            return
        stream = self._files.get(name) or self._open(name)
        stream.write(b"".join(map(line, records)))
        self.rows[name] += len(records)

    def _open(self, name: str) -> BackgroundFile:
        path = self.folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        stream = BackgroundGzip(path) if name.endswith(".gz") else BackgroundFile(path)
        self._files[name] = stream
        self.rows[name] = 0
        return stream

    def _write_group(self, rows: list[tuple[Any, ...]]) -> None:
        assert self._parquet is not None
        # Column by column from the rows' tuples, cut into columns in C: looking up every
        # key of every flat row's dict (Table.from_pylist, or an itemgetter) cost more than
        # twice as much, mostly in cache misses.
        columns = zip(*rows, strict=True)
        table = pa.Table.from_pydict(
            dict(zip(MESSAGE_SCHEMA.names, columns, strict=True)), schema=MESSAGE_SCHEMA
        )
        self._parquet.write_table(table)

    def _close_all(self) -> None:
        try:
            for stream in self._files.values():
                stream.close()
        finally:
            if self._parquet is not None:
                self._parquet.close()
