"""manage.py seed_demo: demo logins, an API key and trees in every state (backend.core.demo).

`make run` calls it on every start. The first run on a fresh database creates the demo;
later runs change nothing and print the logins (and the key, from var/demo-api-key.txt)
again. A database with other accounts or trees is left alone.
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from backend.core.demo import DemoSeedError, seed_demo, summary_lines


class Command(BaseCommand):
    help = "Create demo users, an API key and conversation trees in every state (idempotent)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--base-url",
            default="http://127.0.0.1:8000",
            help="Where Chorus is served, for the printed links (default: %(default)s).",
        )

    def handle(self, *args: Any, base_url: str, **options: Any) -> None:
        try:
            report = seed_demo()
        except DemoSeedError as exc:
            raise CommandError(f"demo data not complete: {exc}") from exc
        for line in summary_lines(report, base_url=base_url):
            self.stdout.write(line)
