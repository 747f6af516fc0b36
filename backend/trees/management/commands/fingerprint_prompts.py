"""manage.py fingerprint_prompts [--all]: store the near-duplicate keys of first prompts.

Run once after upgrading to a version with near-duplicate detection (prompts written
before have no keys and are not found), and with --all after a change of the scheme
(`trees.fingerprint.VERSION`).
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from backend.trees.services import fingerprint_prompts


class Command(BaseCommand):
    help = "Store the near-duplicate keys of first prompts that lack them (or of all)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--all", action="store_true", help="Recompute every prompt's keys.")

    def handle(self, *args: Any, **options: Any) -> None:
        written = fingerprint_prompts(only_missing=not options["all"])
        self.stdout.write(f"{written} prompts fingerprinted.")
