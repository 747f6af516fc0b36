"""Soak test: many simulated volunteers for minutes against several web processes, a Celery
worker and beat, then an invariant check over the whole database.

    .venv/bin/python bench/soak.py [--minutes 10] [--volunteers 200] [--web 2] [--keep]

Prepares its own database `chorus_soak` on the PostgreSQL server of DATABASE_URL (default
postgres://postgres@127.0.0.1:5432/postgres; replaced at the start, dropped at the end
unless --keep) and empties the Redis database of REDIS_URL (default
redis://127.0.0.1:6379/0: give it a database of its own). It migrates, creates the
volunteers with API keys, then starts as subprocesses `--web` uvicorn processes
(backend.asgi:application, one port each), `celery -A backend worker` (prefork, two
children) and `celery -A backend beat` with the periodic jobs every few seconds, all with
CELERY_TASK_ALWAYS_EAGER=0 and the rate limits off (CHORUS_RATELIMITS_ENABLED=false: every
client comes from one address).

Each volunteer is an asyncio client (aiohttp) on one of the web processes, looping: ask for
a task (mostly `random`, sometimes a given type), think a moment, then submit a plausible
answer with an idempotency key (prompts, replies, labels, rankings as permutations of the
offered replies, now and then "not rankable"); sometimes it skips, abandons the task to
its lease's expiry, reports a message or reads a tree. A submission whose answer is lost
(a timeout, a dropped connection, or on purpose now and then) is sent again with the same
key and must give the same result.

Every 30 s it prints throughput, errors and latency; at the end the totals, the resident
memory of each process after the warm-up and at the end, then runs
`manage.py check_invariants` and checks that every submission a client saw succeed is
stored exactly once. Exits 1 when a target is missed: an error (a non-2xx answer that is
not an expected refusal, a connection error, a traceback in a server log), a broken
invariant, or a process whose memory grew over 10%. Every process it started is stopped at
the end, also on Ctrl-C or a crash.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import psycopg
import redis
from psycopg import sql

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from bench.taskloop import (  # noqa: E402
    PYTHON,
    code_state,
    free_port,
    percentile,
    server_url,
    wait_ready,
    with_dbname,
)

SOAK_DB = "chorus_soak"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"
MEMORY_GROWTH_LIMIT = 0.10
REPORT_EVERY = 30.0
TASK_TYPES = (
    "initial_prompt",
    "assistant_reply",
    "prompter_reply",
    "label_initial_prompt",
    "label_assistant_reply",
    "label_prompter_reply",
    "rank_assistant_replies",
)
WRITE_TYPES = ("initial_prompt", "assistant_reply", "prompter_reply")
# Volunteer n works in LANGUAGES[n % 4] (Chorus's default languages), so four sets of trees
# grow side by side, each under its own per-language limits, as on a real community site.
LANGUAGES = ("en", "de", "es", "fr")
# Refusals a correct client meets in normal work: nothing to do now, a tree a moderator (or
# auto-moderation) halted under it, a message it reported already.
EXPECTED = {
    ("request_task", 404, "no_task_available"),
    ("submit", 409, "tree_halted"),
    # Moderation (auto-moderation after reports, here) removed the message the task works
    # on, or moved its tree on, while the volunteer held the task.
    ("submit", 409, "tree_moved_on"),
    # A first prompt too close to a live one: the volunteer writes another.
    ("submit", 409, "duplicate_prompt"),
    ("skip", 409, "tree_halted"),
    ("report", 409, "conflict"),
    ("read_tree", 404, "not_found"),
}
# What a volunteer does with a task it got (the rest: submit).
SKIP_SHARE = 0.05
ABANDON_SHARE = 0.01
REPORT_SHARE = 0.01
READ_SHARE = 0.05
TYPED_SHARE = 0.3
LOST_ANSWER_SHARE = 0.03
SPAM_SHARE = 0.08
NOT_RANKABLE_SHARE = 0.03
SUBMIT_ATTEMPTS = 4
# A request without an answer after this long is given up (and a submission sent again).
CLIENT_TIMEOUT = 60
_VOCABULARY = (
    "why how what would could explain compare describe garden river bread music history "
    "planet engine winter language number recipe travel bicycle library ocean mountain "
    "window theory market health sleep coffee poem letter story school robot forest city "
    "train light energy animal water paper color stone cloud friend memory question answer "
    "simple careful quick strange useful honest gentle ancient modern small large"
)
WORDS = _VOCABULARY.split()

CREATE_USERS_SCRIPT = """
import json, os, sys
import django
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "backend.settings")
django.setup()
from django.db import transaction
from backend.accounts.services import create_api_client, create_user
keys = []
languages = json.loads(sys.argv[2])
with transaction.atomic():
    for n in range(int(sys.argv[1])):
        lang = languages[n % len(languages)]
        user = create_user(username=f"soak{n:04d}", languages=[lang], accepted_terms_version=1)
        keys.append(create_api_client(owner=user, name="soak")[1])
print("KEYS " + json.dumps(keys))
"""


# --- Processes -------------------------------------------------------------------------------


class Processes:
    """The servers this run started, each in a session of its own; `stop` ends them all."""

    def __init__(self, log_dir: Path) -> None:
        self.log_dir = log_dir
        self.started: dict[str, subprocess.Popen[bytes]] = {}

    def start(self, name: str, command: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
        log = (self.log_dir / f"{name}.log").open("wb")
        process = subprocess.Popen(  # noqa: S603
            command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        log.close()
        self.started[name] = process
        return process

    def log(self, name: str) -> str:
        return (self.log_dir / f"{name}.log").read_text(errors="replace")

    def stop(self, *names: str) -> None:
        """SIGTERM to each process group (a warm shutdown for Celery), SIGKILL after 20 s;
        those named, or all."""
        chosen = [p for name, p in self.started.items() if name in names or not names]
        for process in chosen:
            if process.poll() is None:
                _signal_group(process.pid, signal.SIGTERM)
        deadline = time.monotonic() + 20
        for process in chosen:
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=max(0.1, deadline - time.monotonic()))
        for process in chosen:
            _signal_group(process.pid, signal.SIGKILL)  # children left behind by a parent
            if process.poll() is None:
                process.wait()


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


def server_env(database_url: str, redis_url: str, lease_minutes: float) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        DATABASE_URL=database_url,
        REDIS_URL=redis_url,
        DJANGO_SETTINGS_MODULE="backend.settings",
        DEBUG="0",
        CELERY_TASK_ALWAYS_EAGER="0",
        # One address for every client: per-address limits off (and the per-user DRF
        # throttle far above what a volunteer does).
        CHORUS_RATELIMITS_ENABLED="false",
        CHORUS_RATE_USER="1000000/min",
        # The periodic jobs every few seconds, so they run many times under the load.
        CHORUS_RECONCILE_SECONDS="10",
        CHORUS_EXPIRE_SECONDS="5",
        # Short leases, so abandoned tasks expire while the soak runs.
        CHORUS_TASK_LEASE_MINUTES=str(lease_minutes),
        CHORUS_VAR_DIR=str(Path(tempfile.gettempdir()) / "chorus-soak-var"),
    )
    env.pop("CELERY_BROKER_URL", None)
    env.pop("INFERENCE_URL", None)
    return env


def start_servers(
    processes: Processes, env: dict[str, str], web: int, beat_file: Path
) -> list[int]:
    ports = []
    for n in range(web):
        port = free_port()
        ports.append(port)
        processes.start(
            f"web{n}",
            [
                PYTHON,
                "-m",
                "uvicorn",
                "backend.asgi:application",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--no-access-log",
                "--log-level",
                "warning",
                # Longer than the clients keep an idle connection, so a client never sends
                # on a connection the server is closing (as behind a load balancer).
                "--timeout-keep-alive",
                "30",
            ],
            env,
        )
    celery = [PYTHON, "-m", "celery", "-A", "backend"]
    processes.start(
        "worker",
        [*celery, "worker", "--loglevel", "WARNING", "--concurrency", "2", "--without-mingle",
         "--without-gossip", "-n", f"soak-{os.getpid()}@%h"],
        env,
    )  # fmt: skip
    processes.start(
        "beat",
        [*celery, "beat", "--loglevel", "WARNING", "--schedule", str(beat_file)],
        env,
    )
    return ports


# --- Memory ------------------------------------------------------------------------------------


def rss_kib(pid: int) -> int | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


def children(pid: int) -> list[int]:
    found = []
    try:
        for task in Path(f"/proc/{pid}/task").iterdir():
            found += [int(c) for c in (task / "children").read_text().split()]
    except OSError:
        pass
    return sorted(found)


def memory(processes: Processes) -> dict[str, tuple[int, int | None]]:
    """name -> (pid, RSS KiB) of each server process and of the worker's pool children."""
    out: dict[str, tuple[int, int | None]] = {}
    for name, process in processes.started.items():
        out[name] = (process.pid, rss_kib(process.pid))
        if name == "worker":
            for n, child in enumerate(children(process.pid)):
                out[f"worker child {n}"] = (child, rss_kib(child))
    return out


def memory_line(processes: Processes) -> str:
    """Each process's resident memory now, for the progress lines: a leak shows as a climb
    that goes on, a cache or a growing data set as one that levels off."""
    return "RSS MiB " + " ".join(
        f"{name.replace('worker child ', 'child')}={kib / 1024:.0f}"
        for name, (_, kib) in memory(processes).items()
        if kib is not None
    )


# --- The load ------------------------------------------------------------------------------


@dataclass
class Stats:
    began: float
    requests: int = 0
    loops: int = 0
    latency: list[float] = field(default_factory=list)  # every request, seconds
    errors: Counter[str] = field(default_factory=Counter)
    error_samples: list[str] = field(default_factory=list)
    expected: Counter[str] = field(default_factory=Counter)
    actions: Counter[str] = field(default_factory=Counter)
    # (task id, key, result id, task type) of each submission a client saw succeed.
    submitted: list[tuple[str, str, str, str]] = field(default_factory=list)

    def error(self, what: str, body: str) -> None:
        self.errors[what] += 1
        if len(self.error_samples) < 10:
            self.error_samples.append(f"{what}: {' '.join(body.split())[:300]}")


class Volunteer:
    def __init__(
        self, who: int, key: str, base: str, session: aiohttp.ClientSession, stats: Stats
    ) -> None:
        self.who = who
        self.base = base
        self.session = session
        self.stats = stats
        self.headers = {"Authorization": f"Bearer {key}"}
        self.rng = random.Random(who * 7919 + 1)
        self.lang = LANGUAGES[who % len(LANGUAGES)]

    async def call(
        self, action: str, method: str, path: str, body: dict | None = None
    ) -> tuple[int, Any] | None:
        """One request, timed; None on a connection error or timeout (counted as errors)."""
        began = time.perf_counter()
        self.stats.requests += 1
        try:
            async with self.session.request(
                method, self.base + path, json=body, headers=self.headers
            ) as response:
                text = await response.text()
                status = response.status
        except (TimeoutError, aiohttp.ClientError) as error:
            self.stats.error(f"{action} connection", repr(error))
            return None
        self.stats.latency.append(time.perf_counter() - began)
        try:
            data = json.loads(text) if text else None
        except ValueError:
            data = None
        if status >= 300:
            code = data.get("error", {}).get("code") if isinstance(data, dict) else None
            if (action, status, code) in EXPECTED:
                self.stats.expected[f"{action} {status} {code}"] += 1
            else:
                self.stats.error(f"{action} {status} {code}", text)
        return status, data

    async def run(self, until: float) -> None:
        while time.perf_counter() < until:
            kind = self.rng.choice(TASK_TYPES) if self.rng.random() < TYPED_SHARE else "random"
            got = await self.call(
                "request_task", "POST", "/api/v1/tasks/", {"type": kind, "lang": self.lang}
            )
            if got is None or got[0] != 201:
                await asyncio.sleep(self.rng.uniform(0.5, 1.5))
                continue
            task = got[1]
            await asyncio.sleep(self.rng.uniform(0.2, 1.5))  # reading and thinking
            if self.rng.random() < READ_SHARE and task.get("tree_id"):
                self.stats.actions["read_tree"] += 1
                await self.call("read_tree", "GET", f"/api/v1/trees/{task['tree_id']}/")
            if self.rng.random() < REPORT_SHARE and task["conversation"]:
                self.stats.actions["report"] += 1
                message = task["conversation"][-1]["id"]
                reason = self.rng.choice(["incorrect", "offensive", "wrong_language"])
                body = {"reason": reason, "task_id": task["id"]}  # it may not be public yet
                await self.call("report", "POST", f"/api/v1/messages/{message}/reports/", body)
            draw = self.rng.random()
            if draw < ABANDON_SHARE:
                self.stats.actions["abandon"] += 1  # its lease runs out; the expiry job frees it
            elif draw < ABANDON_SHARE + SKIP_SHARE:
                self.stats.actions["skip"] += 1
                reason = self.rng.choice(["not_knowledgeable", "too_long", "other"])
                await self.call(
                    "skip", "POST", f"/api/v1/tasks/{task['id']}/skip/", {"reason": reason}
                )
            else:
                await self.submit(task)
            self.stats.loops += 1

    async def submit(self, task: dict) -> None:
        for _ in range(3):
            outcome = await self.submit_once(task, self.answer(task))
            if outcome != "duplicate_prompt":
                return

    async def submit_once(self, task: dict, payload: dict[str, Any]) -> str | None:
        """Submit with a new key, sending it again (same key) while no answer comes back;
        returns the error code of a refusal, None otherwise."""
        payload["key"] = uuid.uuid4().hex
        path = f"/api/v1/tasks/{task['id']}/submit/"
        first: str | None = None
        lose_answer = self.rng.random() < LOST_ANSWER_SHARE
        for attempt in range(SUBMIT_ATTEMPTS):
            got = await self.call("submit", "POST", path, payload)
            if got is None:  # no answer: send it again with the same key
                await asyncio.sleep(0.5 * (attempt + 1))
                continue
            status, data = got
            if status not in (200, 201):
                return data.get("error", {}).get("code") if isinstance(data, dict) else None
            if first is not None and data["result_id"] != first:
                self.stats.error("submit retry gave another result", json.dumps(data))
            first = data["result_id"]
            if status == 200 and not data.get("replayed"):
                self.stats.error("submit 200 without replayed", json.dumps(data))
            if lose_answer and attempt == 0:  # as if the answer had been lost on the way
                self.stats.actions["retry"] += 1
                continue
            break
        if first is not None:
            self.stats.actions[f"submit {task['type']}"] += 1
            self.stats.submitted.append((task["id"], payload["key"], first, task["type"]))
        return None

    def answer(self, task: dict) -> dict[str, Any]:
        kind = task["type"]
        if kind in WRITE_TYPES:
            words = " ".join(self.rng.choice(WORDS) for _ in range(self.rng.randint(6, 24)))
            return {"text": f"{words} ({self.who}-{self.rng.getrandbits(48):x})"}
        if kind.startswith("label_"):
            labels: dict[str, float] = {}
            for spec in task["labels"]:
                if spec["kind"] == "scale":
                    labels[spec["name"]] = round(self.rng.random(), 2)
                elif spec["name"] == "spam":
                    labels["spam"] = 1.0 if self.rng.random() < SPAM_SHARE else 0.0
                elif spec["required"] or self.rng.random() < 0.3:
                    labels[spec["name"]] = 1.0 if self.rng.random() < 0.02 else 0.0
            return {"labels": labels}
        if self.rng.random() < NOT_RANKABLE_SHARE:
            return {"not_rankable": True}
        order = [reply["id"] for reply in task["replies"]]
        self.rng.shuffle(order)
        return {"ranking": order}


def report_line(stats: Stats, last: dict[str, float], now: float) -> str:
    window = now - last["t"]
    loops = (stats.loops - last["loops"]) / window
    requests = (stats.requests - last["requests"]) / window
    recent = stats.latency[int(last["latency"]) :]
    last.update(t=now, loops=stats.loops, requests=stats.requests, latency=len(stats.latency))
    return (
        f"[{now - stats.began:6.0f} s] loops/s {loops:6.1f}  requests/s {requests:6.1f}  "
        f"errors so far {sum(stats.errors.values())}  "
        f"p50 {percentile(recent, 0.5) * 1000:6.1f} ms  "
        f"p99 {percentile(recent, 0.99) * 1000:7.1f} ms"
    )


async def run_load(
    ports: list[int],
    keys: list[str],
    seconds: float,
    on_warm: Any,
    warmup: float,
    memory_now: Any = lambda: "",
) -> Stats:
    stats = Stats(began=time.perf_counter())
    until = stats.began + seconds
    connector = aiohttp.TCPConnector(limit=0, keepalive_timeout=15)
    timeout = aiohttp.ClientTimeout(total=CLIENT_TIMEOUT)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        volunteers = [
            Volunteer(n, key, f"http://127.0.0.1:{ports[n % len(ports)]}", session, stats)
            for n, key in enumerate(keys)
        ]
        work = asyncio.gather(*(v.run(until) for v in volunteers))
        last = {"t": stats.began, "loops": 0, "requests": 0, "latency": 0}
        warmed = False
        while not work.done():
            await asyncio.wait([work], timeout=1.0)
            now = time.perf_counter()
            if not warmed and now - stats.began >= warmup:
                warmed = True
                on_warm()
            if now - last["t"] >= REPORT_EVERY and not work.done():
                print(f"{report_line(stats, last, now)}  {memory_now()}", flush=True)
        await work
    return stats


# --- Checks afterwards ---------------------------------------------------------------------


def wait_for_queue(redis_url: str, timeout: float = 300) -> int:
    """Until the Celery queue is empty (the worker did every job the load queued; beat is
    stopped first, so nothing new comes in)."""
    client = redis.Redis.from_url(redis_url)
    deadline = time.monotonic() + timeout
    while (left := int(client.llen("celery"))) and time.monotonic() < deadline:
        time.sleep(1)
    time.sleep(3)  # the last job taken may still be running
    return left


def check_submissions(url: str, submitted: list[tuple[str, str, str, str]]) -> list[str]:
    """Every submission a client saw succeed is stored once: its task is submitted with that
    key and result, no other task has that result, and the result exists once."""
    with psycopg.connect(url) as conn:
        conn.execute("CREATE TEMP TABLE seen (task_id uuid, key text, result_id uuid, type text)")
        with conn.cursor().copy("COPY seen FROM STDIN") as copy:
            for row in submitted:
                copy.write_row(row)
        rows = conn.execute(
            """
            SELECT s.task_id, s.type, k.status, k.submission_key = s.key,
                   k.result_id = s.result_id,
                   (SELECT count(*) FROM tasks_task o WHERE o.result_id = s.result_id),
                   (SELECT count(*) FROM trees_message m WHERE m.id = s.result_id)
                   + (SELECT count(*) FROM trees_review r WHERE r.id = s.result_id)
                   + (SELECT count(*) FROM trees_ranking r WHERE r.id = s.result_id),
                   (SELECT count(*) FROM trees_review r WHERE r.task_id = s.task_id)
                   + (SELECT count(*) FROM trees_ranking r WHERE r.task_id = s.task_id)
            FROM seen s LEFT JOIN tasks_task k ON k.id = s.task_id
            """
        ).fetchall()
        duplicates = conn.execute(
            "SELECT task_id, count(DISTINCT result_id) FROM seen GROUP BY 1 HAVING count(*) > 1"
        ).fetchall()
    problems = []
    for task_id, kind, status, same_key, same_result, tasks, results, by_task in rows:
        expected_by_task = 0 if kind in WRITE_TYPES else 1
        if (status, same_key, same_result, tasks, results, by_task) != (
            "submitted",
            True,
            True,
            1,
            1,
            expected_by_task,
        ):
            problems.append(
                f"{task_id} ({kind}): status {status}, same key {same_key}, same result "
                f"{same_result}, tasks with that result {tasks}, results {results}, "
                f"results recorded for the task {by_task}"
            )
    problems += [f"{task_id}: recorded twice, {n} results" for task_id, n in duplicates if n != 1]
    return problems


def tracebacks(processes: Processes) -> dict[str, int]:
    found = {}
    for name in processes.started:
        text = processes.log(name)
        found[name] = text.count("Traceback (most recent call last)") + text.count("ERROR/")
    return found


def db_figures(url: str) -> dict[str, Any]:
    with psycopg.connect(url, autocommit=True) as conn:
        return {
            "tree_states": dict(
                conn.execute("SELECT state, count(*) FROM trees_messagetree GROUP BY 1 ORDER BY 1")
            ),
            "tasks": dict(
                conn.execute("SELECT status, count(*) FROM tasks_task GROUP BY 1 ORDER BY 1")
            ),
            "messages": conn.execute("SELECT count(*) FROM trees_message").fetchone()[0],
            "reports": conn.execute("SELECT count(*) FROM moderation_report").fetchone()[0],
        }


# --- Main ------------------------------------------------------------------------------------


def prepare_database(server: str, volunteers: int) -> tuple[str, list[str]]:
    with psycopg.connect(with_dbname(server, "postgres"), autocommit=True) as conn:
        name = sql.Identifier(SOAK_DB)
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(name))
        conn.execute(sql.SQL("CREATE DATABASE {}").format(name))
    url = with_dbname(server, SOAK_DB)
    env = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "CELERY_BROKER_URL")}
    env.update(DATABASE_URL=url, DJANGO_SETTINGS_MODULE="backend.settings", DEBUG="0")
    migrate = [PYTHON, "manage.py", "migrate", "--noinput", "-v", "0"]
    subprocess.run(migrate, cwd=ROOT, env=env, check=True)  # noqa: S603
    done = subprocess.run(  # noqa: S603
        [PYTHON, "-c", CREATE_USERS_SCRIPT, str(volunteers), json.dumps(LANGUAGES)],
        cwd=ROOT, env=env, check=True, capture_output=True, text=True,
    )  # fmt: skip
    line = next(x for x in done.stdout.splitlines() if x.startswith("KEYS "))
    return url, json.loads(line[len("KEYS ") :])


def drop_database(server: str) -> None:
    with psycopg.connect(with_dbname(server, "postgres"), autocommit=True) as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(SOAK_DB))
        )


def run_invariant_check(url: str) -> tuple[int, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "CELERY_BROKER_URL")}
    env.update(DATABASE_URL=url, DJANGO_SETTINGS_MODULE="backend.settings", DEBUG="0")
    done = subprocess.run(  # noqa: S603
        [PYTHON, "manage.py", "check_invariants", "--timings"],
        cwd=ROOT, env=env, capture_output=True, text=True, check=False,
    )  # fmt: skip
    return done.returncode, (done.stdout + done.stderr).strip()


def uptime() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def print_load(stats: Stats, elapsed: float, found: dict[str, int]) -> None:
    errors = sum(stats.errors.values())
    p50, p99 = percentile(stats.latency, 0.5), percentile(stats.latency, 0.99)
    print(
        f"loops {stats.loops} ({stats.loops / elapsed:.1f}/s)  requests {stats.requests} "
        f"({stats.requests / elapsed:.1f}/s)  errors {errors}  "
        f"latency p50 {p50 * 1000:.1f} ms  p99 {p99 * 1000:.1f} ms  "
        f"max {max(stats.latency, default=0) * 1000:.0f} ms"
    )
    print("actions:", ", ".join(f"{k} {v}" for k, v in sorted(stats.actions.items())))
    print("expected refusals:", dict(stats.expected) or "-")
    for what, count in stats.errors.most_common():
        print(f"  error {what}: {count}")
    for sample in stats.error_samples:
        print(f"  sample {sample}")
    print("server log errors/tracebacks:", found)


def compare_memory(
    start: dict[str, tuple[int, int | None]],
    end: dict[str, tuple[int, int | None]],
    failed: list[str],
) -> dict[str, dict[str, float]]:
    print("memory (RSS MiB, after warm-up -> end):")
    rows = {}
    for name, (pid, after) in end.items():
        start_pid, before = start.get(name, (None, None))
        if before is None or after is None or start_pid != pid:
            print(
                f"  {name:16s} pid {pid}: not comparable (start {start_pid}/{before}, end {after})"
            )
            failed.append(f"{name}: memory not measured at start and end")
            continue
        growth = after / before - 1
        rows[name] = {
            "start_mib": round(before / 1024, 1),
            "end_mib": round(after / 1024, 1),
            "growth": round(growth, 4),
        }
        print(f"  {name:16s} {before / 1024:7.1f} -> {after / 1024:7.1f}  ({growth:+.1%})")
        if growth > MEMORY_GROWTH_LIMIT:
            failed.append(f"{name}: memory grew {growth:.1%}")
    return rows


def check_database(url: str, stats: Stats, failed: list[str]) -> dict[str, Any]:
    figures = db_figures(url)
    print("database:", figures)
    rc, report = run_invariant_check(url)
    print("invariant check:\n" + "\n".join("  " + line for line in report.splitlines()))
    if rc:
        failed.append("invariants broken")
    lost = check_submissions(url, stats.submitted)
    print(
        f"submissions seen by clients: {len(stats.submitted)}; not stored exactly once: {len(lost)}"
    )
    for line in lost[:10]:
        print("  " + line)
    if lost:
        failed.append(f"{len(lost)} submissions not stored exactly once")
    return figures


def soak(args: argparse.Namespace, url: str, keys: list[str], failed: list[str]) -> dict:
    """Start the servers, run the load, stop them, check the database; the summary."""
    seconds = args.minutes * 60
    warmup = args.warmup if args.warmup is not None else min(60.0, max(10.0, seconds / 10))
    processes = Processes(Path(tempfile.mkdtemp(prefix="chorus-soak-")))
    try:
        env = server_env(url, args.redis_url, args.lease_minutes)
        ports = start_servers(processes, env, args.web, processes.log_dir / "beat-schedule")
        for n, port in enumerate(ports):
            wait_ready(processes.started[f"web{n}"], port, keys[0], timeout=180)
        print(
            f"Started {args.web} web processes (ports {ports}), a Celery worker and beat; "
            f"logs in {processes.log_dir}. Load for {args.minutes:g} min, warm-up {warmup:g} s.",
            flush=True,
        )
        start_memory: dict[str, tuple[int, int | None]] = {}

        def on_warm() -> None:
            start_memory.update(memory(processes))

        stats = asyncio.run(
            run_load(ports, keys, seconds, on_warm, warmup, lambda: memory_line(processes))
        )
        end_memory = memory(processes)
        processes.stop("beat")
        began_waiting = time.perf_counter()
        left = wait_for_queue(args.redis_url)
        print(f"Job queue drained in {time.perf_counter() - began_waiting:.0f} s.", flush=True)
        failed += [
            f"{name} exited early with {process.returncode}"
            for name, process in processes.started.items()
            if process.poll() is not None and name != "beat"
        ]
        found = tracebacks(processes)
    finally:
        processes.stop()
    elapsed = time.perf_counter() - stats.began
    print(
        f"\n=== Soak: {args.volunteers} volunteers, {args.web} web processes, {elapsed:.0f} s ==="
    )
    print_load(stats, elapsed, found)
    if left:
        failed.append(f"{left} jobs still queued after the load")
    memory_rows = compare_memory(start_memory, end_memory, failed)
    figures = check_database(url, stats, failed)
    errors = sum(stats.errors.values())
    if errors:
        failed.append(f"{errors} errors")
    if any(found.values()):
        failed.append(f"errors in server logs: {found}")
    return {
        "volunteers": args.volunteers,
        "web_processes": args.web,
        "seconds": round(elapsed),
        "loops": stats.loops,
        "loops_per_s": round(stats.loops / elapsed, 1),
        "requests": stats.requests,
        "requests_per_s": round(stats.requests / elapsed, 1),
        "errors": errors,
        "errors_by_kind": dict(stats.errors),
        "p50_ms": round(percentile(stats.latency, 0.5) * 1000, 1),
        "p99_ms": round(percentile(stats.latency, 0.99) * 1000, 1),
        "memory": memory_rows,
        "database": figures,
        "submissions_checked": len(stats.submitted),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--volunteers", type=int, default=200)
    parser.add_argument("--web", type=int, default=2, help="uvicorn processes (default 2)")
    parser.add_argument("--warmup", type=float, help="seconds before the first memory reading")
    parser.add_argument("--lease-minutes", type=float, default=2.0)
    parser.add_argument("--database-url", help="a PostgreSQL server (its chorus_soak is replaced)")
    parser.add_argument("--redis-url", help="a Redis database for this run alone (emptied)")
    parser.add_argument("--keep", action="store_true", help="keep the chorus_soak database")
    parser.add_argument("--json", type=Path, help="also write the summary here")
    args = parser.parse_args()
    args.redis_url = args.redis_url or os.environ.get("REDIS_URL") or DEFAULT_REDIS_URL

    code = code_state()
    print(f"Code: {code['commit']}, uncommitted backend digest {code['backend_digest']}")
    print(f"Load average before: {uptime()} on {os.cpu_count()} CPUs", flush=True)
    server = server_url(args.database_url)
    # A SIGTERM (or SIGHUP) ends the run like Ctrl-C: through the finally clauses.
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, signal.default_int_handler)
    failed: list[str] = []
    result: dict[str, Any] = {}
    try:
        redis.Redis.from_url(args.redis_url).flushdb()
        url, keys = prepare_database(server, args.volunteers)
        print(
            f"Database {SOAK_DB} ready ({len(keys)} volunteers); "
            f"Redis database {urlsplit(args.redis_url).path} emptied."
        )
        result = {"benchmark": "soak", "code": code, **soak(args, url, keys, failed)}
    except KeyboardInterrupt:
        failed.append("interrupted")
        print("\nInterrupted; the servers are stopped.", file=sys.stderr)
    finally:
        if not args.keep:
            drop_database(server)
    print(f"Load average after: {uptime()}")
    if args.json and result:
        result["failed"] = failed
        args.json.write_text(json.dumps(result, sort_keys=True, default=str) + "\n")
    if failed:
        print("TARGETS MISSED: " + "; ".join(failed))
        return 1
    print("All targets met: no errors, no broken invariant, no process grew over 10%.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
