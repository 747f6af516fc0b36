"""Leaderboard benchmark: the page's server time and the cost of one award, on a big ledger.

    .venv/bin/python bench/leaderboard.py                        # 100,000 users, 2,000,000 awards
    .venv/bin/python bench/leaderboard.py --users 10000 --awards 200000

Creates a fresh `chorus_bench_leaderboard` database on the server (--database-url, else
DATABASE_URL, else the local one at 127.0.0.1:5432, else the embedded one), migrates it,
fills it with COPY (users, then the points ledger: task points and bonuses in four
languages, spread over the last 120 days with more of them recently, by volunteers whose
activity follows a long tail as on a real crowd site) and builds the totals from the ledger
with `rebuild_totals()`, as an operator's backfill does.

Then, on a warm cache, in this process (Django's test client through the whole middleware
stack, session and all, as a signed-in volunteer with points):
- page: the leaderboard page for each period (day, week, month, all), in all languages and
  in one language, median and p95 over --requests requests (the variants in turn), and the
  mean CPU time of a request (this process and its PostgreSQL backend: the figure that does
  not grow with the machine's load);
- award: `store_awards` of one task award, each in its own transaction (commit included),
  median and p95 over --updates awards, for random volunteers.

Targets: page under 50 ms, award under 5 ms. The database is dropped at the end unless
--keep is given.
"""

from __future__ import annotations

import argparse
import os
import random
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.taskloop import django_env, percentile, server_url, with_dbname  # noqa: E402

PYTHON = sys.executable
BENCH_DB = "chorus_bench_leaderboard"
LANGS = ("en", "de", "es", "fr")
LANG_WEIGHTS = (0.6, 0.2, 0.1, 0.1)
DAYS = 120
PAGE_TARGET_MS = 50.0
AWARD_TARGET_MS = 5.0

USER_COLUMNS = (
    *("id", "password", "username", "date_joined", "languages", "accepted_terms_version"),
    "tutorial_completed_at",
)
AWARD_COLUMNS = ("user_id", "lang", "kind", "points", "source_id", "awarded_at")


# --- The database ---------------------------------------------------------------------------


def copy_rows(
    cur: psycopg.Cursor[Any], model: Any, columns: tuple[str, ...], rows: Iterator[tuple]
) -> None:
    """COPY `rows` (values of `columns`) into the model's table; every other column gets the
    model's default, and an auto-incremented key its sequence's next value."""
    from django.db import connection, models

    others = [
        f
        for f in model._meta.concrete_fields
        if f.column not in columns and not isinstance(f, models.AutoField | models.BigAutoField)
    ]
    tail = tuple(f.get_db_prep_save(f.get_default(), connection) for f in others)
    names = sql.SQL(", ").join(sql.Identifier(c) for c in (*columns, *(f.column for f in others)))
    statement = sql.SQL("COPY {} ({}) FROM STDIN").format(
        sql.Identifier(model._meta.db_table), names
    )
    with cur.copy(statement) as copy:
        for row in rows:
            copy.write_row(row + tail)


def create_database(server: str) -> str:
    with psycopg.connect(with_dbname(server, "postgres"), autocommit=True) as conn:
        name = sql.Identifier(BENCH_DB)
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(name))
        conn.execute(sql.SQL("CREATE DATABASE {}").format(name))
    url = with_dbname(server, BENCH_DB)
    subprocess.run(  # noqa: S603
        [PYTHON, "manage.py", "migrate", "--noinput", "-v", "0"],
        cwd=ROOT,
        env=django_env(url),
        check=True,
    )
    return url


def drop_database(server: str) -> None:
    with psycopg.connect(with_dbname(server, "postgres"), autocommit=True) as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(BENCH_DB))
        )


class Filler:
    def __init__(self, *, users: int, awards: int, seed: int, now: datetime) -> None:
        self.rng = random.Random(seed)
        self.now = now
        self.user_ids = [uuid.UUID(int=self.rng.getrandbits(128), version=4) for _ in range(users)]
        self.user_langs = [self.rng.choices(LANGS, LANG_WEIGHTS)[0] for _ in range(users)]
        self.awards = awards

    def user_rows(self) -> Iterator[tuple[Any, ...]]:
        joined = self.now - timedelta(days=DAYS + 30)
        for n, (user_id, lang) in enumerate(zip(self.user_ids, self.user_langs, strict=True)):
            # An unusable password, as for a volunteer who signs in with OAuth.
            yield (user_id, "!", f"bench{n}", joined, [lang], 1, joined)

    def award_rows(self) -> Iterator[tuple[Any, ...]]:
        from backend.community import points

        task_types = list(points.TASK_POINTS)
        count = len(self.user_ids)
        rng = self.rng
        for _ in range(self.awards):
            # A long tail: a few volunteers do most of the work (the busiest tenth, about
            # half of it), and nearly everyone does some.
            who = int(count * rng.random() ** 3)
            lang = self.user_langs[who] if rng.random() < 0.9 else rng.choice(LANGS)
            if rng.random() < 0.8:
                kind, value = points.task_points(rng.choice(task_types))
            else:
                kind, value = rng.choice(
                    [
                        (points.Kind.ACCEPTED, points.ACCEPTED_POINTS),
                        (points.Kind.AGREEMENT, 1),
                        (points.Kind.TOP_REPLY, points.TOP_REPLY_POINTS),
                    ]
                )
            # More work lately: an exponential age, capped at the window.
            age = min(rng.expovariate(1 / 20), DAYS)
            at = self.now - timedelta(days=age)
            yield (self.user_ids[who], lang, kind.value, value, uuid.uuid4(), at)

    def fill(self, url: str) -> dict[str, float]:
        from backend.accounts.models import User
        from backend.community.models import PointAward

        timings = {}
        t0 = time.perf_counter()
        with psycopg.connect(url) as conn:
            try:  # no foreign-key triggers while loading (needs a superuser)
                conn.execute("SET session_replication_role = replica")
            except psycopg.Error:
                conn.rollback()
            with conn.cursor() as cur:
                copy_rows(cur, User, USER_COLUMNS, self.user_rows())
                copy_rows(cur, PointAward, AWARD_COLUMNS, self.award_rows())
        timings["copy_s"] = time.perf_counter() - t0
        from backend.community.services import rebuild_totals

        t1 = time.perf_counter()
        rebuild_totals()
        timings["rebuild_s"] = time.perf_counter() - t1
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("VACUUM ANALYZE")
            # Flushed now rather than by a checkpoint during the measurements.
            conn.execute("CHECKPOINT")
        return timings


# --- Measuring --------------------------------------------------------------------------------


def cpu_seconds() -> float | None:
    """CPU time used so far by this process and by its PostgreSQL backend (read from /proc,
    so only where the server runs on this machine): unlike wall time, it does not grow when
    other work on the machine takes the CPUs."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        pid = cursor.fetchone()[0]
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    backend = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return time.process_time() + backend


Row = tuple[str, list[float], float | None]


def measure_pages(requests: int, *, viewer_id: uuid.UUID) -> list[Row]:
    from django.test import Client

    from backend.accounts.models import User

    client = Client()
    client.force_login(User.objects.get(pk=viewer_id))
    variants = [(p, lang) for lang in ("", "en") for p in ("day", "week", "month", "all")]
    times: dict[tuple[str, str], list[float]] = {v: [] for v in variants}
    cpu: dict[tuple[str, str], float] = dict.fromkeys(variants, 0.0)
    for n in range(requests + 3):
        # Round robin, so that a burst of load on the machine falls on every variant alike.
        for period, lang in variants:
            c0 = cpu_seconds()
            t0 = time.perf_counter()
            response = client.get(f"/leaderboard/?period={period}&lang={lang}")
            elapsed = (time.perf_counter() - t0) * 1000
            c1 = cpu_seconds()
            assert response.status_code == 200, response.status_code
            if n >= 3:  # the first rounds warm plans, templates and translations
                times[(period, lang)].append(elapsed)
                if c0 is not None and c1 is not None:
                    cpu[(period, lang)] += c1 - c0
    return [
        (f"page {p:<5} {lang or 'all'}", times[(p, lang)], cpu[(p, lang)] * 1000 / requests)
        for p, lang in variants
    ]


def measure_awards(
    updates: int, *, user_ids: list[uuid.UUID], langs: list[str]
) -> tuple[list[float], list[float]]:
    """Each award in its own transaction: the time of `store_awards` (its one statement), and
    of the whole transaction with its commit (the WAL flush: the disk's, not the query's)."""
    from django.db import transaction
    from django.utils import timezone

    from backend.community.points import Kind
    from backend.community.services import Award, store_awards

    rng = random.Random(1)
    statement, committed = [], []
    for n in range(updates + 10):
        who = rng.randrange(len(user_ids))
        award = Award(user_ids[who], langs[who], Kind.REVIEW, 1, uuid.uuid4(), timezone.now())
        t0 = time.perf_counter()
        with transaction.atomic():
            assert store_awards([award]) == 1
            t1 = time.perf_counter()
        t2 = time.perf_counter()
        if n >= 10:  # the first few warm the plan cache
            statement.append((t1 - t0) * 1000)
            committed.append((t2 - t0) * 1000)
    return statement, committed


def busy_user(url: str) -> uuid.UUID:
    """A volunteer a little below the top: their rank has many others to count."""
    with psycopg.connect(url) as conn:
        row = conn.execute(
            "SELECT user_id FROM community_pointtotal WHERE period = 'all' AND lang = ''"
            " ORDER BY points DESC OFFSET (SELECT count(*) / 20 FROM accounts_user) LIMIT 1"
        ).fetchone()
    assert row is not None
    return row[0]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--users", type=int, default=100_000)
    parser.add_argument("--awards", type=int, default=2_000_000)
    parser.add_argument("--requests", type=int, default=50, help="per page variant")
    parser.add_argument("--updates", type=int, default=500)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--database-url")
    parser.add_argument("--keep", action="store_true", help="keep the database afterwards")
    parser.add_argument(
        "--reuse", action="store_true", help="measure a database kept by --keep, as it is"
    )
    args = parser.parse_args()

    server = server_url(args.database_url)
    t0 = time.perf_counter()
    url = with_dbname(server, BENCH_DB) if args.reuse else create_database(server)
    os.environ.update(django_env(url))
    import django

    django.setup()
    try:
        filler = Filler(
            users=args.users, awards=args.awards, seed=args.seed, now=datetime.now(tz=UTC)
        )
        if args.reuse:  # the same seed gives the same users
            print(f"Database {BENCH_DB}: reused as it is.", flush=True)
        else:
            timings = filler.fill(url)
            print(
                f"Database {BENCH_DB}: {args.users:,} users, {args.awards:,} awards; "
                f"ready in {time.perf_counter() - t0:.1f} s (COPY {timings['copy_s']:.1f} s, "
                f"rebuild_totals {timings['rebuild_s']:.1f} s).",
                flush=True,
            )
        rows: list[tuple[str, list[float], float | None, float]] = [
            (name, times, cpu, PAGE_TARGET_MS)
            for name, times, cpu in measure_pages(args.requests, viewer_id=busy_user(url))
        ]
        statement, committed = measure_awards(
            args.updates, user_ids=filler.user_ids, langs=filler.user_langs
        )
        rows.append(("store_awards (1 award)", statement, None, AWARD_TARGET_MS))
        rows.append(("  + its commit", committed, None, AWARD_TARGET_MS))
    finally:
        from django.db import connections

        connections.close_all()
        if not (args.keep or args.reuse):
            drop_database(server)

    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    print(f"\nLoad average during the run: {load} on {os.cpu_count()} CPUs.")
    print(
        f"\n{'measure':<24} {'n':>5} {'median ms':>10} {'p95 ms':>8} {'cpu ms':>7} "
        f"{'target':>7}  p95 ok"
    )
    missed = 0
    for name, times, cpu, target in rows:
        p95 = percentile(times, 0.95)
        ok = p95 < target
        missed += not ok
        cpu_text = f"{cpu:.1f}" if cpu is not None else "-"
        print(
            f"{name:<24} {len(times):>5} {percentile(times, 0.5):>10.2f} {p95:>8.2f} "
            f"{cpu_text:>7} {target:>7.0f}  {'yes' if ok else 'NO'}"
        )
    print(
        "\ncpu ms: the mean CPU time of one request, this process and its PostgreSQL backend "
        "together (wall times grow with the machine's load; this does not)."
    )
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
