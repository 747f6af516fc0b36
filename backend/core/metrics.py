"""Prometheus metrics: what Chorus counts as it runs, and what it reads at each scrape.

Counted in the process where it happens (prometheus_client): HTTP requests, volunteer
tasks handed out and submitted, Celery jobs run, open WebSockets. Read when
/metrics is scraped: Celery queue lengths (LLEN on a Redis broker) and exports (from the
database). Every label has a bounded set of values: routes are URL patterns, not paths;
statuses are classes (2xx); outcomes are error codes.

With PROMETHEUS_MULTIPROC_DIR set (before prometheus_client is imported: it is read from
the environment) every process writes its values to files there and a scrape adds up all
of them, so any one web process answers for every uvicorn worker and Celery process that
shares the folder. Without it a scrape shows the answering process alone.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Iterator
from typing import Any

from django.conf import settings
from prometheus_client import (
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector

logger = logging.getLogger(__name__)

# Before the first value is written (values exist per label set, so none is yet).
if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
    os.makedirs(os.environ["PROMETHEUS_MULTIPROC_DIR"], exist_ok=True)

# The `_created` series (when each label set first appeared) would double what a scrape
# carries and tell nothing a counter's reset does not.
disable_created_metrics()

HTTP_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
# Seconds: from a start and a finish in the database, so coarse bounds suffice.
EXPORT_BUCKETS = [10.0, 30.0, 60.0, 300.0, 900.0, 1800.0, 3600.0, 7200.0, 14400.0]
JOB_BUCKETS = (0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 10.0, 30.0, 60.0, 300.0, 1800.0, 3600.0)

HTTP_REQUESTS = Counter(
    "chorus_http_requests",
    "HTTP requests answered, by method, route pattern and status class.",
    ["method", "route", "status"],
)
HTTP_SECONDS = Histogram(
    "chorus_http_request_duration_seconds",
    "Time to answer an HTTP request (until the response is ready), by method, route pattern"
    " and status class.",
    ["method", "route", "status"],
)
TASK_REQUESTS = Counter(
    "chorus_task_requests",
    "Volunteer task requests: the type handed out (or asked for, when none was) and the"
    " outcome (handed_out or the error code).",
    ["type", "outcome"],
)
TASK_SUBMISSIONS = Counter(
    "chorus_task_submissions",
    "Volunteer task submissions: the task's type (unknown when refused) and the outcome"
    " (submitted, replayed for a repeated idempotency key, or the error code).",
    ["type", "outcome"],
)
JOBS = Counter(
    "chorus_celery_jobs",
    "Celery jobs run (by workers, or in process when eager), by job and final state.",
    ["job", "state"],
)
JOB_SECONDS = Histogram(
    "chorus_celery_job_duration_seconds", "Run time of Celery jobs.", ["job"], buckets=JOB_BUCKETS
)
WEBSOCKETS = Gauge(
    "chorus_websocket_connections",
    "WebSocket connections open now, by route pattern.",
    ["route"],
    # Summed over live processes: a process's connections end with it.
    multiprocess_mode="livesum",
)


# --- Counting --------------------------------------------------------------------------------


# The two series of each label set, looked up once: `labels()` validates and locks on
# every call, which was half the cost of counting a request.
_request_series: dict[tuple[str, str, str], tuple[Any, Any]] = {}


def observe_request(method: str, route: str, status: int, seconds: float) -> None:
    labels = (method if method in HTTP_METHODS else "other", route, f"{status // 100}xx")
    series = _request_series.get(labels)
    if series is None:
        series = (HTTP_REQUESTS.labels(*labels), HTTP_SECONDS.labels(*labels))
        _request_series[labels] = series
    series[0].inc()
    series[1].observe(seconds)


def task_type_label(task_type: str) -> str:
    """An asked-for task type as a label: a known one, or `unknown` (bounded values)."""
    from backend.tasks.models import TaskType

    return task_type if task_type in TaskType.values or task_type == "random" else "unknown"


_job_started: dict[str, float] = {}


def job_started(task_id: str) -> None:
    _job_started[task_id] = time.perf_counter()


def job_finished(task_id: str, job: str, state: str | None) -> None:
    JOBS.labels(job, (state or "unknown").lower()).inc()
    started = _job_started.pop(task_id, None)
    if started is not None:
        JOB_SECONDS.labels(job).observe(time.perf_counter() - started)


# --- Read at scrape time -----------------------------------------------------------------


class ScrapeTimeCollector:
    """Figures that live outside the processes: the broker's queues, the exports table.
    Each source that does not answer is left out of the scrape (and logged), so /metrics
    still serves what it has."""

    def collect(self) -> Iterator[Metric]:
        try:
            yield from _queue_lengths()
        except Exception as error:  # Redis down or refusing: the rest of the scrape stands
            logger.warning("Celery queue lengths unavailable: %s", error)
        try:
            yield from _exports()
        except Exception as error:
            logger.warning("Export figures unavailable: %s", error)


def _queue_lengths() -> Iterator[Metric]:
    """LLEN of every queue Celery knows, on a Redis broker (absent with any other)."""
    url = settings.CELERY_BROKER_URL
    if not url.startswith(("redis://", "rediss://", "unix://")):
        return
    import redis
    from kombu.transport.redis import PRIORITY_STEPS, Channel

    queues = celery_queues()
    # kombu keeps a message with a priority in a list of its own per priority step.
    keys = {
        queue: [queue if step == 0 else f"{queue}{Channel.sep}{step}" for step in PRIORITY_STEPS]
        for queue in queues
    }
    with redis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2) as client:
        pipe = client.pipeline(transaction=False)
        for queue in queues:
            for key in keys[queue]:
                pipe.llen(key)
        lengths = iter(pipe.execute())
    family = GaugeMetricFamily(
        "chorus_celery_queue_length",
        "Jobs waiting in each Celery queue (read from the Redis broker at scrape time).",
        labels=["queue"],
    )
    for queue in queues:
        family.add_metric([queue], float(sum(next(lengths) for _ in keys[queue])))
    yield family


def celery_queues() -> list[str]:
    """The queues Celery sends to (its default one, and any configured)."""
    from backend.celery import app

    return sorted(app.amqp.queues)


def _exports() -> Iterator[Metric]:
    from backend.exports import selectors

    counts = GaugeMetricFamily(
        "chorus_exports", "Dataset exports in each status (from the database).", labels=["status"]
    )
    for status, n in sorted(selectors.export_counts().items()):
        counts.add_metric([status], float(n))
    yield counts
    durations = HistogramMetricFamily(
        "chorus_export_duration_seconds",
        "Run time of finished dataset exports, start to finish, by final status (from the"
        " database).",
        labels=["status"],
    )
    bounds = [*(str(b) for b in EXPORT_BUCKETS), "+Inf"]
    for status, figures in sorted(selectors.export_durations(EXPORT_BUCKETS).items()):
        cumulative = [*figures.bucket_counts, figures.count]
        durations.add_metric(
            [status], list(zip(bounds, map(float, cumulative), strict=True)), figures.total_seconds
        )
    yield durations


# --- The scrape --------------------------------------------------------------------------------


class _ThisProcess:
    """The default registry's metrics (this process's, and Python's own) for a scrape."""

    def collect(self) -> Iterator[Metric]:
        yield from REGISTRY.collect()


def render(*, read_now: bool = True) -> bytes:
    """Everything in Prometheus's text format: every process's counts (or this one's) and,
    with `read_now`, the figures read at scrape time."""
    registry = CollectorRegistry()
    collector: Any
    if settings.PROMETHEUS_MULTIPROC_DIR:
        collector = MultiProcessCollector(None, path=settings.PROMETHEUS_MULTIPROC_DIR)
    else:
        collector = _ThisProcess()
    registry.register(collector)
    if read_now:
        registry.register(ScrapeTimeCollector())
    return generate_latest(registry)
