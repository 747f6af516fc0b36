"""manage.py check_invariants: check the whole database against its invariants
(backend.core.invariants); prints each broken one with rows that break it, fails if any."""

from __future__ import annotations

import json
import time
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from backend.core.invariants import check_database


class Command(BaseCommand):
    help = (
        "Check counters, tasks, points and tree states over the whole database; "
        "exit non-zero when an invariant is broken."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--limit", type=int, default=10, help="Rows shown per broken invariant (default 10)."
        )
        parser.add_argument("--json", action="store_true", help="Print the report as JSON.")
        parser.add_argument("--timings", action="store_true", help="Print each check's time.")

    def handle(self, *args: Any, limit: int, json: bool, timings: bool, **options: Any) -> None:
        if limit < 1:
            raise CommandError("--limit must be at least 1.")
        began = time.perf_counter()
        seconds: dict[str, float] = {}
        report = check_database(limit=limit, timings=seconds)
        elapsed = time.perf_counter() - began
        if timings:
            for name, took in sorted(seconds.items(), key=lambda item: -item[1]):
                self.stderr.write(f"{took:8.3f} s  {name}")
        if json:
            self.stdout.write(_json_dumps({"violations": report, "seconds": round(elapsed, 3)}))
        else:
            for name, rows in report.items():
                self.stdout.write(f"BROKEN: {name}")
                for row in rows:
                    self.stdout.write(f"    {row}")
        if report:
            raise CommandError(
                f"{len(report)} invariant(s) broken ({len(seconds)} checked in {elapsed:.1f} s)."
            )
        if not json:
            self.stdout.write(f"All {len(seconds)} invariants hold ({elapsed:.1f} s).")


def _json_dumps(value: object) -> str:
    return json.dumps(value, sort_keys=True)
