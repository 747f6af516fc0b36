"""manage.py push_dataset: publish a finished dataset version to the Hugging Face Hub.

    manage.py push_dataset            # the latest version, to CHORUS_HF_DATASET_REPO
    manage.py push_dataset 3 --repo my-org/chorus --public --revision staging

The token comes from HF_TOKEN unless --token is given. The local folder is only read.
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from backend.core.errors import ChorusError
from backend.exports import publishing


class Command(BaseCommand):
    help = "Upload a finished dataset version to a Hugging Face dataset repo."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("version", nargs="?", type=int, help="default: the latest version")
        parser.add_argument("--repo", help="ORG/NAME (default: CHORUS_HF_DATASET_REPO)")
        parser.add_argument("--token", help="write token (default: HF_TOKEN)")
        visibility = parser.add_mutually_exclusive_group()
        visibility.add_argument(
            "--private",
            dest="private",
            action="store_true",
            default=True,
            help="create the repo private (the default; an existing repo keeps its visibility)",
        )
        visibility.add_argument(
            "--public", dest="private", action="store_false", help="create the repo public"
        )
        parser.add_argument("--revision", help="branch to commit to (default: main)")
        parser.add_argument("--no-tag", action="store_true", help="do not tag the commit vN")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            export = publishing.find_export_to_push(version=options["version"])
            export = publishing.push_export(
                export=export,
                repo_id=options["repo"] or publishing.default_repo(),
                token=options["token"] or publishing.default_token(),
                private=options["private"],
                revision=options["revision"],
                tag=not options["no_tag"],
            )
        except ChorusError as exc:
            raise CommandError(exc.message) from None
        self.stdout.write(
            f"v{export.version} pushed to https://huggingface.co/datasets/{export.pushed_repo}"
            f" ({export.pushed_revision or 'main'})"
        )
