"""manage.py export_dataset: write the next dataset version now, in this process.

    manage.py export_dataset --lang en --max-label spam=0.5 toxicity=0.8 --validation 0.05

Prints the version folder and its figures. --seed and --salt together reproduce an export
byte for byte (the salt is never stored: keep it if you need to). `--retry EXPORT_ID` runs
a failed export again, with its filters and seed, as a new export.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

from django.core.management.base import BaseCommand, CommandError, CommandParser

from backend.core.errors import ChorusError
from backend.exports import services
from backend.exports.models import DatasetExport
from backend.exports.options import BRANCH_POLICIES, REVIEW_CHOICES


def _label_limit(text: str) -> tuple[str, float]:
    name, sep, value = text.partition("=")
    try:
        if not sep:
            raise ValueError
        return name.strip(), float(value)
    except ValueError:
        raise CommandError(f"--max-label takes NAME=NUMBER, like spam=0.5, not {text!r}") from None


class Command(BaseCommand):
    help = "Export the conversation trees as the next versioned dataset folder."

    def add_arguments(self, parser: CommandParser) -> None:
        many: dict[str, Any] = {"action": "extend", "nargs": "+"}
        parser.add_argument("--state", dest="states", **many, help="tree states to include")
        parser.add_argument("--lang", dest="langs", **many, help="languages (of the root prompt)")
        parser.add_argument("--review", choices=REVIEW_CHOICES, help="default: accepted")
        parser.add_argument("--branch-policy", choices=BRANCH_POLICIES, help="default: best")
        parser.add_argument("--seed", type=int, help="split seed (default: the previous one)")
        parser.add_argument("--salt", help="salt for user ids (default: random, not stored)")
        parser.add_argument("--validation", type=float, help="share of trees (default 0.1)")
        parser.add_argument("--test", type=float, help="share of trees (default 0)")
        parser.add_argument("--min-agreement", type=float, help="for preference pairs")
        parser.add_argument(
            "--max-label", dest="max_labels", metavar="NAME=X", **many, help="e.g. spam=0.5"
        )
        parser.add_argument("--since", help="messages created on or after this date")
        parser.add_argument("--until", help="messages created before this date (a day: through)")
        parser.add_argument("--include-deleted", action="store_true")
        parser.add_argument("--exclude-synthetic", action="store_true")
        parser.add_argument(
            "--retry", type=UUID, metavar="EXPORT_ID", help="run a failed export again"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        filters = self._filters(options)
        try:
            if options["retry"] is not None:
                if filters or options["seed"] is not None:
                    raise CommandError("--retry reuses the failed export's filters and seed.")
                export = services.retry_export(export_id=options["retry"])
            else:
                export = services.create_export(user=None, filters=filters, seed=options["seed"])
        except ChorusError as exc:
            problems = "; ".join(f"{k}: {' '.join(v)}" for k, v in exc.fields.items())
            raise CommandError(f"{exc.message} {problems}".strip()) from None
        try:
            export = services.run_export(export_id=export.id, salt=options["salt"])
        except Exception as exc:
            raise CommandError(f"the export failed: {exc}") from exc
        self._print(export)

    def _filters(self, options: dict[str, Any]) -> dict[str, Any]:
        names = (
            *("states", "langs", "review", "branch_policy", "validation", "test"),
            *("min_agreement", "since", "until"),
        )
        filters = {name: options[name] for name in names if options[name] is not None}
        if options["max_labels"]:
            filters["max_labels"] = dict(_label_limit(text) for text in options["max_labels"])
        if options["include_deleted"]:
            filters["include_deleted"] = True
        if options["exclude_synthetic"]:
            filters["include_synthetic"] = False
        return filters

    def _print(self, export: DatasetExport) -> None:
        stats = export.stats
        self.stdout.write(f"v{export.version}: {export.path}")
        self.stdout.write(
            f"  {stats['trees']} trees, {stats['messages']} messages, {stats['sft']} SFT "
            f"conversations, {stats['preference']} preference pairs, "
            f"{stats['contributors']} contributors"
        )
        for split, counts in stats["splits"].items():
            figures = ", ".join(f"{name} {n}" for name, n in counts.items())
            self.stdout.write(f"  {split}: {figures}")
        if stats["excluded"]:
            left_out = ", ".join(f"{reason} {n}" for reason, n in stats["excluded"].items())
            self.stdout.write(f"  left out (with replies): {left_out}")
        if export.started_at and export.finished_at:
            seconds = (export.finished_at - export.started_at).total_seconds()
            rate = stats["messages"] / seconds if seconds > 0 else 0.0
            self.stdout.write(f"  written in {seconds:.1f} s ({rate:,.0f} messages/s)")
