"""manage.py import_oasst FILE [FILE...]: seed trees from OpenAssistant JSONL (.jsonl[.gz])."""

from __future__ import annotations

import gzip
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from backend.trees.importing import ImportReport, import_oasst

GZIP_MAGIC = b"\x1f\x8b"


class _Lines:
    """A file's lines as bytes, read one at a time (gzip by suffix or by magic bytes).

    A read error ends the stream instead of the import, so the lines before it still count.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self.count = 0
        self.error: str | None = None

    def __iter__(self) -> Iterator[bytes]:
        try:
            with self.path.open("rb") as raw:
                is_gzip = self.path.suffix == ".gz" or raw.read(2) == GZIP_MAGIC
                raw.seek(0)
                stream = gzip.GzipFile(fileobj=raw, mode="rb") if is_gzip else raw
                for line in stream:
                    self.count += 1
                    yield line
        except (OSError, EOFError) as exc:  # missing, unreadable, or a broken gzip stream
            self.error = f"{exc.strerror or exc}" if isinstance(exc, OSError) else str(exc)


class Command(BaseCommand):
    help = "Import conversation trees from OpenAssistant JSONL exports (trees or messages)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("files", nargs="+", type=Path, metavar="FILE")

    def handle(self, *args: Any, files: list[Path], **options: Any) -> None:
        unreadable = 0
        for path in files:
            lines = _Lines(path)
            report = import_oasst(lines=lines, source=str(path))
            if lines.error is not None and lines.count == 0:
                self.stderr.write(f"{path}: could not be read: {lines.error}")
                unreadable += 1
                continue
            self._print(path, report)
            if lines.error is not None:
                self.stderr.write(
                    f"{path}: reading stopped after line {lines.count}: {lines.error}"
                )
        if unreadable == len(files):
            raise CommandError("nothing imported: no file could be read")

    def _print(self, path: Path, report: ImportReport) -> None:
        self.stdout.write(
            f"{path}: {report.trees_imported} trees imported ({report.messages_imported} "
            f"messages), {report.trees_skipped} already imported, {len(report.errors)} errors"
        )
        if report.states:
            states = ", ".join(f"{state} {n}" for state, n in report.states.most_common())
            self.stdout.write(f"  states: {states}")
        for error in report.errors:
            self.stdout.write(f"  {error}")
