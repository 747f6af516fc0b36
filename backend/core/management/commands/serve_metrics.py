"""manage.py serve_metrics: /metrics for a machine that runs Celery workers but no web process.

It serves what the processes of this machine wrote to PROMETHEUS_MULTIPROC_DIR (the jobs
they ran), under the same rules as the web's /metrics (CHORUS_METRICS_TOKEN,
CHORUS_METRICS_NETWORKS). Queue lengths and exports are left to the web processes' scrapes,
so that no figure is counted once per machine.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, make_server

import orjson
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser
from prometheus_client import CONTENT_TYPE_LATEST

from backend.core import metrics
from backend.core.monitoring import scrape_refusal

StartResponse = Callable[[str, list[tuple[str, str]]], Any]


def metrics_app(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
    refused = scrape_refusal(environ.get("HTTP_AUTHORIZATION", ""), environ.get("REMOTE_ADDR", ""))
    if environ.get("PATH_INFO") != "/metrics":
        refused = refused or (404, {"error": {"code": "not_found", "message": "No such resource."}})
    if refused is not None:
        status, body = refused
        reason = "Forbidden" if status == 403 else "Not Found"
        start_response(f"{status} {reason}", [("Content-Type", "application/json")])
        return [orjson.dumps(body)]
    start_response("200 OK", [("Content-Type", CONTENT_TYPE_LATEST)])
    return [metrics.render(read_now=False)]


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:  # a line per scrape is noise
        pass


class Command(BaseCommand):
    help = "Serve /metrics of this machine's processes (PROMETHEUS_MULTIPROC_DIR) over HTTP."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--address", default="127.0.0.1", help="default: %(default)s")
        parser.add_argument("--port", type=int, default=9108, help="default: %(default)s")

    def handle(self, *args: Any, address: str, port: int, **options: Any) -> None:
        if not settings.PROMETHEUS_MULTIPROC_DIR:
            raise CommandError(
                "PROMETHEUS_MULTIPROC_DIR is not set: there are no other processes' metrics "
                "to serve (set it for the workers and for this command)."
            )
        with make_server(address, port, metrics_app, handler_class=_QuietHandler) as server:
            self.stdout.write(f"Serving http://{address}:{port}/metrics", ending="\n")
            self.stdout.flush()
            server.serve_forever()
