"""Task-loop load test: simulated volunteers request and submit tasks over the real API.

    .venv/bin/python bench/taskloop.py --workers 1 2 --volunteers 32 --duration 30

Prepares a fresh `chorus_bench` database (migrate, N volunteers with API keys), then for
each worker count empties the platform (trees, tasks, moderation; users and keys stay),
starts uvicorn with that many workers and drives it with V concurrent volunteers, each
looping "request a random task, submit a plausible answer". One asyncio process with one
aiohttp session (keep-alive); latency is measured around each HTTP call with
time.perf_counter. The warm-up is excluded from every figure.

Options: --database-url (a PostgreSQL server; its `chorus_bench` database is replaced),
--json PATH (the summary line), --settings / --app / --interface to measure a variant
(e.g. --settings bench.settings_querylog logs the SQL of requests over 8 statements).
CPU is accounted per process tree from /proc: this load generator, uvicorn with its
workers, the PostgreSQL server (all its databases) and everything else on the machine
("others"; over 10% makes the figures noisy).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import resource
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import aiohttp
import psycopg
from psycopg import sql

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
BENCH_DB = "chorus_bench"
DEFAULT_SERVER_URL = "postgres://postgres@127.0.0.1:5432/postgres"
DOMAIN_PREFIXES = ("trees_", "tasks_", "moderation_", "community_", "assistant_")
WRITE_TYPES = ("initial_prompt", "assistant_reply", "prompter_reply")
IDLE_SLEEP = 0.05
SPAM_SHARE = 0.10
CLK_TCK = os.sysconf("SC_CLK_TCK")
# Server log lines that say nothing new: no collectstatic in a checkout; Django's warning
# for each 404, which the idle count already gives.
NOISE = ("No directory at:", "mw_instance = middleware(adapted_handler)", "Not Found: /api/")

CREATE_USERS_SCRIPT = """
import json, os, sys
import django
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "backend.settings")
django.setup()
from django.db import transaction
from backend.accounts.services import create_api_client, create_user
count = int(sys.argv[1])
keys = []
with transaction.atomic():
    for n in range(count):
        user = create_user(username=f"bench{n:04d}", languages=["en"], accepted_terms_version=1)
        keys.append(create_api_client(owner=user, name="bench")[1])
print("KEYS " + json.dumps(keys))
"""


# --- The database ---------------------------------------------------------------------------


def with_dbname(url: str, name: str) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, "/" + name, parts.query, parts.fragment))


def reachable(url: str) -> bool:
    try:
        with psycopg.connect(url, connect_timeout=2):
            return True
    except psycopg.Error:
        return False


def server_url(given: str | None) -> str:
    if given:
        return given
    if os.environ.get("DATABASE_URL"):
        return os.environ["DATABASE_URL"]
    if reachable(DEFAULT_SERVER_URL):
        return DEFAULT_SERVER_URL
    sys.path.insert(0, str(ROOT))
    from backend.core.embedded_db import embedded_database_url

    where = urlsplit(DEFAULT_SERVER_URL).netloc
    print(f"No PostgreSQL at {where}; using the embedded server.", flush=True)
    return embedded_database_url()


def django_env(database_url: str, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "CELERY_BROKER_URL")}
    env.update(DATABASE_URL=database_url, DJANGO_SETTINGS_MODULE="backend.settings", DEBUG="0")
    env.update(extra)
    return env


def prepare_database(server: str, volunteers: int) -> tuple[str, list[str]]:
    admin_url = with_dbname(server, "postgres")
    with psycopg.connect(admin_url, autocommit=True) as conn:
        name = sql.Identifier(BENCH_DB)
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(name))
        conn.execute(sql.SQL("CREATE DATABASE {}").format(name))
    url = with_dbname(server, BENCH_DB)
    env = django_env(url)
    t0 = time.perf_counter()
    subprocess.run(  # noqa: S603
        [PYTHON, "manage.py", "migrate", "--noinput", "-v", "0"], cwd=ROOT, env=env, check=True
    )
    done = subprocess.run(  # noqa: S603
        [PYTHON, "-c", CREATE_USERS_SCRIPT, str(volunteers)],
        cwd=ROOT,
        env=env,
        check=True,
        capture_output=True,
        text=True,
    )
    line = next(x for x in done.stdout.splitlines() if x.startswith("KEYS "))
    keys = json.loads(line[len("KEYS ") :])
    print(
        f"Database {BENCH_DB} ready: migrated, {len(keys)} volunteers "
        f"({time.perf_counter() - t0:.1f} s).",
        flush=True,
    )
    return url, keys


def reset_domain(url: str) -> None:
    """Empty trees, tasks, moderation, points and chats; users and API keys stay."""
    with psycopg.connect(url, autocommit=True) as conn:
        tables = [
            row[0]
            for row in conn.execute(
                "SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY 1"
            )
            if row[0].startswith(DOMAIN_PREFIXES)
        ]
        names = sql.SQL(", ").join(sql.Identifier(t) for t in tables)
        conn.execute(sql.SQL("TRUNCATE {}").format(names))
        conn.execute("ANALYZE")


def db_snapshot(url: str) -> dict[str, Any]:
    with psycopg.connect(url, autocommit=True) as conn:
        states: dict[str, int] = dict(
            conn.execute("SELECT state, count(*) FROM trees_messagetree GROUP BY 1 ORDER BY 1")
        )
        messages: dict[str, int] = dict(
            conn.execute(
                "SELECT coalesce(review_result::text, 'pending'), count(*) "
                "FROM trees_message GROUP BY 1 ORDER BY 1"
            )
        )
        tasks: dict[str, int] = dict(
            conn.execute("SELECT status, count(*) FROM tasks_task GROUP BY 1 ORDER BY 1")
        )
        row = conn.execute(
            "SELECT xact_commit, xact_rollback, deadlocks FROM pg_stat_database "
            "WHERE datname = current_database()"
        ).fetchone()
    assert row is not None
    return {
        "tree_states": states,
        "messages_by_review_result": messages,
        "tasks_by_status": tasks,
        "pg": {"commits": row[0], "rollbacks": row[1], "deadlocks": row[2]},
    }


# --- uvicorn ---------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_uvicorn(
    url: str, workers: int, port: int, log: Path, args: argparse.Namespace
) -> subprocess.Popen[bytes]:
    env = django_env(
        url,
        CHORUS_QUERY_COUNT_HEADER="1",
        # The simulated volunteers work far faster than people, all from one address.
        CHORUS_RATELIMITS_ENABLED="false",
        DJANGO_SETTINGS_MODULE=args.settings,
    )
    command = [
        PYTHON,
        "-m",
        "uvicorn",
        args.app,
        "--interface",
        args.interface,
        "--workers",
        str(workers),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--no-access-log",
        "--log-level",
        "warning",
    ]
    with log.open("wb") as out:
        return subprocess.Popen(  # noqa: S603
            command, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )


def wait_ready(process: subprocess.Popen[bytes], port: int, key: str, timeout: float = 60) -> None:
    """Until every worker answers: ask a few times in a row, each on a fresh connection."""
    deadline = time.monotonic() + timeout
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/api/v1/me/", headers={"Authorization": f"Bearer {key}"}
    )
    streak = 0
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"uvicorn exited with {process.returncode}")
        try:
            with urllib.request.urlopen(request, timeout=5) as response:  # noqa: S310
                streak = streak + 1 if response.status == 200 else 0
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            streak = 0
            time.sleep(0.2)
        if streak >= 8:
            return
    raise RuntimeError("uvicorn did not answer in time")


def stop_uvicorn(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)  # our own session: uvicorn and its workers
            process.wait()


def process_tree_cpu(pid: int | None) -> float:
    """CPU seconds of a process and all its descendants, from /proc.

    Each live process counts its own time plus that of the children it has reaped
    (cutime, cstime), so descendants that ended in between are not lost.
    """
    total = 0.0
    stack = [pid] if pid else []
    while stack:
        current = stack.pop()
        try:
            stat = Path(f"/proc/{current}/stat").read_text()
            fields = stat[stat.rindex(")") + 2 :].split()
            total += sum(int(x) for x in fields[11:15]) / CLK_TCK
            for task in Path(f"/proc/{current}/task").iterdir():
                children = (task / "children").read_text().split()
                stack.extend(int(c) for c in children)
        except (OSError, ValueError):
            continue
    return total


def postmaster_pid(url: str) -> int | None:
    """The PostgreSQL server's main process, when it runs on this machine (else None)."""
    try:
        with psycopg.connect(url, autocommit=True) as conn:
            row = conn.execute("SELECT pg_backend_pid()").fetchone()
        assert row is not None
        status = Path(f"/proc/{row[0]}/status").read_text()
    except (psycopg.Error, OSError):
        return None
    ppid = next(line.split()[1] for line in status.splitlines() if line.startswith("PPid:"))
    return int(ppid)


def machine_cpu() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine so far, from /proc/stat."""
    values = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = values[3] + values[4]
    total = sum(values[:8])
    return (total - idle) / CLK_TCK, total / CLK_TCK


def own_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


# --- The load --------------------------------------------------------------------------------


@dataclass
class Stats:
    start: float  # measurement window, perf_counter seconds
    end: float
    latency: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    queries: dict[str, list[int]] = field(default_factory=lambda: defaultdict(list))
    queries_by_type: dict[str, list[int]] = field(default_factory=lambda: defaultdict(list))
    loops: int = 0
    requests: int = 0
    idle: int = 0
    errors: Counter[str] = field(default_factory=Counter)
    error_bodies: list[str] = field(default_factory=list)
    types: Counter[str] = field(default_factory=Counter)

    def counts(self, t: float) -> bool:
        return self.start <= t <= self.end

    def error(self, what: str, body: str) -> None:
        self.errors[what] += 1
        if len(self.error_bodies) < 8:
            self.error_bodies.append(f"{what}: {' '.join(body.split())[:300]}")


async def call(
    session: aiohttp.ClientSession,
    stats: Stats,
    endpoint: str,
    url: str,
    body: dict,
    headers: dict[str, str],
) -> tuple[int, Any, str, int | None] | None:
    """POST and time it; None on a connection error (counted).

    Returns (status, json body, text, X-SQL-Queries).
    """
    began = time.perf_counter()
    try:
        async with session.post(url, json=body, headers=headers) as response:
            text = await response.text()
            status = response.status
            queries = response.headers.get("X-SQL-Queries")
    except (TimeoutError, aiohttp.ClientError) as error:
        now = time.perf_counter()
        if stats.counts(now):
            stats.requests += 1
            stats.error(f"{endpoint} connection", repr(error))
        return None
    now = time.perf_counter()
    try:
        data = json.loads(text)
    except ValueError:
        data = None
    if stats.counts(now):
        stats.requests += 1
        name = endpoint
        if endpoint == "request_task" and status == 404:
            name = "request_task (idle)"
        stats.latency[name].append(now - began)
        if queries is not None:
            stats.queries[name].append(int(queries))
    return status, data, text, None if queries is None else int(queries)


def answer(task: dict, rng: random.Random, who: int) -> dict:
    """A plausible submission for the task's type (as the test suite's volunteers give)."""
    kind = task["type"]
    if kind in WRITE_TYPES:
        return {"text": f"{kind} by bench volunteer {who}: {rng.random():.9f}"}
    if kind.startswith("label_"):
        spam = 1 if rng.random() < SPAM_SHARE else 0
        return {"labels": {"spam": spam, "lang_mismatch": 0, "quality": 0.75}}
    order = [reply["id"] for reply in task["replies"]]
    rng.shuffle(order)
    return {"ranking": order}


async def volunteer(
    who: int, session: aiohttp.ClientSession, base: str, key: str, stats: Stats, seed: int
) -> None:
    rng = random.Random(seed * 1_000_003 + who)
    headers = {"Authorization": f"Bearer {key}"}
    request_url = f"{base}/api/v1/tasks/"
    while time.perf_counter() < stats.end:
        began = time.perf_counter()
        body = {"type": "random", "lang": "en"}
        got = await call(session, stats, "request_task", request_url, body, headers)
        if got is None:
            await asyncio.sleep(IDLE_SLEEP)
            continue
        status, task, text, request_queries = got
        if status != 201:
            code = (task or {}).get("error", {}).get("code") if isinstance(task, dict) else None
            if status == 404 and code == "no_task_available":
                if stats.counts(time.perf_counter()):
                    stats.idle += 1
            elif stats.counts(time.perf_counter()):
                stats.error(f"request_task {status} {code}", text)
            await asyncio.sleep(IDLE_SLEEP)
            continue
        payload = answer(task, rng, who)
        payload["key"] = uuid.uuid4().hex
        submit_url = f"{base}/api/v1/tasks/{task['id']}/submit/"
        got = await call(session, stats, "submit_task", submit_url, payload, headers)
        if got is None:
            continue
        status, data, text, submit_queries = got
        now = time.perf_counter()
        if status == 201:
            if stats.counts(now):
                kind = task["type"]
                if request_queries is not None and submit_queries is not None:
                    stats.queries_by_type[f"request_task {kind}"].append(request_queries)
                    stats.queries_by_type[f"submit_task {kind}"].append(submit_queries)
                stats.loops += 1
                stats.latency["loop"].append(now - began)
                stats.types[task["type"]] += 1
        elif stats.counts(now):
            code = (data or {}).get("error", {}).get("code") if isinstance(data, dict) else None
            stats.error(f"submit_task {status} {code} ({task['type']})", text)


async def run_load(
    port: int, keys: list[str], volunteers: int, duration: float, warmup: float, seed: int
) -> Stats:
    base = f"http://127.0.0.1:{port}"
    t0 = time.perf_counter()
    stats = Stats(start=t0 + warmup, end=t0 + warmup + duration)
    # One session (keep-alive pool) for all volunteers; each sends its own key.
    connector = aiohttp.TCPConnector(limit=0, keepalive_timeout=60)
    timeout = aiohttp.ClientTimeout(total=60)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        await asyncio.gather(
            *(
                volunteer(who, session, base, keys[who % len(keys)], stats, seed)
                for who in range(volunteers)
            )
        )
    return stats


# --- Figures ---------------------------------------------------------------------------------


def percentile(values: list[float], share: float) -> float:
    """Nearest-rank percentile."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = max(1, min(len(ordered), round(share * len(ordered) + 0.5)))
    return ordered[rank - 1]


def summarize(stats: Stats, duration: float) -> dict[str, Any]:
    latency = {
        name: {
            "n": len(values),
            "p50_ms": round(percentile(values, 0.50) * 1000, 1),
            "p95_ms": round(percentile(values, 0.95) * 1000, 1),
            "p99_ms": round(percentile(values, 0.99) * 1000, 1),
            "max_ms": round(max(values) * 1000, 1),
        }
        for name, values in sorted(stats.latency.items())
    }
    queries = {
        name: {"mean": round(sum(values) / len(values), 2), "max": max(values)}
        for name, values in sorted(stats.queries.items())
        if values
    }
    return {
        "loops": stats.loops,
        "loops_per_s": round(stats.loops / duration, 1),
        "requests": stats.requests,
        "requests_per_s": round(stats.requests / duration, 1),
        "errors": sum(stats.errors.values()),
        "errors_by_kind": dict(stats.errors.most_common()),
        "error_samples": stats.error_bodies[:5],
        "idle": stats.idle,
        "latency": latency,
        "sql_queries": queries,
        "sql_queries_by_task_type": {
            name: {"mean": round(sum(values) / len(values), 2), "max": max(values)}
            for name, values in sorted(stats.queries_by_type.items())
        },
        "task_types": dict(stats.types.most_common()),
    }


def print_run(result: dict[str, Any]) -> None:
    r = result
    print(f"\n=== {r['workers']} worker(s), {r['volunteers']} volunteers, {r['duration_s']} s ===")
    print(
        f"loops/s {r['loops_per_s']}  requests/s {r['requests_per_s']}  "
        f"loops {r['loops']}  requests {r['requests']}  idle {r['idle']}  errors {r['errors']}"
    )
    for kind, count in r["errors_by_kind"].items():
        print(f"  error {kind}: {count}")
    for sample in r["error_samples"]:
        print(f"  sample {sample}")
    print("latency (ms):")
    for name, figures in r["latency"].items():
        print(
            f"  {name:22s} n={figures['n']:6d}  p50 {figures['p50_ms']:7.1f}  "
            f"p95 {figures['p95_ms']:7.1f}  p99 {figures['p99_ms']:7.1f}  "
            f"max {figures['max_ms']:7.1f}"
        )
    print("SQL queries per request:")
    for name, figures in r["sql_queries"].items():
        print(f"  {name:22s} mean {figures['mean']:5.2f}  max {figures['max']}")
    for name, figures in r["sql_queries_by_task_type"].items():
        print(f"    {name:44s} mean {figures['mean']:5.2f}  max {figures['max']}")
    print("task types done:", ", ".join(f"{k} {v}" for k, v in r["task_types"].items()) or "-")
    db = r["db_at_end"]
    print("tree states at end:", ", ".join(f"{k} {v}" for k, v in db["tree_states"].items()))
    print("messages by review:", db["messages_by_review_result"], " tasks:", db["tasks_by_status"])
    print(
        f"postgres from start to end (warm-up included): {r['pg_during_run']}; "
        f"server tracebacks: {r['server_tracebacks']}"
    )
    cpu = r["cpu_s"]
    print(
        f"CPU seconds in the window: load generator {cpu['load_generator']}, "
        f"uvicorn (all workers) {cpu['uvicorn']}, postgres server {cpu['postgres']}, "
        f"other processes {cpu['others']}; whole machine {cpu['machine_busy']} "
        f"of {cpu['machine_total']} ({cpu['machine_busy_share']:.0%} busy)"
    )
    if r["loops"]:
        per_loop = {
            k: round(1000 * v / r["loops"], 2)
            for k, v in cpu.items()
            if k in ("load_generator", "uvicorn", "postgres") and v is not None
        }
        print(f"CPU ms per loop: {per_loop}")
    if cpu["others"] and cpu["others"] > 0.1 * cpu["machine_total"]:
        print("WARNING: other processes used over 10% of the machine; figures are noisy.")
    if r.get("server_log_tail"):
        print("uvicorn log (tail):\n" + r["server_log_tail"])


# --- Main ------------------------------------------------------------------------------------


def code_state() -> dict[str, Any]:
    """Which code was measured: the commit, and a digest of uncommitted changes to backend/."""
    import hashlib

    def git(*command: str) -> str:
        done = subprocess.run(  # noqa: S603
            ["git", *command],  # noqa: S607
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=False,
        )
        return done.stdout

    diff = git("diff", "HEAD", "--", "backend")
    untracked = git("ls-files", "--others", "--exclude-standard", "--", "backend").split()
    for name in untracked:
        diff += name + (ROOT / name).read_text(errors="replace")
    return {
        "commit": git("rev-parse", "--short", "HEAD").strip(),
        "backend_changes": git("status", "--porcelain", "--", "backend").split("\n")[:-1],
        "backend_digest": hashlib.sha256(diff.encode()).hexdigest()[:12] if diff else None,
    }


def run_one(url: str, keys: list[str], workers: int, args: argparse.Namespace) -> dict[str, Any]:
    reset_domain(url)
    port = free_port()
    log = Path(tempfile.gettempdir()) / f"chorus-bench-uvicorn-{workers}w.log"
    process = start_uvicorn(url, workers, port, log, args)
    try:
        try:
            wait_ready(process, port, keys[0])
        except RuntimeError:
            print(log.read_text(errors="replace")[-3000:], file=sys.stderr)
            raise
        before_db = db_snapshot(url)["pg"]

        postgres = postmaster_pid(url)

        def sample() -> tuple[float, ...]:
            cpu = (own_cpu(), process_tree_cpu(process.pid), process_tree_cpu(postgres))
            return (*cpu, *machine_cpu())

        async def measured() -> tuple[Stats, dict[str, float | None]]:
            load = asyncio.create_task(
                run_load(port, keys, args.volunteers, args.duration, args.warmup, args.seed)
            )
            await asyncio.sleep(args.warmup)
            cpu0 = sample()
            await asyncio.sleep(args.duration)
            cpu1 = sample()
            stats = await load
            mine, server, db, busy, total = (b - a for a, b in zip(cpu0, cpu1, strict=True))
            return stats, {
                "load_generator": round(mine, 2),
                "uvicorn": round(server, 2),
                "postgres": round(db, 2) if postgres else None,
                "others": round(busy - mine - server - db, 2) if postgres else None,
                "machine_busy": round(busy, 2),
                "machine_total": round(total, 2),
                "machine_busy_share": round(busy / total, 3) if total else 0.0,
            }

        stats, cpu = asyncio.run(measured())
        after = db_snapshot(url)
    finally:
        stop_uvicorn(process)
    result: dict[str, Any] = {
        "workers": workers,
        "volunteers": args.volunteers,
        "duration_s": args.duration,
        "warmup_s": args.warmup,
    }
    result.update(summarize(stats, args.duration))
    result["db_at_end"] = after
    result["pg_during_run"] = {k: after["pg"][k] - before_db[k] for k in before_db}
    result["cpu_s"] = cpu
    lines = [
        line
        for line in log.read_text(errors="replace").strip().splitlines()
        if not any(noise in line for noise in NOISE)
    ]
    result["server_tracebacks"] = sum(line.startswith("Traceback") for line in lines)
    result["server_log_tail"] = "\n".join(lines[-15:])
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--volunteers", type=int, default=32)
    parser.add_argument("--duration", type=float, default=30.0)
    parser.add_argument("--warmup", type=float, default=5.0)
    parser.add_argument("--database-url", help="a PostgreSQL server (the database is replaced)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--settings",
        default="backend.settings",
        help="DJANGO_SETTINGS_MODULE for the server (e.g. an experiment under bench/)",
    )
    parser.add_argument("--app", default="backend.asgi:application", help="what uvicorn serves")
    parser.add_argument("--interface", default="auto", choices=["auto", "asgi3", "wsgi"])
    parser.add_argument("--json", type=Path, help="also write the JSON summary here")
    args = parser.parse_args()

    code = code_state()
    print(f"Code: {code['commit']}, uncommitted backend digest {code['backend_digest']}")
    server = server_url(args.database_url)
    url, keys = prepare_database(server, args.volunteers)
    results = []
    for workers in args.workers:
        result = run_one(url, keys, workers, args)
        print_run(result)
        results.append(result)
    summary = {
        "benchmark": "taskloop",
        "volunteers": args.volunteers,
        "duration_s": args.duration,
        "warmup_s": args.warmup,
        "server": {"app": args.app, "interface": args.interface, "settings": args.settings},
        "code": code,
        "runs": [{k: v for k, v in r.items() if k != "server_log_tail"} for r in results],
    }
    line = json.dumps(summary, sort_keys=True)
    print("\nJSON " + line)
    if args.json:
        args.json.write_text(line + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
