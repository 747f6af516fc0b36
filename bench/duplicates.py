"""Near-duplicate prompt lookup: its plan and time as the number of prompts grows.

    .venv/bin/python bench/duplicates.py                       # 1,000, 10,000 and 100,000
    .venv/bin/python bench/duplicates.py --sizes 1000 50000

Creates a fresh `chorus_bench_duplicates` database (--database-url, else DATABASE_URL, else
the local server, else the embedded one), migrates it, and for each size adds first prompts
(COPY, with their keys) up to that many: questions built from a vocabulary of a few
hundred words, so that prompts share words as real ones do. It then runs the lookup a
submission runs (`trees.selectors.find_duplicate_prompt`: one query and the check of its
candidates) for probes that are new questions and for rephrasings of stored ones, and
prints the median and 95th percentile time, the candidates the index returned, and the
plan's index. The database is dropped at the end unless --keep is given.
"""

from __future__ import annotations

import argparse
import random
import statistics
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import psycopg
from psycopg import sql

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.export import setup_django  # noqa: E402
from bench.taskloop import django_env, server_url, with_dbname  # noqa: E402

BENCH_DB = "chorus_bench_duplicates"
STARTS = [
    "How do I", "What is the best way to", "Can you explain how to", "Why should I",
    "Write a guide on how to", "Explain to a beginner how to", "Is it possible to",
]  # fmt: skip
VERBS = "bake learn repair grow paint clean build choose store cook train plan sell write fold"
VERBS += " measure test play sort"


def _vocabulary(rng: random.Random) -> list[str]:
    letters = "abcdefghijklmnopqrstuvwxyz"
    return ["".join(rng.choice(letters) for _ in range(rng.randint(3, 9))) for _ in range(400)]


def _question(rng: random.Random, nouns: list[str]) -> str:
    tail = " ".join(rng.choice(nouns) for _ in range(rng.randint(1, 6)))
    return f"{rng.choice(STARTS)} {rng.choice(VERBS.split())} a {rng.choice(nouns)} with {tail}?"


def _fill(url: str, *, start: int, stop: int, rng: random.Random, nouns: list[str]) -> list[str]:
    from backend.trees import fingerprint

    now = datetime.now(UTC)
    texts = [_question(rng, nouns) for _ in range(stop - start)]
    with psycopg.connect(url) as conn, conn.cursor() as cur:
        tree_ids = [uuid.uuid4() for _ in texts]
        with cur.copy(
            "COPY trees_messagetree (id, state, state_before_halt, lang, origin, created_at,"
            " state_changed_at, reviews_needed, acceptance_threshold, max_depth,"
            " max_children_prompter, max_children_assistant, goal_size, rankings_needed,"
            " rank_prompter_replies) FROM STDIN"
        ) as copy:
            for tree_id in tree_ids:
                copy.write_row((tree_id, "growing", "", "en", "volunteers", now, now,
                                3, 0.6, 5, 3, 1, 12, 3, False))  # fmt: skip
        message_ids = [uuid.uuid4() for _ in texts]
        with cur.copy(
            "COPY trees_message (id, tree_id, role, text, lang, depth, created_at,"
            " review_count, review_result, label_summary, children_count,"
            " accepted_children_count, ranking_count, synthetic, deleted, emojis, source_extra)"
            " FROM STDIN"
        ) as copy:
            for message_id, tree_id, text in zip(message_ids, tree_ids, texts, strict=True):
                copy.write_row((message_id, tree_id, "prompter", text, "en", 0, now, 3, True,
                                "{}", 0, 0, 0, False, False, "{}", "{}"))  # fmt: skip
        with cur.copy("COPY trees_promptkey (message_id, key) FROM STDIN") as copy:
            for message_id, text in zip(message_ids, texts, strict=True):
                for key in fingerprint.band_keys(text, lang="en"):
                    copy.write_row((message_id, key))
    # As autovacuum leaves a table in steady state: statistics and a visibility map (so the
    # key lookup can be an index-only scan).
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE trees_message")
        conn.execute("VACUUM ANALYZE trees_promptkey")
    return texts


def _rephrase(text: str) -> str:
    return text.upper().replace(" a ", " the ").rstrip("?") + "!!"


def _measure(stored: list[str], rng: random.Random, nouns: list[str], probes: int) -> None:
    from django.db import connection

    from backend.trees import fingerprint
    from backend.trees.selectors import duplicate_candidates, find_duplicate_prompt

    for kind in ("new question", "rephrasing"):
        times, query_times, matched, found = [], [], [], 0
        for _ in range(probes):
            text = (
                _question(rng, nouns) if kind == "new question" else _rephrase(rng.choice(stored))
            )
            started = time.perf_counter()
            hit = find_duplicate_prompt(text=text, lang="en")
            times.append((time.perf_counter() - started) * 1000)
            found += hit is not None
            started = time.perf_counter()
            duplicate_candidates(text=text, lang="en")
            query_times.append((time.perf_counter() - started) * 1000)
            with connection.cursor() as cursor:
                cursor.execute(
                    "SELECT count(*) FROM trees_promptkey WHERE key = ANY(%s)",
                    [fingerprint.band_keys(text, lang="en")],
                )
                matched.append(cursor.fetchone()[0])
        times.sort()
        query_times.sort()
        print(
            f"  {kind:>12}: lookup median {statistics.median(times):.2f} ms, "
            f"p95 {times[int(len(times) * 0.95) - 1]:.2f} ms (its query alone: median "
            f"{statistics.median(query_times):.2f} ms); key matches: mean "
            f"{statistics.mean(matched):.1f}, max {max(matched)}; "
            f"found a duplicate {found}/{probes}",
            flush=True,
        )
    from backend.trees.selectors import _DUPLICATE_CANDIDATES_SQL

    keys = fingerprint.band_keys(_question(rng, nouns), lang="en")
    with connection.cursor() as cursor:
        cursor.execute(
            "EXPLAIN ANALYZE " + _DUPLICATE_CANDIDATES_SQL,
            {"keys": keys, "lang": "en", "limit": 10, "read_at_most": 200},
        )
        plan = [row[0] for row in cursor.fetchall()]
    print("  plan:\n    " + "\n    ".join(plan), flush=True)
    connection.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 10_000, 100_000])
    parser.add_argument("--probes", type=int, default=200)
    parser.add_argument("--database-url")
    parser.add_argument("--keep", action="store_true")
    args = parser.parse_args()
    server = server_url(args.database_url)
    admin = with_dbname(server, "postgres")
    with psycopg.connect(admin, autocommit=True) as conn:
        name = sql.Identifier(BENCH_DB)
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(name))
        conn.execute(sql.SQL("CREATE DATABASE {}").format(name))
    url = with_dbname(server, BENCH_DB)
    try:
        subprocess.run(
            [sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"],
            cwd=ROOT, env=django_env(url), check=True,
        )  # fmt: skip
        setup_django(url)
        rng = random.Random(11)
        nouns = _vocabulary(rng)
        stored: list[str] = []
        for size in sorted(args.sizes):
            started = time.perf_counter()
            stored += _fill(url, start=len(stored), stop=size, rng=rng, nouns=nouns)
            print(f"{size:,} prompts (filled in {time.perf_counter() - started:.0f} s):")
            _measure(stored, rng, nouns, args.probes)
    finally:
        if not args.keep:
            with psycopg.connect(admin, autocommit=True) as conn:
                conn.execute(
                    sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
                        sql.Identifier(BENCH_DB)
                    )
                )


if __name__ == "__main__":
    main()
