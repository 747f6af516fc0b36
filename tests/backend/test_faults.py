"""Fault injection with real services (issue 7, "Reliability").

Each test breaks one real service on purpose and checks what a user relies on:
- Redis stopped: the cache falls back to memory, requests keep working, and it all comes
  back when Redis does (a private redis-server; the machine's Redis is never touched);
- the database connection killed in the middle of a submission: a clean 503, and a retry
  with the same idempotency key stores exactly one message;
- a Celery worker killed in the middle of an export: the job runs again and exactly one
  complete version is published, never a partial one.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Coroutine, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
from django.db import connection, transaction
from django.utils import timezone

from backend.core.cache import FallbackRedisCache
from tests.backend.faults import PrivateRedis, free_port, redis_server_binary, wait_until
from tests.backend.test_celery_worker import (  # noqa: F401 (fixtures, asked for by name)
    broker_url,
    database_url_for_worker,
    producer,
    reset_broker_pools,
)
from tests.conftest import PROJECT_ROOT

T = TypeVar("T")


@pytest.fixture(autouse=True)
def fast_password_hashing(settings):  # type: ignore[no-untyped-def]
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def private_redis(tmp_path) -> Iterator[PrivateRedis]:  # type: ignore[no-untyped-def]
    server = PrivateRedis(redis_server_binary(), tmp_path)
    server.start()
    try:
        yield server
    finally:
        server.stop()


def fallback_cache(url: str, retry_seconds: float = 60.0) -> FallbackRedisCache:
    return FallbackRedisCache(
        url, {"KEY_PREFIX": "faults", "OPTIONS": {"FALLBACK_RETRY_SECONDS": retry_seconds}}
    )


# --- Redis down: the default cache -------------------------------------------------------


def test_the_cache_works_from_memory_when_redis_cannot_be_reached(caplog):
    url = f"redis://127.0.0.1:{free_port()}/0"  # nothing listens there
    cache = fallback_cache(url)
    caplog.set_level(logging.WARNING, logger="backend.core.cache")

    started = time.monotonic()
    assert cache.get("missing") is None
    cache.set("answer", 42)
    assert cache.add("counter", 1)
    assert cache.incr("counter") == 2
    assert cache.get_or_set("computed", lambda: "fresh") == "fresh"
    assert cache.get_many(["answer", "counter"]) == {"answer": 42, "counter": 2}
    for _ in range(200):
        cache.incr("counter")
    assert cache.get("counter") == 202
    assert time.monotonic() - started < 2.0  # no connection attempt per call

    assert not cache.is_using_redis
    # Django makes a cache object per thread and request: they share the outage and memory.
    other = fallback_cache(url)
    assert not other.is_using_redis
    assert other.get("answer") == 42
    warnings = [r for r in caplog.records if "unreachable" in r.getMessage()]
    assert len(warnings) == 1  # once per outage, not once per call


def test_the_cache_goes_back_to_redis_when_it_returns(private_redis, caplog):
    import redis

    caplog.set_level(logging.WARNING, logger="backend.core.cache")
    cache = fallback_cache(private_redis.url, retry_seconds=0.2)
    direct = redis.Redis.from_url(private_redis.url)
    cache.set("before", "in redis")
    assert cache.is_using_redis
    assert direct.dbsize() == 1

    private_redis.stop()
    assert cache.get("before") is None  # a miss, not an error
    cache.set("during", "in memory")
    assert cache.get("during") == "in memory"
    assert not cache.is_using_redis

    private_redis.start()  # a fresh, empty server on the same port
    wait_until(
        lambda: cache.get("anything") is None and cache.is_using_redis,
        timeout=5,
        what="the cache to try Redis again",
    )
    cache.set("after", "in redis again")
    assert direct.get("faults:1:after") is not None
    # What the outage kept in memory is gone: only Redis answers now.
    assert cache.get("during") is None
    messages = [r.getMessage() for r in caplog.records]
    assert sum("unreachable" in m for m in messages) == 1
    assert sum("reachable again" in m for m in messages) == 1
    direct.close()


@pytest.mark.django_db(transaction=True)
def test_a_job_sent_after_commit_to_a_dead_broker_is_logged_and_does_not_fail_the_caller(caplog):
    from kombu.exceptions import OperationalError

    from backend.celery import app
    from backend.trees.jobs import reconcile_trees_job

    before = (app.conf.broker_url, app.conf.task_always_eager)
    reset_broker_pools(app)
    app.conf.broker_url = f"redis://127.0.0.1:{free_port()}/0"  # nothing listens there
    app.conf.task_always_eager = False
    try:
        started = time.monotonic()
        with transaction.atomic():
            reconcile_trees_job.delay_on_commit()
        assert time.monotonic() - started < 5
        assert "reconcile_trees_job not sent, the broker is unreachable" in caplog.text
        with pytest.raises(OperationalError):  # a direct send still tells its caller
            reconcile_trees_job.delay()
    finally:
        reset_broker_pools(app)
        app.conf.broker_url, app.conf.task_always_eager = before


@pytest.mark.django_db(transaction=True)
def test_an_export_whose_job_never_reached_the_broker_runs_once_recovery_sends_it_again(
    settings, tmp_path, caplog
):
    from backend.celery import app
    from backend.exports import jobs, services
    from backend.exports.models import DatasetExport, ExportStatus
    from tests.backend.test_exports import conversation

    settings.CHORUS_EXPORT_DIR = str(tmp_path / "exports")
    settings.CHORUS_EXPORT_REQUEUE_MINUTES = 10
    conversation()
    before = (app.conf.broker_url, app.conf.task_always_eager)
    reset_broker_pools(app)
    app.conf.broker_url = f"redis://127.0.0.1:{free_port()}/0"  # nothing listens there
    app.conf.task_always_eager = False
    try:
        lost = services.start_export(user=None, filters={}, seed=1)
    finally:
        reset_broker_pools(app)
        app.conf.broker_url, app.conf.task_always_eager = before
    assert "run_export_job not sent, the broker is unreachable" in caplog.text
    DatasetExport.objects.filter(pk=lost.pk).update(
        created_at=timezone.now() - timedelta(minutes=11)
    )
    recent = services.create_export(user=None, filters={}, seed=1)

    # The beat's recovery job, run here; the job it sends runs in process (eager).
    jobs.recover_stale_exports_job()

    lost.refresh_from_db()
    assert (lost.status, lost.version) == (ExportStatus.DONE, 1)
    assert (tmp_path / "exports" / "v1" / "trees.jsonl.gz").is_file()
    recent.refresh_from_db()
    assert recent.status == ExportStatus.PENDING  # waiting for less long: left alone
    # Sent again while it runs elsewhere or once done, the job does nothing more.
    assert jobs.run_export_job(str(lost.pk)) == 1
    assert DatasetExport.objects.filter(status=ExportStatus.DONE).count() == 1


# --- The database connection dropped during a submission ---------------------------------


def backend_waiting_for_a_lock(cursor) -> int | None:  # type: ignore[no-untyped-def]
    """The pid of the server's database session that waits for the lock the test holds."""
    cursor.execute(
        "SELECT pid FROM pg_stat_activity WHERE datname = current_database()"
        " AND pid <> pg_backend_pid() AND wait_event_type = 'Lock'"
    )
    row = cursor.fetchone()
    return None if row is None else int(row[0])


def lock_the_task_and_kill_the_submission(task_id: str, submit) -> httpx.Response:  # type: ignore[no-untyped-def]
    """Hold the task's row lock, send the submission, kill the server's session while it
    waits for the lock (mid-transaction), then release the lock; the server's answer."""
    from backend.tasks.models import Task

    with ThreadPoolExecutor(max_workers=1) as pool, transaction.atomic():
        Task.objects.select_for_update().get(pk=task_id)
        answer = pool.submit(submit)
        with connection.cursor() as cursor:
            pid = wait_until(
                lambda: backend_waiting_for_a_lock(cursor),
                what="the submission to wait for the task's lock",
            )
            cursor.execute("SELECT pg_terminate_backend(%s)", [pid])
        return answer.result(timeout=30)


@pytest.mark.django_db(transaction=True)
def test_a_submission_whose_connection_is_killed_gets_a_503_and_its_retry_is_stored_once(
    asgi_server, volunteer
):
    from backend.trees.models import Message

    alice = volunteer()
    http = httpx.Client(
        base_url=asgi_server.url, headers={"Authorization": f"Bearer {alice.key}"}, timeout=30
    )
    task = http.post("/api/v1/tasks/", json={"type": "initial_prompt", "lang": "en"}).json()
    body = {"key": "retry-me-1", "text": "What makes a sourdough starter rise?"}

    def submit() -> httpx.Response:
        return http.post(f"/api/v1/tasks/{task['id']}/submit/", json=body)

    failed = lock_the_task_and_kill_the_submission(task["id"], submit)

    assert failed.status_code == 503, failed.text
    assert failed.headers["content-type"] == "application/json"
    assert failed.json()["error"]["code"] == "database_unavailable"
    assert int(failed.headers["Retry-After"]) >= 1
    assert not Message.objects.filter(text=body["text"]).exists()
    # The pool dropped the dead connection: the next requests work.
    assert http.get(f"/api/v1/tasks/{task['id']}/").status_code == 200

    retried = submit()
    assert retried.status_code == 201, retried.text
    again = submit()  # the answer to the retry got lost too: the same result, no new row
    assert again.status_code == 200
    assert again.json()["replayed"] is True
    assert again.json()["result_id"] == retried.json()["result_id"]
    assert Message.objects.filter(text=body["text"]).count() == 1
    http.close()


@pytest.mark.django_db(transaction=True)
def test_a_submission_that_committed_but_whose_answer_was_lost_is_not_stored_twice(
    asgi_server, volunteer
):
    from backend.tasks.models import Task, TaskStatus
    from backend.trees.models import Message

    alice = volunteer()
    http = httpx.Client(
        base_url=asgi_server.url, headers={"Authorization": f"Bearer {alice.key}"}, timeout=30
    )
    task = http.post("/api/v1/tasks/", json={"type": "initial_prompt", "lang": "en"}).json()
    body = {"key": "lost-answer-1", "text": "How do tides follow the moon?"}

    # The client sends the submission, the server commits it, and the connection dies
    # before the client has read the answer.
    payload = json.dumps(body).encode()
    host, port = asgi_server.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as raw:
        raw.sendall(
            f"POST /api/v1/tasks/{task['id']}/submit/ HTTP/1.1\r\nHost: {host}\r\n"
            f"Authorization: Bearer {alice.key}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(payload)}\r\nConnection: close\r\n\r\n".encode()
            + payload
        )
        wait_until(
            lambda: Task.objects.get(pk=task["id"]).status == TaskStatus.SUBMITTED,
            what="the server to commit the submission",
        )

    retried = http.post(f"/api/v1/tasks/{task['id']}/submit/", json=body)

    assert retried.status_code == 200, retried.text
    assert retried.json()["replayed"] is True
    stored = Message.objects.get(text=body["text"])
    assert retried.json()["result_id"] == str(stored.id)
    http.close()


# --- A Celery worker killed in the middle of an export -----------------------------------


class ExportWorker:
    """A real `celery -A backend worker` (prefork, one pool process) in its own process
    group, on this test's broker and database, writing exports under `export_dir`."""

    def __init__(self, broker: str, export_dir: Path, hold: Path, log: Path) -> None:
        self.env = {
            **os.environ,
            "REDIS_URL": broker,
            "CELERY_BROKER_URL": broker,
            "CELERY_TASK_ALWAYS_EAGER": "0",
            "DATABASE_URL": database_url_for_worker(),
            "CHORUS_EXPORT_DIR": str(export_dir),
            "CHORUS_TEST_EXPORT_HOLD_FILE": str(hold),
            # A message whose worker vanished is handed out again after a second, not an
            # hour (Redis; RabbitMQ redelivers when the connection drops).
            "CELERY_VISIBILITY_TIMEOUT": "1",
        }
        self.env.pop("DATABASE_TEST_NAME", None)
        self.log = log
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        command = [
            *(sys.executable, "-m", "celery", "-A", "backend", "worker", "-l", "info"),
            *("--pool=prefork", "--concurrency=1", "--without-gossip", "--without-mingle"),
            *("--without-heartbeat", "-n", f"faults-{uuid.uuid4().hex[:8]}@%h"),
        ]
        with self.log.open("a") as out:
            self.process = subprocess.Popen(  # noqa: S603  # our interpreter, fixed arguments
                command,
                cwd=PROJECT_ROOT,
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def pool_process(self) -> int | None:
        """The pid of the pool process running jobs (the worker's child), once there is one."""
        assert self.process is not None
        path = Path(f"/proc/{self.process.pid}/task/{self.process.pid}/children")
        children = path.read_text().split() if path.exists() else []
        return int(children[0]) if children else None

    def kill(self) -> None:
        """SIGKILL the whole worker, main process and pool, as a machine's OOM killer or a
        lost host would: no shutdown, no acknowledgement."""
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)
        self.process = None

    def output(self) -> str:
        return self.log.read_text(errors="replace")


def published_state(export_dir: Path) -> tuple[list[str], list[int]]:
    """The version folders on disk and the done versions in the database, after checking
    that every version a reader can see is complete."""
    from backend.exports.models import DatasetExport, ExportStatus
    from backend.exports.services import MANIFEST_FILE

    folders = sorted(p.name for p in export_dir.glob("v*")) if export_dir.exists() else []
    versions = sorted(
        DatasetExport.objects.filter(status=ExportStatus.DONE).values_list("version", flat=True)
    )
    for name in folders:
        manifest = json.loads((export_dir / name / MANIFEST_FILE).read_text())
        for file in manifest["files"]:
            assert (export_dir / name / file).exists() or any(
                (export_dir / name).glob(f"{file}*")
            ), f"{name} lacks {file}"
    for version in versions:  # a version in the list has its folder
        assert f"v{version}" in folders
    return folders, [int(v) for v in versions if v is not None]


@pytest.mark.django_db(transaction=True)
def test_a_second_delivery_leaves_a_live_run_alone_and_restarts_a_dead_one(settings, tmp_path):
    import psycopg

    from backend.exports import services
    from backend.exports.models import DatasetExport, ExportStatus
    from tests.backend.test_exports import conversation

    settings.CHORUS_EXPORT_DIR = str(tmp_path)
    conversation()
    export = services.create_export(user=None, filters={"validation": 0})
    DatasetExport.objects.filter(pk=export.pk).update(status=ExportStatus.RUNNING)
    leftover = tmp_path / f".tmp-{export.id.hex}"
    leftover.mkdir()
    (leftover / "half-written").write_text("x")

    # A live run elsewhere holds the export's run lock: the delivery does nothing.
    key = int.from_bytes(export.id.bytes[:4], "big", signed=True)
    with psycopg.connect(**connection.get_connection_params(), autocommit=True) as other:
        other.execute("SELECT pg_advisory_lock(%s, %s)", [services.RUN_LOCK_CLASS, key])
        untouched = services.run_export(export_id=export.id)
        assert untouched.status == ExportStatus.RUNNING
        assert (leftover / "half-written").exists()

    # That run's worker died (its session, and so the lock, is gone): the delivery
    # starts the export again from nothing and publishes it.
    done = services.run_export(export_id=export.id)
    assert (done.status, done.version) == (ExportStatus.DONE, 1)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["v1"]


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_an_export_whose_worker_is_killed_runs_again_and_publishes_one_complete_version(
    request, tmp_path
):
    from backend.exports import services
    from backend.exports.models import DatasetExport, ExportStatus
    from tests.backend.test_exports import conversation

    broker = request.getfixturevalue("broker_url")
    request.getfixturevalue("producer")
    export_dir, hold = tmp_path / "exports", tmp_path / "hold"
    reached = Path(f"{hold}.reached")
    for _ in range(3):
        conversation()
    hold.touch()  # every run waits after its first tree until the file is gone
    worker = ExportWorker(broker, export_dir, hold, tmp_path / "worker.log")
    request.addfinalizer(worker.kill)
    worker.start()

    export = services.start_export(user=None, filters={"validation": 0})

    def mid_way() -> bool:
        assert published_state(export_dir) == ([], [])  # nothing visible half-way
        return reached.exists()

    wait_until(mid_way, timeout=60, what=f"the export to start\n{worker.output()}")
    assert DatasetExport.objects.get(pk=export.pk).status == ExportStatus.RUNNING
    assert len(list(export_dir.glob(".tmp-*"))) == 1

    # 1. The pool process dies (the OOM killer's usual victim); the worker lives on.
    reached.unlink()
    child = worker.pool_process()
    assert child is not None
    os.kill(child, signal.SIGKILL)
    # The job is handed back (reject_on_worker_lost) and a new pool process starts it again.
    wait_until(mid_way, timeout=60, what=f"the export to run again\n{worker.output()}")
    assert worker.pool_process() not in (None, child)
    assert DatasetExport.objects.get(pk=export.pk).status == ExportStatus.RUNNING

    # 2. The whole worker dies; the run is left "running" with its temporary folder.
    worker.kill()
    assert DatasetExport.objects.get(pk=export.pk).status == ExportStatus.RUNNING
    assert published_state(export_dir) == ([], [])
    hold.unlink()

    # A new worker gets the message again, finds the run dead and does it from the start.
    worker.start()

    def finished() -> bool:
        published_state(export_dir)  # complete versions only, at every poll
        return DatasetExport.objects.get(pk=export.pk).status != ExportStatus.RUNNING

    wait_until(finished, timeout=60, what=f"the export to finish\n{worker.output()}")
    export.refresh_from_db()
    assert (export.status, export.version) == (ExportStatus.DONE, 1), export.error
    assert published_state(export_dir) == (["v1"], [1])
    assert list(export_dir.glob(".tmp-*")) == []  # the dead runs' folders are gone
    assert DatasetExport.objects.count() == 1


# --- Redis stopped: the web app degrades and recovers -------------------------------------


class WebProcess:
    """`uvicorn backend.asgi:application` in a process of its own, on the test database
    and a private Redis (cache, channel layer and Celery broker; no worker runs)."""

    def __init__(self, redis_url: str, log: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = {
            **os.environ,
            "DATABASE_URL": database_url_for_worker(),
            "DATABASE_POOL_MAX": "4",
            "REDIS_URL": redis_url,
            "CELERY_BROKER_URL": redis_url,
            "CELERY_TASK_ALWAYS_EAGER": "0",
            "CHORUS_REDIS_RETRY_SECONDS": "0.5",
            "LOG_LEVEL": "WARNING",
        }
        env.pop("DATABASE_TEST_NAME", None)
        env.pop("CELERY_BROKER_TRANSPORT_OPTIONS", None)
        command = [
            *(sys.executable, "-m", "uvicorn", "backend.asgi:application"),
            *("--host", "127.0.0.1", "--port", str(self.port), "--lifespan", "off"),
        ]
        self.log = log
        with log.open("a") as out:
            self.process = subprocess.Popen(  # noqa: S603  # our interpreter, fixed arguments
                command, cwd=PROJECT_ROOT, env=env, stdout=out, stderr=subprocess.STDOUT
            )
        wait_until(self.answers, timeout=60, what=f"the web process to start\n{self.output()}")

    def answers(self) -> bool:
        assert self.process.poll() is None, self.output()
        try:
            httpx.get(f"{self.url}/api/v1/", timeout=2)
        except httpx.TransportError:
            return False
        return True

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)

    def output(self) -> str:
        return self.log.read_text(errors="replace")


class LiveListener:
    """A channel in the private Redis's channel layer, in the group of the English task
    counts: what a dashboard's WebSocket would receive."""

    def __init__(self, redis_url: str) -> None:
        from channels_redis.core import RedisChannelLayer

        self.layer = RedisChannelLayer(hosts=[redis_url])
        self.channel = ""

    def subscribe(self) -> None:
        async def join() -> str:
            channel = await self.layer.new_channel()
            await self.layer.group_add("tasks.en", channel)
            return channel

        self.channel = _run_apart(join())

    def received(self, timeout: float) -> dict | None:
        async def receive() -> dict | None:
            try:
                return await asyncio.wait_for(self.layer.receive(self.channel), timeout)
            except TimeoutError:
                return None

        return _run_apart(receive())


def _run_apart(coroutine: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine to its end on a thread of its own: a session's Playwright browser
    (tests/frontend) keeps an event loop running on the test's thread, where asyncio.run
    would refuse to start."""
    with ThreadPoolExecutor(max_workers=1) as thread:
        return thread.submit(asyncio.run, coroutine).result()


def task_loop(http: httpx.Client, n: int) -> list[int]:
    """Ask for a first-prompt task and submit it; the statuses of both requests."""
    asked = http.post("/api/v1/tasks/", json={"type": "initial_prompt", "lang": "en"})
    if asked.status_code != 201:
        return [asked.status_code]
    done = http.post(
        f"/api/v1/tasks/{asked.json()['id']}/submit/",
        json={"key": f"loop-{n}", "text": f"Question number {n} about the weather in spring?"},
    )
    return [asked.status_code, done.status_code]


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_with_redis_stopped_tasks_keep_flowing_and_everything_recovers_when_it_returns(
    private_redis, volunteer, tmp_path
):
    import redis

    from backend.trees.models import Message

    direct = redis.Redis.from_url(private_redis.url)
    web = WebProcess(private_redis.url, tmp_path / "web.log")
    alice = volunteer()
    http = httpx.Client(
        base_url=web.url, headers={"Authorization": f"Bearer {alice.key}"}, timeout=30
    )
    listener = LiveListener(private_redis.url)
    try:
        # Redis up: the rate limits count in Redis, live updates arrive, jobs are queued.
        listener.subscribe()
        assert task_loop(http, 0) == [201, 201]
        assert listener.received(timeout=10) == {"type": "counts.changed"}
        assert direct.keys("*ratelimit:*")

        # Redis dies: handing out and submitting go on, without errors or stalls.
        private_redis.stop()
        started = time.monotonic()
        for n in range(1, 6):
            assert task_loop(http, n) == [201, 201], web.output()
        assert time.monotonic() - started < 15, "requests stalled on the dead Redis"
        assert Message.objects.filter(text__startswith="Question number").count() == 6

        # Redis returns (empty, on the same port): the same web process uses it again.
        private_redis.start()
        listener.subscribe()
        n = 6

        def recovered() -> bool:
            nonlocal n
            assert task_loop(http, n) == [201, 201], web.output()
            n += 1
            return bool(direct.keys("*ratelimit:*")) and listener.received(timeout=1) is not None

        wait_until(recovered, timeout=20, what="the web process to use Redis again")
        log = web.output()
        assert log.count("Redis cache unreachable") == 1, log  # once per outage and process
        assert log.count("Redis cache reachable again") == 1, log
        assert log.count("live updates dropped") == 1, log
        assert " 500 " not in log
    finally:
        http.close()
        web.stop()
        direct.close()


# --- The inference server down or slow ----------------------------------------------------
# tests/backend/test_assistant_chat.py, test_assistant_candidates.py and
# tests/frontend/test_chat_pages.py / test_chat_browser.py cover the chat's socket, the chat
# page with the server down and the candidate job's back-off with the server down; these
# add the slow server and what must not be affected.


@pytest.fixture(params=["inference_down", "inference_stalled"])
def broken_inference(request, settings) -> str:  # type: ignore[no-untyped-def]
    request.getfixturevalue(request.param)
    settings.INFERENCE_MODEL = ""  # so the candidate job asks the server for its model
    return str(request.param)


@pytest.mark.slow  # about 5 s on a busy machine: the first page rendered in the process
@pytest.mark.django_db
def test_the_chat_page_says_when_the_assistant_is_too_slow(inference_stalled):
    from django.test import Client
    from django.urls import reverse

    from backend.assistant import services
    from backend.assistant.models import ChatMessage
    from tests.frontend.conftest import make_volunteer

    owner = make_volunteer()
    client = Client()
    client.force_login(owner)
    chat = services.create_chat(owner=owner)

    started = time.monotonic()
    page = client.post(reverse("chat", args=[chat.id]), {"text": "Anyone there?"}, follow=True)

    assert "The assistant is taking too long to answer" in page.content.decode()
    assert ChatMessage.objects.get(chat=chat).text == "Anyone there?"
    assert time.monotonic() - started < 20  # INFERENCE_TIMEOUT (0.5 s here), not forever


@pytest.mark.django_db
def test_while_the_inference_server_is_broken_the_job_backs_off_and_volunteers_work_on(
    broken_inference, volunteer
):
    from django.test import Client
    from django.urls import reverse

    from backend.assistant.jobs import write_candidate_replies_job
    from tests.frontend.conftest import make_volunteer

    started = time.monotonic()
    # The candidate job fails once, then does not even try until its pause is over.
    first = write_candidate_replies_job.delay().get()
    assert first["status"] == "unavailable", first
    assert write_candidate_replies_job.delay().get()["status"] == "backing_off"

    # The API's task loop.
    alice = volunteer()
    task = alice.request_task("initial_prompt")
    assert task.status_code == 201, task.content
    done = alice.submit(task.json()["id"], key="k1", text="Why is the sky blue at noon?")
    assert done.status_code == 201, done.content

    # The pages of the task loop and the chat list.
    person = make_volunteer(username="pages")
    client = Client()
    client.force_login(person)
    assert client.get(reverse("dashboard")).status_code == 200
    opened = client.post(reverse("start_task"), {"type": "initial_prompt", "lang": "en"})
    assert opened.status_code == 302
    assert client.get(opened["Location"]).status_code == 200
    assert client.get(reverse("chats")).status_code == 200
    assert time.monotonic() - started < 20  # nothing hung on the broken server
