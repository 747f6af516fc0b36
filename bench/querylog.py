"""Experiment: log the SQL of every request that runs more than a threshold of statements.

Used through bench/settings_querylog.py; each such request appends one JSON line
{"method", "path", "status", "count", "statements"} to $CHORUS_BENCH_QUERY_LOG (default
/tmp/chorus-bench-queries.jsonl), to see which code path makes the expensive requests.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable
from pathlib import Path

from django.db import connections
from django.http import HttpRequest, HttpResponse

LOG = Path(os.environ.get("CHORUS_BENCH_QUERY_LOG", "/tmp/chorus-bench-queries.jsonl"))  # noqa: S108
THRESHOLD = int(os.environ.get("CHORUS_BENCH_QUERY_THRESHOLD", "8"))


class QueryLogMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        statements: list[str] = []

        def record(execute, sql, params, many, context):  # type: ignore[no-untyped-def]
            statements.append(re.sub(r"\s+", " ", sql).strip()[:300])
            return execute(sql, params, many, context)

        with connections["default"].execute_wrapper(record):
            response = self.get_response(request)
        if len(statements) > THRESHOLD:
            line = {
                "method": request.method,
                "path": request.path,
                "status": response.status_code,
                "count": len(statements),
                "statements": statements,
            }
            with LOG.open("a") as out:
                out.write(json.dumps(line) + "\n")
        return response
