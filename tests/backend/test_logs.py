"""JSON logs (LOG_FORMAT=json): the lines of real requests, errors, a uvicorn server and a
Celery worker, each parsed as JSON."""

from __future__ import annotations

import io
import json
import logging
import os
import selectors
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from datetime import datetime, timedelta

import pytest
from django.test import Client

from backend.core.logs import ContextFilter, JsonFormatter
from tests.conftest import PROJECT_ROOT, import_settings

pytestmark = pytest.mark.django_db


class JsonLog:
    """What the JSON handler of settings.LOGGING (formatter and context filter) writes at
    INFO while it is open; `lines` parses each line (a line that is not JSON fails)."""

    def __enter__(self) -> JsonLog:
        self.stream = io.StringIO()
        self.handler = logging.StreamHandler(self.stream)
        self.handler.setFormatter(JsonFormatter())
        self.handler.addFilter(ContextFilter())
        root = logging.getLogger()
        self.level = root.level
        root.addHandler(self.handler)
        root.setLevel(logging.INFO)
        return self

    def __exit__(self, *exc: object) -> None:
        root = logging.getLogger()
        root.removeHandler(self.handler)
        root.setLevel(self.level)

    @property
    def lines(self) -> list[dict]:
        return [json.loads(line) for line in self.stream.getvalue().splitlines()]


def test_each_request_writes_one_access_line_with_its_fields(volunteer) -> None:  # type: ignore[no-untyped-def]
    bob = volunteer()
    with JsonLog() as log:
        response = bob.request_task("initial_prompt")
        Client().get("/guidelines/?q=private")
    assert response.status_code == 201

    access = [line for line in log.lines if line["logger"] == "chorus.access"]
    assert len(access) == 2
    task, page = access
    assert task["level"] == "INFO"
    assert task["method"] == "POST"
    assert task["path"] == "/api/v1/tasks/"
    assert task["route"] == "/api/v1/tasks/"
    assert task["status"] == 201
    assert task["user_id"] == str(bob.user.pk)
    assert isinstance(task["duration_ms"], float)
    assert task["duration_ms"] > 0
    assert datetime.fromisoformat(task["timestamp"]).utcoffset() == timedelta(0)
    assert task["message"].startswith("POST /api/v1/tasks/ 201 ")
    # An anonymous request has no user; the query string (search text) stays out.
    assert page["path"] == "/guidelines/"
    assert page["status"] == 200
    assert "user_id" not in page
    assert "private" not in json.dumps(page)


def test_a_server_error_is_logged_with_its_request_and_traceback(volunteer, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from backend.tasks import api

    def broken(**kwargs: object) -> None:
        raise RuntimeError("the disk is on fire")

    monkeypatch.setattr(api.services, "request_task", broken)
    bob = volunteer()
    bob.client.raise_request_exception = False
    with JsonLog() as log:
        assert bob.request_task("initial_prompt").status_code == 500

    error = next(line for line in log.lines if line["logger"] == "django.request")
    assert error["level"] == "ERROR"
    assert error["method"] == "POST"
    assert error["path"] == "/api/v1/tasks/"
    assert error["user_id"] == str(bob.user.pk)
    assert "Traceback (most recent call last)" in error["exc_info"]
    assert "RuntimeError: the disk is on fire" in error["exc_info"]
    access = next(line for line in log.lines if line["logger"] == "chorus.access")
    assert access["status"] == 500


def test_lines_outside_a_request_carry_no_request_fields() -> None:
    with JsonLog() as log:
        logging.getLogger("chorus.test").warning("disk %s%% full", 93, extra={"disk": "/srv"})
    [line] = log.lines
    assert line["message"] == "disk 93% full"
    assert line["disk"] == "/srv"
    assert line["level"] == "WARNING"
    assert line["logger"] == "chorus.test"
    assert not {"method", "path", "user_id", "job"} & set(line)


def test_a_job_s_lines_carry_its_name_and_id() -> None:
    from celery import shared_task

    @shared_task(name="chorus.test.logging_job")
    def logging_job() -> None:
        logging.getLogger("chorus.test").warning("inside the job")

    with JsonLog() as log:
        result = logging_job.delay()  # eager in the tests
    [line] = [line for line in log.lines if line["message"] == "inside the job"]
    assert line["job"] == "chorus.test.logging_job"
    assert line["job_id"] == result.id


def test_an_unknown_log_format_stops_the_settings() -> None:
    done = import_settings(LOG_FORMAT="xml")
    assert done.returncode != 0
    assert "LOG_FORMAT must be json or text, not 'xml'" in done.stderr


# --- Real processes ----------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def json_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "PROMETHEUS_MULTIPROC_DIR"}
    if not env.get("DATABASE_URL"):
        # This run's embedded server, as production has its PostgreSQL: starting one would
        # print platformdirs' warning before logging is configured.
        from backend.core.embedded_db import embedded_database_url

        env["DATABASE_URL"] = embedded_database_url()
    env.update(LOG_FORMAT="json", LOG_LEVEL="INFO", PYTHONWARNINGS="default", **extra)
    return env


def read_lines_until(process: subprocess.Popen, done: str, seconds: float) -> list[str]:
    """stderr lines of `process` until one contains `done` (or the time is up).

    Read from the pipe's descriptor, not with readline(): that one buffers whatever the
    pipe held, so a line written together with the one before it (the worker's "ready."
    right after "Connected") sat in Python's buffer while select() waited on an empty
    pipe, and communicate() in stop() reads the descriptor, past that buffer. A line not
    yet complete is kept on the process for the next call."""
    assert process.stderr is not None
    descriptor = process.stderr.fileno()
    rest: bytes = getattr(process, "stderr_rest", b"")
    lines: list[str] = []
    reader = selectors.DefaultSelector()
    reader.register(descriptor, selectors.EVENT_READ)
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and not any(done in line for line in lines):
        if reader.select(timeout=0.5):
            chunk = os.read(descriptor, 1 << 16)
            if not chunk:
                break
            *complete, rest = (rest + chunk).split(b"\n")
            lines += [line.decode(errors="replace") + "\n" for line in complete]
    reader.close()
    process.stderr_rest = rest  # type: ignore[attr-defined]
    return lines


def stop(process: subprocess.Popen) -> list[str]:
    process.send_signal(signal.SIGINT)
    try:
        _, rest = process.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
        _, rest = process.communicate()
    unread: bytes = getattr(process, "stderr_rest", b"")  # a line read_lines_until began
    return (unread.decode(errors="replace") + rest).splitlines(keepends=True)


@pytest.mark.slow
def test_uvicorn_writes_nothing_but_json_lines() -> None:
    """A real uvicorn serving Chorus: its own lines, Django's warnings and the access line
    of a request are all JSON objects, and uvicorn's plain access log is gone."""
    port = free_port()
    server = subprocess.Popen(  # noqa: S603
        [sys.executable, "-m", "uvicorn", "backend.asgi:application", "--port", str(port)],
        cwd=PROJECT_ROOT,
        env=json_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        lines = read_lines_until(server, "Uvicorn running on", 90)
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/guidelines/", timeout=30) as page:
            assert page.status == 200
        lines += read_lines_until(server, "chorus.access", 10)
    finally:
        lines += stop(server)
    records = [json.loads(line) for line in lines if line.strip()]
    assert any(
        r["logger"] == "uvicorn.error" and "Uvicorn running on" in r["message"] for r in records
    )
    access = [r for r in records if r["logger"] == "chorus.access"]
    assert [(r["path"], r["status"]) for r in access] == [("/guidelines/", 200)]
    assert not [r for r in records if r["logger"] == "uvicorn.access"]
    assert all({"timestamp", "level", "logger", "message"} <= set(r) for r in records)
    assert not [r for r in records if "color_message" in r]  # uvicorn's terminal colours


@pytest.mark.slow
def test_a_celery_worker_writes_json_lines() -> None:
    worker = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "backend",
            "worker",
            "--pool",
            "solo",
            "--loglevel",
            "INFO",
            "--without-heartbeat",
            "--without-mingle",
            "--without-gossip",
        ],
        cwd=PROJECT_ROOT,
        # The in-memory broker: the worker starts and waits, and takes no one's jobs.
        env=json_env(CELERY_BROKER_URL="memory://localhost/", CELERY_TASK_ALWAYS_EAGER="0"),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        lines = read_lines_until(worker, " ready.", 90)
    finally:
        lines += stop(worker)
    records = [json.loads(line) for line in lines if line.strip()]
    ready = [r for r in records if r["message"].endswith(" ready.")]
    assert ready, records
    assert ready[0]["level"] == "INFO"
    assert ready[0]["logger"].startswith("celery")
