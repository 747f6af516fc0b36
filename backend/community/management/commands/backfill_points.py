"""Award the points existing data earned (run once after upgrading; safe to run again)."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from backend.community import selectors, services


class Command(BaseCommand):
    help = (
        "Fill the points ledger and totals from existing tasks, reviews and rankings; "
        "with --check, only report where they differ from a recomputation."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--check", action="store_true", help="Change nothing; fail if points are off."
        )

    def handle(self, *args: Any, check: bool = False, **options: Any) -> None:
        if not check:
            result = services.backfill_points()
            self.stdout.write(
                f"{result['awards_added']} awards added; {result['totals']} totals rows."
            )
        problems = selectors.points_discrepancies()
        if problems["awards"] or problems["totals"]:
            for kind, rows in problems.items():
                for row in rows:
                    self.stderr.write(f"{kind}: {row}")
            raise CommandError("Points differ from a recomputation.")
        self.stdout.write("Points are consistent.")
