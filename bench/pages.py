"""Server time and SQL statements of the volunteer pages, on the demo data.

    .venv/bin/python bench/pages.py [--repeat 50] [--database-url URL]

Prepares a fresh `chorus_bench_pages` database (migrate, `seed_demo`), then renders each
page in this process through Django's full request stack (middleware, session, templates)
as the demo volunteer `ada`, the way a browser would ask for it, and prints the median and
95th percentile of the time Django takes to answer, and the SQL statements per request.
The first rendering of each page (template compilation) is a warm-up and not counted.
The target of the web app issue: the dashboard under 100 ms.
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path

import psycopg
from psycopg import sql

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from bench.taskloop import server_url, with_dbname  # noqa: E402

BENCH_DB = "chorus_bench_pages"


def prepare(server: str) -> str:
    with psycopg.connect(with_dbname(server, "postgres"), autocommit=True) as conn:
        name = sql.Identifier(BENCH_DB)
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(name))
        conn.execute(sql.SQL("CREATE DATABASE {}").format(name))
    url = with_dbname(server, BENCH_DB)
    env = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "CELERY_BROKER_URL")}
    env.update(DATABASE_URL=url, DEBUG="0", CHORUS_VAR_DIR=str(ROOT / "var" / "bench-pages"))
    for command in (["migrate", "--noinput", "-v", "0"], ["seed_demo"]):
        subprocess.run(  # noqa: S603
            [sys.executable, "manage.py", *command],
            cwd=ROOT,
            env=env,
            check=True,
            stdout=subprocess.DEVNULL,
        )
    return url


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=50)
    parser.add_argument("--database-url")
    args = parser.parse_args()

    url = prepare(server_url(args.database_url))
    os.environ.update(DATABASE_URL=url, DJANGO_SETTINGS_MODULE="backend.settings", DEBUG="0")
    os.environ.pop("REDIS_URL", None)
    import warnings

    import django

    # A checkout has no collected static files; pages do not need them to be measured.
    warnings.filterwarnings("ignore", message="No directory at")
    django.setup()
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    from backend.accounts.models import User
    from backend.accounts.services import accept_terms, create_user
    from backend.trees.models import MessageTree

    ada = User.objects.get(username="ada")
    client = Client()
    client.force_login(ada)
    pages: list[tuple[str, str, Client]] = [
        ("home", "/", client),
        ("dashboard", "/dashboard/", client),
    ]
    for task_type, lang in (
        ("initial_prompt", "en"),
        ("assistant_reply", "en"),
        ("prompter_reply", "en"),
        ("label_initial_prompt", "en"),
        ("rank_assistant_replies", "en"),
    ):
        response = client.post("/tasks/start/", {"type": task_type, "lang": lang})
        if re.fullmatch(r"/tasks/[0-9a-f-]+/", response["Location"]):
            pages.append((f"task: {task_type}", response["Location"], client))
        else:
            print(f"(no {task_type} task for ada in the demo data)")
    biggest = max(MessageTree.objects.all(), key=lambda tree: tree.messages.count())
    pages += [
        ("trees", "/trees/", client),
        ("tree (largest)", f"/trees/{biggest.id}/", client),
        ("settings", "/settings/", client),
        ("guidelines", "/guidelines/", client),
    ]
    newcomer = create_user(username="bench-newcomer", languages=["en"])
    accept_terms(user=newcomer)
    fresh = Client()
    fresh.force_login(newcomer)
    pages.append(("tutorial", "/tutorial/", fresh))

    print(f"\n{'page':<30}{'median ms':>10}{'p95 ms':>9}{'queries':>9}")
    for name, path, who in pages:
        who.get(path)  # warm-up: templates compiled, caches filled
        times, queries = [], []
        for _ in range(args.repeat):
            with CaptureQueriesContext(connection) as captured:
                start = time.perf_counter()
                response = who.get(path)
                times.append((time.perf_counter() - start) * 1000)
            assert response.status_code == 200, (path, response.status_code)
            queries.append(len(captured.captured_queries))
        times.sort()
        p95 = times[int(0.95 * (len(times) - 1))]
        print(f"{name:<30}{statistics.median(times):>10.1f}{p95:>9.1f}{max(queries):>9}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
