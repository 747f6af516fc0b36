"""Dataset export benchmark: the real export of a large database against PostgreSQL's COPY.

    .venv/bin/python bench/export.py                      # 1,000,000 messages in 100,000 trees
    .venv/bin/python bench/export.py --messages 100000 --trees 10000

Creates a fresh `chorus_bench_export` database on the server (--database-url, else
DATABASE_URL, else the local one at 127.0.0.1:5432, else the embedded one), migrates it and
fills it with COPY: users, trees in ready_for_export and messages shaped like OpenAssistant
trees (a prompt, two or three ranked assistant replies, follow-ups), with texts of the
sample's lengths, labels, emojis, a few deleted messages, withdrawn consents and takedowns,
so every file of an export has content and every filter has work.

Then, on a warm cache:
- COPY: the time PostgreSQL needs to `COPY (the export's own query) TO STDOUT`, read
  through psycopg and thrown away: the rate at which the rows can leave the database;
- export: `manage.py export_dataset` in a child process, as an operator runs it. Its rate
  is over the export's own time (started_at to finished_at: planning, streaming, writing,
  publishing; not Python's start-up), its peak memory the child's maximum resident set
  (getrusage), which includes the interpreter, Django and pyarrow.

--budget then measures, on the export's own output, the work any export must do (PostgreSQL's
COPY, deflating the gzip files' content, encoding the Parquet file, writing the bytes) and
prints what an export at half COPY's rate would have left for reading and shaping the rows.

The database is dropped at the end unless --keep is given. --json PATH writes the figures.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.taskloop import django_env, server_url, with_dbname  # noqa: E402

PYTHON = sys.executable
BENCH_DB = "chorus_bench_export"
SAMPLE = ROOT.parent / "shared" / "data" / "oasst_en_100_trees.jsonl"
USERS = 20_000
T0 = datetime(2024, 1, 1, tzinfo=UTC)
# Shares of messages that exercise the filters: left out of the export with their replies.
DELETED_SHARE = 0.002
REJECTED_SHARE = 0.005
WITHDRAWN_USER_SHARE = 0.001
TAKEDOWNS_PER_MILLION = 200
# OpenAssistant-like shape: a prompt gets 2-3 assistant replies, a reply one follow-up.
MAX_DEPTH = 5

TREE_COLUMNS = (
    *("id", "state", "lang", "origin", "created_at", "state_changed_at"),
    *("reviews_needed", "acceptance_threshold", "max_depth", "max_children_prompter"),
    *("max_children_assistant", "goal_size", "rankings_needed", "rank_prompter_replies"),
)
MESSAGE_COLUMNS = (
    *("id", "tree_id", "parent_id", "author_id", "role", "text", "lang", "depth"),
    *("created_at", "review_count", "review_result", "label_summary", "children_count"),
    *("accepted_children_count", "ranking_count", "rank", "consensus_strength"),
    *("replies_agreement", "synthetic", "model_name", "deleted", "emojis", "source_extra"),
)
USER_COLUMNS = (
    *("id", "password", "username", "date_joined", "languages", "accepted_terms_version"),
    "data_consent_withdrawn_at",
)


# --- Texts ------------------------------------------------------------------------------------


class Texts:
    """Message texts with the sample's lengths by role, made of its sentences recombined, so
    each text is unique (no help from Parquet dictionaries) and compresses like real text."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        lengths: dict[str, list[int]] = {"prompter": [], "assistant": []}
        sentences: list[str] = []
        for text, role in _sample_texts():
            lengths[role].append(len(text))
            sentences.extend(s for s in re.split(r"(?<=[.!?\n])\s+", text) if s)
        self.lengths = lengths
        self.sentences = sentences

    def __call__(self, role: str) -> str:
        target = self.rng.choice(self.lengths[role])
        parts: list[str] = []
        size = 0
        while size < target:
            part = self.rng.choice(self.sentences)
            parts.append(part)
            size += len(part) + 1
        return " ".join(parts)[: max(target, 1)]


def _sample_texts() -> Iterator[tuple[str, str]]:
    if not SAMPLE.exists():  # lengths and words of a typical exchange
        words = ("the", "of", "a", "to", "and", "is", "in", "that", "it", "for", "you", "can")
        gen = random.Random(0)
        for n in range(2000):
            role = "prompter" if n % 2 else "assistant"
            count = gen.randint(5, 60) if role == "prompter" else gen.randint(40, 300)
            yield " ".join(gen.choice(words) for _ in range(count)) + ".", role
        return
    with SAMPLE.open(encoding="utf-8") as lines:
        for line in lines:
            stack = [json.loads(line)["prompt"]]
            while stack:
                node = stack.pop()
                yield node["text"], node["role"]
                stack.extend(node.get("replies", []))


# --- Filling ----------------------------------------------------------------------------------


def tree_sizes(messages: int, trees: int, rng: random.Random) -> list[int]:
    """Sizes that add up to `messages` exactly, spread around the mean."""
    base, extra = divmod(messages, trees)
    if base < 1:
        raise SystemExit("--messages must be at least --trees")
    sizes = [base + (i < extra) for i in range(trees)]
    for i in range(0, trees - 1, 2):
        shift = rng.randint(0, min(sizes[i], sizes[i + 1]) - 1) if base > 1 else 0
        sizes[i] += shift
        sizes[i + 1] -= shift
    return sizes


class Filler:
    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        self.texts = Texts(self.rng)
        self.users = [self.uuid() for _ in range(USERS)]
        self.labels = [self._labels(role) for role in ("prompter", "assistant") for _ in range(50)]
        self.emojis = ["{}"] * 6 + ['{"+1": 1}', '{"+1": 2, "-1": 1}', '{"_skip_reply": 1}']

    def uuid(self) -> str:
        return self.rng.randbytes(16).hex()

    def _labels(self, role: str) -> str:
        rng = self.rng
        names = ["spam", "lang_mismatch", "pii", "not_appropriate", "hate_speech"]
        names += ["quality", "helpfulness", "creativity", "humor", "toxicity", "violence"]
        if role == "assistant":
            names += ["fails_task"]
        summary = {
            name: {"value": round(rng.choice((0.0, 0.0, 0.0, 0.25, 0.5, 0.75, 1.0)), 4), "count": 3}
            for name in names
        }
        summary["spam"]["value"] = 0.0
        return json.dumps(summary)

    def user_rows(self) -> Iterator[tuple[Any, ...]]:
        withdrawn = set(self.rng.sample(range(USERS), int(USERS * WITHDRAWN_USER_SHARE)))
        for n, user_id in enumerate(self.users):
            yield (user_id, "!", f"bench{n}", T0, ["en"], 1, T0 if n in withdrawn else None)

    def tree_rows(self, trees: int) -> Iterator[tuple[Any, ...]]:
        for n in range(trees):
            created = T0 + timedelta(minutes=n)
            yield (
                self.tree_ids[n], "ready_for_export", "en", "volunteers", created, created,
                3, 0.6, MAX_DEPTH, 3, 1, 12, 3, False,
            )  # fmt: skip

    def message_rows(self, sizes: list[int]) -> Iterator[tuple[Any, ...]]:
        for tree_id, size, n in zip(self.tree_ids, sizes, range(len(sizes)), strict=True):
            yield from self._tree(tree_id, size, T0 + timedelta(minutes=n))

    def _tree(self, tree_id: str, size: int, start: datetime) -> Iterator[tuple[Any, ...]]:
        rng = self.rng
        # (id, parent index, role, depth); filled breadth first up to `size`.
        nodes: list[tuple[str, int, str, int]] = [(self.uuid(), -1, "prompter", 0)]
        children: list[list[int]] = [[]]
        index = 0
        while len(nodes) < size and index < len(nodes):
            _, _, role, depth = nodes[index]
            if depth < MAX_DEPTH:
                wanted = rng.randint(2, 3) if role == "prompter" else 1
                child_role = "assistant" if role == "prompter" else "prompter"
                for _ in range(min(wanted, size - len(nodes))):
                    children[index].append(len(nodes))
                    nodes.append((self.uuid(), index, child_role, depth + 1))
                    children.append([])
            index += 1
        ranks: dict[int, tuple[int, float]] = {}
        agreement: dict[int, float] = {}
        for parent, kids in enumerate(children):
            if nodes[parent][2] == "prompter" and len(kids) >= 2:
                strengths = sorted((rng.random() for _ in kids), reverse=True)
                for place, kid in enumerate(rng.sample(kids, len(kids))):
                    ranks[kid] = (place, round(strengths[place], 6))
                agreement[parent] = round(rng.uniform(0.3, 1.0), 4)
        for i, (message_id, parent, role, depth) in enumerate(nodes):
            rank, strength = ranks.get(i, (None, None))
            draw = rng.random()
            yield (
                message_id,
                tree_id,
                None if parent < 0 else nodes[parent][0],
                rng.choice(self.users),
                role,
                self.texts(role),
                "en",
                depth,
                start + timedelta(seconds=37 * i, microseconds=rng.randrange(1_000_000)),
                3,
                draw >= REJECTED_SHARE,
                self.labels[rng.randrange(50) + (50 if role == "assistant" else 0)],
                len(children[i]),
                len(children[i]),
                3 if i in agreement else 0,
                rank,
                strength,
                agreement.get(i),
                False,
                None,
                REJECTED_SHARE <= draw < REJECTED_SHARE + DELETED_SHARE,
                rng.choice(self.emojis),
                "{}",
            )

    def fill(self, url: str, *, messages: int, trees: int) -> None:
        from backend.accounts.models import User
        from backend.trees.models import Message, MessageTree

        sizes = tree_sizes(messages, trees, self.rng)
        self.tree_ids = [self.uuid() for _ in range(trees)]
        takedowns = max(1, messages * TAKEDOWNS_PER_MILLION // 1_000_000)
        with psycopg.connect(url) as conn:
            try:  # no foreign-key triggers while loading (needs a superuser): 3x faster
                conn.execute("SET session_replication_role = replica")
            except psycopg.Error:
                conn.rollback()
            with conn.cursor() as cur:
                _copy(cur, User, USER_COLUMNS, self.user_rows())
                _copy(cur, MessageTree, TREE_COLUMNS, self.tree_rows(trees))
                _copy(cur, Message, MESSAGE_COLUMNS, self.message_rows(sizes))
                cur.execute(
                    "INSERT INTO exports_takedown (message_id, reason, created_at)"
                    " SELECT id, 'bench', now() FROM trees_message"
                    " WHERE parent_id IS NOT NULL ORDER BY id LIMIT %s",
                    [takedowns],
                )
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("VACUUM ANALYZE")


def _copy(
    cur: psycopg.Cursor[Any], model: Any, columns: tuple[str, ...], rows: Iterator[tuple]
) -> None:
    """COPY `rows` (values of `columns`) into the model's table; every other column gets
    the model's default, so a field added later needs no change here."""
    from django.db import connection

    others = [f for f in model._meta.concrete_fields if f.column not in columns]
    tail = tuple(f.get_db_prep_save(f.get_default(), connection) for f in others)
    names = sql.SQL(", ").join(sql.Identifier(c) for c in (*columns, *(f.column for f in others)))
    statement = sql.SQL("COPY {} ({}) FROM STDIN").format(
        sql.Identifier(model._meta.db_table), names
    )
    with cur.copy(statement) as copy:
        for row in rows:
            copy.write_row(row + tail)


def prepare_database(server: str, *, messages: int, trees: int, seed: int) -> str:
    admin_url = with_dbname(server, "postgres")
    with psycopg.connect(admin_url, autocommit=True) as conn:
        name = sql.Identifier(BENCH_DB)
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(name))
        conn.execute(sql.SQL("CREATE DATABASE {}").format(name))
    url = with_dbname(server, BENCH_DB)
    setup_django(url)
    t0 = time.perf_counter()
    subprocess.run(  # noqa: S603
        [PYTHON, "manage.py", "migrate", "--noinput", "-v", "0"],
        cwd=ROOT,
        env=django_env(url),
        check=True,
    )
    t1 = time.perf_counter()
    Filler(seed).fill(url, messages=messages, trees=trees)
    t2 = time.perf_counter()
    print(
        f"Database {BENCH_DB}: migrated in {t1 - t0:.1f} s, {messages:,} messages in "
        f"{trees:,} trees filled in {t2 - t1:.1f} s.",
        flush=True,
    )
    return url


def setup_django(url: str) -> None:
    """Django in this process, on the bench database: for the models' defaults and the
    export's query."""
    import django

    os.environ.update(django_env(url))
    django.setup()


def drop_database(server: str) -> None:
    with psycopg.connect(with_dbname(server, "postgres"), autocommit=True) as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(BENCH_DB))
        )


# --- Measuring --------------------------------------------------------------------------------


def copy_rate(url: str) -> dict[str, float]:
    """COPY of the export's own query to this process, bytes read and thrown away."""
    from backend.exports.options import ExportOptions
    from backend.exports.selectors import stream_query

    query = stream_query(ExportOptions.from_json({"states": ["ready_for_export"]}))
    with psycopg.connect(url) as conn:
        best: dict[str, float] = {}
        for _ in range(3):  # the first warms the cache; the best of three resists a disturbed run
            rows = size = 0
            t0 = time.perf_counter()
            with conn.cursor().copy(f"COPY ({query}) TO STDOUT") as copy:  # type: ignore[arg-type]
                for block in copy:
                    size += len(block)
                    rows += bytes(block).count(b"\n")
            seconds = time.perf_counter() - t0
            if not best or seconds < best["seconds"]:
                best = {"rows": rows, "seconds": seconds, "rows_per_s": rows / seconds}
                best["mb"] = size / 1e6
    return best


def run_export(url: str, folder: Path) -> dict[str, Any]:
    """`manage.py export_dataset` in a child process: its times and peak resident memory."""
    env = django_env(url, CHORUS_EXPORT_DIR=str(folder), LOG_LEVEL="WARNING")
    command = [PYTHON, "manage.py", "export_dataset", "--state", "ready_for_export"]
    command += ["--seed", "1", "--salt", "bench"]
    t0 = time.perf_counter()
    child = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.PIPE, text=True)  # noqa: S603
    assert child.stdout is not None
    printed = child.stdout.read()
    _, status, usage = os.wait4(child.pid, 0)
    child.returncode = os.waitstatus_to_exitcode(status)
    wall = time.perf_counter() - t0
    if child.returncode != 0:
        raise SystemExit(f"export_dataset failed ({child.returncode}):\n{printed}")
    with psycopg.connect(url) as conn:
        row = conn.execute(
            "SELECT extract(epoch FROM finished_at - started_at), stats, path"
            " FROM exports_datasetexport WHERE status = 'done' ORDER BY finished_at DESC LIMIT 1"
        ).fetchone()
    assert row is not None
    seconds, stats, path = float(row[0]), row[1], Path(row[2])
    read = sum(stats["excluded"].values()) + stats["messages"]
    return {
        "seconds": seconds,
        "process_seconds": wall,
        "cpu_seconds": usage.ru_utime + usage.ru_stime,
        "messages_read": read,
        "messages_written": stats["messages"],
        "messages_per_s": read / seconds,
        "peak_rss_mb": usage.ru_maxrss / 1024,  # KiB on Linux
        "output_mb": sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) / 1e6,
        "printed": printed,
    }


def budget(url: str, folder: Path, *, copy: dict[str, float], messages: int) -> dict[str, Any]:
    """What an export at half COPY's rate may spend, against the work no design can skip.

    Measured on the export's own output: deflating the gzip files' content (igzip at the
    writer's level, one core), encoding messages.parquet's table again, writing every
    output byte to disk; and PostgreSQL producing the rows (plain COPY, the cheaper of the
    two ways out). On two cores, an export at half COPY's rate has twice its wall time in
    core-seconds; what the unavoidable work leaves is the budget for everything else:
    reading the rows into Python and shaping them into trees, rows, conversations and pairs.
    For scale, the cost of one part of that: orjson parsing the export's JSON stream.
    """
    import io

    import orjson
    import pyarrow.parquet as pq
    from isal import igzip

    from backend.exports.options import ExportOptions
    from backend.exports.selectors import stream_batches
    from backend.exports.writer import GZIP_LEVEL

    version = next(folder.glob("v*"))
    files = [p for p in sorted(version.rglob("*")) if p.is_file()]
    deflate = 0.0
    for path in files:
        if path.suffix == ".gz":
            content = igzip.decompress(path.read_bytes())
            t0 = time.process_time()
            with igzip.IGzipFile(fileobj=io.BytesIO(), mode="wb", compresslevel=GZIP_LEVEL) as out:
                for start in range(0, len(content), 1 << 20):
                    out.write(content[start : start + (1 << 20)])
            deflate += time.process_time() - t0
    table = pq.read_table(version / "messages.parquet")
    with tempfile.TemporaryDirectory(prefix="chorus-bench-budget-") as scratch:
        t0 = time.process_time()
        pq.write_table(table, Path(scratch) / "again.parquet", row_group_size=20_000)
        parquet = time.process_time() - t0
        del table
        written = 0.0
        for index, path in enumerate(files):
            with path.open("rb") as source, open(Path(scratch) / str(index), "wb") as out:
                while chunk := source.read(1 << 24):
                    t0 = time.process_time()  # the kernel's copy into the page cache
                    out.write(chunk)
                    out.flush()
                    written += time.process_time() - t0
    # The export's own stream (its COPY read on a thread); only this thread's parse counts.
    parse = 0.0
    for batch in stream_batches(ExportOptions.from_json({"states": ["ready_for_export"]})):
        t0 = time.thread_time()
        orjson.loads(batch)
        parse += time.thread_time() - t0
    target_wall = messages / (copy["rows_per_s"] / 2)
    floor = copy["seconds"] + deflate + parquet + written
    left = 2 * target_wall - floor
    return {
        "target_wall_s": target_wall,
        "copy_s": copy["seconds"],
        "deflate_cpu_s": deflate,
        "parquet_cpu_s": parquet,
        "write_s": written,
        "floor_core_s": floor,
        "left_core_s": left,
        "left_us_per_message": left / messages * 1e6,
        "parse_cpu_s": parse,
    }


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--messages", type=int, default=1_000_000)
    parser.add_argument("--trees", type=int, default=100_000)
    parser.add_argument(
        "--database-url", help="a PostgreSQL server (its chorus_bench_export is replaced)"
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--keep", action="store_true", help="keep the database (and skip the fill with --reuse)"
    )
    parser.add_argument(
        "--reuse", action="store_true", help="export the kept database again, no fill"
    )
    parser.add_argument("--json", type=Path, help="write the figures here")
    parser.add_argument(
        "--budget",
        action="store_true",
        help="also measure the work any export must do, and what half COPY's rate leaves",
    )
    args = parser.parse_args()

    server = server_url(args.database_url)
    if args.reuse:
        url = with_dbname(server, BENCH_DB)
        setup_django(url)
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("DELETE FROM exports_datasetexport")
    else:
        url = prepare_database(server, messages=args.messages, trees=args.trees, seed=args.seed)
    try:
        copy = copy_rate(url)
        with tempfile.TemporaryDirectory(prefix="chorus-bench-export-") as folder:
            export = run_export(url, Path(folder))
            spent = None
            if args.budget:
                spent = budget(url, Path(folder), copy=copy, messages=export["messages_read"])
    finally:
        if not args.keep:
            drop_database(server)

    print(export.pop("printed").rstrip())
    ratio = export["messages_per_s"] / copy["rows_per_s"]
    print(
        f"COPY:   {copy['rows']:,} rows ({copy['mb']:,.0f} MB) in {copy['seconds']:.2f} s "
        f"= {copy['rows_per_s']:,.0f} rows/s\n"
        f"export: {export['messages_read']:,} messages in {export['seconds']:.2f} s "
        f"= {export['messages_per_s']:,.0f} messages/s ({ratio:.0%} of COPY's rate); "
        f"process {export['process_seconds']:.1f} s wall, {export['cpu_seconds']:.1f} s CPU; "
        f"peak RSS {export['peak_rss_mb']:,.0f} MB; output {export['output_mb']:,.0f} MB"
    )
    if spent is not None:
        print(
            f"budget: half COPY's rate is {spent['target_wall_s']:.1f} s of wall time, "
            f"{2 * spent['target_wall_s']:.1f} core-seconds on two cores; work no export can "
            f"skip: COPY {spent['copy_s']:.1f} + deflate {spent['deflate_cpu_s']:.1f} "
            f"+ Parquet {spent['parquet_cpu_s']:.1f} + writes {spent['write_s']:.1f} "
            f"= {spent['floor_core_s']:.1f} s; left for reading and shaping "
            f"{spent['left_core_s']:.1f} s ({spent['left_us_per_message']:.1f} µs a message), "
            f"of which orjson parsing the stream alone takes {spent['parse_cpu_s']:.1f} s"
        )
    if args.json:
        summary = {"messages": args.messages, "trees": args.trees, "copy": copy, "export": export}
        if spent is not None:
            summary["budget"] = spent
        args.json.write_text(json.dumps(summary, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
