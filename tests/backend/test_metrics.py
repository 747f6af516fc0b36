"""/metrics: who may read it, and that its figures follow what really happened (requests
and task loops through the API, jobs, WebSockets, the Redis broker's queues, the exports
table, values written by several processes)."""

from __future__ import annotations

import os
import random
import subprocess
import sys
import textwrap
import uuid
from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone
from prometheus_client.parser import text_string_to_metric_families

from backend.core import metrics
from backend.exports.models import DatasetExport, ExportStatus
from tests.conftest import PROJECT_ROOT, import_settings

pytestmark = pytest.mark.django_db

TOKEN = "scrape-token-for-tests"


@pytest.fixture
def scraper(settings) -> Client:  # type: ignore[no-untyped-def]
    settings.CHORUS_METRICS_TOKEN = TOKEN
    settings.CHORUS_METRICS_NETWORKS = []
    settings.PROMETHEUS_MULTIPROC_DIR = ""
    return Client(HTTP_AUTHORIZATION=f"Bearer {TOKEN}")


def scrape(client: Client) -> dict[tuple[str, frozenset], float]:
    """Every sample of one scrape: {(name, labels): value}."""
    response = client.get("/metrics")
    assert response.status_code == 200, response.content[:300]
    assert response["Content-Type"].startswith("text/plain")
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(response.content.decode())
        for sample in family.samples
    }


def value(samples: dict, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


# --- Who may read it ---------------------------------------------------------------------------


def test_metrics_answer_the_bearer_token_only(settings) -> None:  # type: ignore[no-untyped-def]
    settings.CHORUS_METRICS_TOKEN = TOKEN
    settings.CHORUS_METRICS_NETWORKS = []
    assert Client().get("/metrics").status_code == 404
    wrong = Client(HTTP_AUTHORIZATION="Bearer not-the-token").get("/metrics")
    assert wrong.status_code == 403
    assert wrong.json()["error"]["code"] == "permission_denied"
    assert Client(HTTP_AUTHORIZATION=f"Bearer {TOKEN}").get("/metrics").status_code == 200


def test_metrics_answer_clients_of_the_configured_networks(settings) -> None:  # type: ignore[no-untyped-def]
    settings.CHORUS_METRICS_TOKEN = ""
    settings.CHORUS_METRICS_NETWORKS = ["10.1.0.0/16", "fd00::/8"]
    assert Client(REMOTE_ADDR="10.1.2.3").get("/metrics").status_code == 200
    assert Client(REMOTE_ADDR="fd00::5").get("/metrics").status_code == 200
    assert Client(REMOTE_ADDR="10.2.0.1").get("/metrics").status_code == 404
    assert Client(REMOTE_ADDR="203.0.113.9").get("/metrics").status_code == 404
    # A bearer header opens nothing when no token is configured.
    assert Client(HTTP_AUTHORIZATION="Bearer ").get("/metrics").status_code == 404


def test_metrics_are_closed_to_everyone_when_nothing_opens_them(settings) -> None:  # type: ignore[no-untyped-def]
    settings.CHORUS_METRICS_TOKEN = ""
    settings.CHORUS_METRICS_NETWORKS = []
    assert Client().get("/metrics").status_code == 404
    assert Client(HTTP_AUTHORIZATION="Bearer ").get("/metrics").status_code == 404


def test_metrics_are_not_in_the_api_schema() -> None:
    schema = Client().get("/api/schema/?format=json").json()
    assert not [path for path in schema["paths"] if "metrics" in path]


def test_a_bad_metrics_network_stops_the_settings() -> None:
    done = import_settings(CHORUS_METRICS_NETWORKS="10.0.0.0/8,not-a-network")
    assert done.returncode != 0
    assert "CHORUS_METRICS_NETWORKS: 'not-a-network' is not a network" in done.stderr


# --- Requests and task loops -------------------------------------------------------------


def test_requests_and_task_loops_move_the_counters(scraper, small_trees, volunteer) -> None:  # type: ignore[no-untyped-def]
    bob = volunteer()
    before = scrape(scraper)
    handed = bob.request_task("initial_prompt")
    assert handed.status_code == 201
    task = handed.json()
    submitted = bob.submit(task["id"], key="k-1", text="Why is the sky blue?")
    assert submitted.status_code == 201, submitted.content
    assert bob.submit(task["id"], key="k-1", text="Why is the sky blue?").status_code == 200
    assert bob.submit(task["id"], key="k-2", text="Again?").status_code == 409
    assert bob.request_task("rank_assistant_replies").status_code == 404  # none open
    after = scrape(scraper)

    def moved(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    tasks = "chorus_task_requests_total"
    assert moved(tasks, type="initial_prompt", outcome="handed_out") == 1
    assert moved(tasks, type="rank_assistant_replies", outcome="no_task_available") == 1
    submissions = "chorus_task_submissions_total"
    assert moved(submissions, type="initial_prompt", outcome="submitted") == 1
    assert moved(submissions, type="initial_prompt", outcome="replayed") == 1
    assert moved(submissions, type="unknown", outcome="task_already_done") == 1

    # HTTP: by route pattern and status class, never by the task's own path.
    submit_route = "/api/v1/tasks/<uuid:task_id>/submit/"
    http = "chorus_http_requests_total"
    assert moved(http, method="POST", route=submit_route, status="2xx") == 2
    assert moved(http, method="POST", route=submit_route, status="4xx") == 1
    assert moved(http, method="POST", route="/api/v1/tasks/", status="2xx") == 1
    assert moved(http, method="POST", route="/api/v1/tasks/", status="4xx") == 1  # the 404
    assert not [key for key in after if task["id"] in str(key)]
    latency = "chorus_http_request_duration_seconds"
    assert moved(f"{latency}_count", method="POST", route=submit_route, status="2xx") == 2
    assert moved(f"{latency}_sum", method="POST", route=submit_route, status="2xx") > 0


def test_unknown_paths_and_static_files_share_one_route_each(scraper) -> None:  # type: ignore[no-untyped-def]
    before = scrape(scraper)
    for n in range(3):
        Client().get(f"/no/such/page/{n}/")
    Client().get("/static/chorus/no-such-file.css")
    after = scrape(scraper)
    http = "chorus_http_requests_total"
    moved = value(after, http, method="GET", route="unmatched", status="4xx") - value(
        before, http, method="GET", route="unmatched", status="4xx"
    )
    assert moved == 3
    assert not [key for key in after if "/no/such/page" in str(key)]


def test_a_job_run_counts_with_its_state(scraper) -> None:  # type: ignore[no-untyped-def]
    from backend.tasks.jobs import expire_tasks_job

    before = scrape(scraper)
    expire_tasks_job.delay()  # eager in the tests: run here, with Celery's signals
    after = scrape(scraper)
    job = "backend.tasks.jobs.expire_tasks_job"
    counted = "chorus_celery_jobs_total"
    assert (
        value(after, counted, job=job, state="success")
        - value(before, counted, job=job, state="success")
        == 1
    )
    seconds = "chorus_celery_job_duration_seconds_count"
    assert value(after, seconds, job=job) - value(before, seconds, job=job) == 1


@pytest.mark.django_db(transaction=True)
def test_open_websockets_are_counted_until_they_close(scraper) -> None:  # type: ignore[no-untyped-def]
    from channels.testing import WebsocketCommunicator

    from backend.accounts.services import create_user
    from backend.asgi import application
    from tests.conftest import run_async

    client = Client()
    client.force_login(create_user(username="watcher", languages=["en"]))
    cookie = f"sessionid={client.cookies['sessionid'].value}"
    gauge = metrics.WEBSOCKETS.labels("/ws/tasks/")
    start = gauge._value.get()

    async def scenario() -> tuple[float, float]:
        socket = WebsocketCommunicator(
            application,
            "/ws/tasks/",
            headers=[(b"cookie", cookie.encode()), (b"origin", b"http://localhost")],
        )
        connected, _ = await socket.connect()
        assert connected
        while_open = gauge._value.get()
        await socket.disconnect()
        return while_open, gauge._value.get()

    while_open, after_close = run_async(scenario)
    assert (while_open - start, after_close - start) == (1, 0)
    assert value(scrape(scraper), "chorus_websocket_connections", route="/ws/tasks/") == start


# --- Read at scrape time -------------------------------------------------------------------


def test_queue_lengths_are_read_from_the_redis_broker(
    scraper, settings, redis_url, monkeypatch
) -> None:  # type: ignore[no-untyped-def]
    import redis
    from kombu.transport.redis import Channel

    # A queue of this test's own: a worker of a parallel test run never takes from it.
    queue = f"test-metrics-{uuid.uuid4().hex[:8]}"
    monkeypatch.setattr(metrics, "celery_queues", lambda: ["celery", queue])
    settings.CELERY_BROKER_URL = redis_url
    client = redis.Redis.from_url(redis_url)
    try:
        client.rpush(queue, "job-1", "job-2", "job-3")
        client.rpush(f"{queue}{Channel.sep}6", "urgent-job")  # a message with a priority
        samples = scrape(scraper)
    finally:
        client.delete(queue, f"{queue}{Channel.sep}6")
        client.close()
    assert value(samples, "chorus_celery_queue_length", queue=queue) == 4
    assert ("chorus_celery_queue_length", frozenset({("queue", "celery")})) in samples


def test_queue_lengths_are_absent_without_a_redis_broker(scraper, settings) -> None:  # type: ignore[no-untyped-def]
    settings.CELERY_BROKER_URL = "memory://localhost/"
    samples = scrape(scraper)
    assert not [key for key in samples if key[0] == "chorus_celery_queue_length"]
    assert ("chorus_exports", frozenset({("status", "done")})) in samples


def test_a_broker_that_does_not_answer_leaves_the_rest_of_the_scrape(scraper, settings) -> None:  # type: ignore[no-untyped-def]
    from tests.inference import closed_port_url

    settings.CELERY_BROKER_URL = closed_port_url().replace("http://", "redis://")
    samples = scrape(scraper)
    assert not [key for key in samples if key[0] == "chorus_celery_queue_length"]
    assert ("chorus_exports", frozenset({("status", "pending")})) in samples


def test_the_celery_queues_are_the_ones_celery_sends_to() -> None:
    from backend.celery import app

    assert app.conf.task_default_queue in metrics.celery_queues()


def test_exports_are_counted_by_status_with_their_run_times(scraper) -> None:  # type: ignore[no-untyped-def]
    now = timezone.now()

    def export(status: str, minutes: float | None, **fields: object) -> None:
        started = None if minutes is None else now - timedelta(minutes=minutes)
        finished = None if minutes is None or status == ExportStatus.RUNNING else now
        DatasetExport.objects.create(
            status=status, seed=1, started_at=started, finished_at=finished, **fields
        )

    export(ExportStatus.DONE, 0.5, version=1)  # 30 s
    export(ExportStatus.DONE, 20, version=2)  # 1200 s
    export(ExportStatus.FAILED, 3)  # 180 s
    export(ExportStatus.RUNNING, 1)
    export(ExportStatus.PENDING, None)
    export(ExportStatus.PENDING, None)
    samples = scrape(scraper)

    counts = {s: value(samples, "chorus_exports", status=s) for s in ExportStatus.values}
    assert counts == {"pending": 2, "running": 1, "done": 2, "failed": 1}
    name = "chorus_export_duration_seconds"
    assert value(samples, f"{name}_count", status="done") == 2
    assert value(samples, f"{name}_sum", status="done") == pytest.approx(1230, abs=1)
    assert value(samples, f"{name}_bucket", status="done", le="30.0") == 1
    assert value(samples, f"{name}_bucket", status="done", le="900.0") == 1
    assert value(samples, f"{name}_bucket", status="done", le="1800.0") == 2
    assert value(samples, f"{name}_bucket", status="done", le="+Inf") == 2
    assert value(samples, f"{name}_bucket", status="failed", le="60.0") == 0
    assert value(samples, f"{name}_bucket", status="failed", le="300.0") == 1
    assert ("chorus_export_duration_seconds_count", frozenset({("status", "running")})) not in (
        samples
    )


# --- Several processes -------------------------------------------------------------------

WRITER = textwrap.dedent(
    """
    import sys
    from backend.core import metrics

    requests, sockets = int(sys.argv[1]), int(sys.argv[2])
    for _ in range(requests):
        metrics.observe_request("GET", "/api/v1/trees/", 200, 0.02)
    metrics.TASK_REQUESTS.labels("label_assistant_reply", "handed_out").inc(requests)
    metrics.WEBSOCKETS.labels("/ws/tasks/").inc(sockets)
    """
)


@pytest.mark.slow
def test_a_scrape_adds_up_what_several_processes_counted(scraper, settings, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """Two processes (as two uvicorn workers or Celery's pool would) write their counts to
    PROMETHEUS_MULTIPROC_DIR; a scrape of any process shows their sums."""
    folder = tmp_path / "prometheus"  # made by the processes that write to it
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(folder)}
    writers = [
        subprocess.Popen(  # noqa: S603
            [sys.executable, "-c", WRITER, str(requests), str(sockets)], cwd=PROJECT_ROOT, env=env
        )
        for requests, sockets in [(3, 1), (4, 2)]
    ]
    assert [writer.wait(timeout=60) for writer in writers] == [0, 0]
    assert len(list(folder.glob("counter_*.db"))) == 2  # one file per process
    settings.PROMETHEUS_MULTIPROC_DIR = str(folder)
    samples = scrape(scraper)
    labels = {"method": "GET", "route": "/api/v1/trees/", "status": "2xx"}
    assert value(samples, "chorus_http_requests_total", **labels) == 7
    assert value(samples, "chorus_http_request_duration_seconds_count", **labels) == 7
    assert value(samples, "chorus_http_request_duration_seconds_bucket", le="0.025", **labels) == 7
    handed = {"type": "label_assistant_reply", "outcome": "handed_out"}
    assert value(samples, "chorus_task_requests_total", **handed) == 7
    assert value(samples, "chorus_websocket_connections", route="/ws/tasks/") == 3
    # The scrape-time figures come along in multiprocess mode too.
    assert ("chorus_exports", frozenset({("status", "done")})) in samples

    # A machine with workers only serves the same sums with `manage.py serve_metrics`,
    # without the figures read at scrape time (the web's scrape has them), to the token only.
    served = serve_metrics_scrape(f"Bearer {TOKEN}")
    assert served[0] == "200 OK"
    families = list(text_string_to_metric_families(served[1].decode()))
    by_sample = {
        (s.name, frozenset(s.labels.items())): s.value for f in families for s in f.samples
    }
    assert value(by_sample, "chorus_http_requests_total", **labels) == 7
    assert not [key for key in by_sample if key[0] == "chorus_exports"]
    assert serve_metrics_scrape("")[0] == "404 Not Found"
    assert serve_metrics_scrape("Bearer wrong")[0] == "403 Forbidden"


def serve_metrics_scrape(authorization: str) -> tuple[str, bytes]:
    from backend.core.management.commands.serve_metrics import metrics_app

    answer: list[str] = []
    body = metrics_app(
        {"PATH_INFO": "/metrics", "HTTP_AUTHORIZATION": authorization, "REMOTE_ADDR": "10.9.9.9"},
        lambda status, headers: answer.append(status),
    )
    return answer[0], b"".join(body)


def test_serve_metrics_needs_a_multiprocess_folder(settings) -> None:  # type: ignore[no-untyped-def]
    from django.core.management import CommandError, call_command

    settings.PROMETHEUS_MULTIPROC_DIR = ""
    with pytest.raises(CommandError, match="PROMETHEUS_MULTIPROC_DIR is not set"):
        call_command("serve_metrics", "--port", "0")


def test_random_task_types_are_labelled_by_what_was_handed_out(
    scraper, small_trees, volunteer
) -> None:  # type: ignore[no-untyped-def]
    rng = random.Random(7)
    people = [volunteer() for _ in range(3)]
    before = scrape(scraper)
    handed: dict[str, int] = {}
    for person in people * 3:
        response, _ = person.do_one(rng)
        if response.status_code == 201:
            kind = response.json()["type"]
            handed[kind] = handed.get(kind, 0) + 1
    after = scrape(scraper)
    assert handed
    for kind, n in handed.items():
        name = "chorus_task_requests_total"
        labels = {"type": kind, "outcome": "handed_out"}
        assert value(after, name, **labels) - value(before, name, **labels) == n
    assert value(after, "chorus_task_requests_total", type="random", outcome="handed_out") == 0
