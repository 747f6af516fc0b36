"""Health endpoints for container checks, load balancers and deploy scripts.

- `GET /healthz`: the process is alive and answers. It touches nothing else, so a database
  or Redis outage never makes an orchestrator restart healthy web processes.
- `GET /readyz`: the process can do its work: PostgreSQL answers, and so do Redis (when
  REDIS_URL is set) and the inference server's /health (when INFERENCE_URL is set). 200
  when all do, else 503 naming the ones that failed. The checks run in parallel, each
  bounded by CHORUS_READYZ_TIMEOUT, so the answer comes within that time even when a
  dependency hangs.

HealthCheckMiddleware answers both paths first in the middleware chain, before the host
check (a probe asks by IP address, which is not in ALLOWED_HOSTS), HTTPS redirects (a probe
inside the network speaks plain HTTP), sessions, CSRF and rate limits. They are not DRF
views, so they are not in the OpenAPI schema either. The URLconf names them too, so that
`reverse("readyz")` works and the permission matrix sees them.

What a failed check says publicly is only its kind (unreachable, timed out, a bad status):
the endpoints are anonymous, and exception texts carry host names and user names. The
details go to the log.
"""

from __future__ import annotations

import functools
import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass

import httpx
import redis
from django.conf import settings
from django.db import connections
from django.http import HttpRequest, HttpResponse, JsonResponse
from redis.backoff import NoBackoff
from redis.retry import Retry

from backend.core.api_errors import error_body

log = logging.getLogger(__name__)

SAFE_METHODS = ("GET", "HEAD")


class CheckFailed(Exception):
    """A dependency answered, but not as it should (the message is safe to show)."""


@dataclass(frozen=True)
class CheckResult:
    ok: bool
    ms: float
    error: str = ""

    def as_json(self) -> dict[str, object]:
        body: dict[str, object] = {"ok": self.ok, "ms": round(self.ms, 1)}
        if not self.ok:
            body["error"] = self.error
        return body


# --- The checks ----------------------------------------------------------------------------


def check_database() -> None:
    """One round trip through this process's own connection pool."""
    connection = connections["default"]
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
    finally:
        # This runs on a thread of its own: hand the connection back to the pool.
        connection.close()


def check_redis(url: str, timeout: float) -> None:
    # No retries: a probe wants the state of now, within its own deadline.
    client = redis.Redis.from_url(
        url, socket_connect_timeout=timeout, socket_timeout=timeout, retry=Retry(NoBackoff(), 0)
    )
    try:
        if not client.ping():
            raise CheckFailed("no PONG")
    finally:
        client.close()


@functools.cache
def _http() -> httpx.Client:
    # One client per process (httpx's are thread-safe): building one loads the TLS
    # certificates, which took longer than the whole check.
    return httpx.Client()


def check_inference(url: str, timeout: float) -> None:
    key = settings.INFERENCE_API_KEY
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    response = _http().get(f"{url}/health", timeout=timeout, headers=headers)
    if not response.is_success:
        raise CheckFailed(f"status {response.status_code}")


def _describe(error: BaseException) -> str:
    if isinstance(error, CheckFailed):
        return str(error)
    if isinstance(error, TimeoutError | httpx.TimeoutException | redis.TimeoutError):
        return "timed out"
    return "unreachable"


# --- Running them, bounded in time ---------------------------------------------------------

# At most one check of each dependency runs at a time in a process: a probe that finds one
# still running waits for that one instead of starting another, so a flood of probes
# against a hung dependency cannot pile up threads (each ends by its own timeouts).
# A check's future holds its duration in seconds and the exception it raised, if any.
Outcome = tuple[float, BaseException | None]
_in_flight: dict[tuple[str, str], Future[Outcome]] = {}
_in_flight_lock = threading.Lock()


def _run(check: Callable[[], None], future: Future[Outcome]) -> None:
    started = time.monotonic()
    try:
        check()
    except BaseException as error:
        future.set_result((time.monotonic() - started, error))
    else:
        future.set_result((time.monotonic() - started, None))


def _start(name: str, target: str, check: Callable[[], None]) -> Future[Outcome]:
    key = (name, target)
    with _in_flight_lock:
        future = _in_flight.get(key)
        if future is None or future.done():
            future = Future()
            _in_flight[key] = future
            thread = threading.Thread(
                target=_run, args=(check, future), name=f"readyz-{name}", daemon=True
            )
            thread.start()
    return future


def readiness() -> dict[str, CheckResult]:
    """Each configured dependency's check, all run in parallel within the timeout."""
    timeout = float(settings.CHORUS_READYZ_TIMEOUT)
    checks: dict[str, tuple[str, Callable[[], None]]] = {"database": ("default", check_database)}
    if settings.REDIS_URL:
        url = settings.REDIS_URL
        checks["redis"] = (url, lambda: check_redis(url, timeout))
    if settings.INFERENCE_URL:
        base = settings.INFERENCE_URL
        checks["inference"] = (base, lambda: check_inference(base, timeout))

    started = time.monotonic()
    futures = {name: _start(name, target, check) for name, (target, check) in checks.items()}
    results: dict[str, CheckResult] = {}
    for name, future in futures.items():
        remaining = max(0.0, started + timeout - time.monotonic())
        try:
            seconds, failure = future.result(timeout=remaining)
        except FutureTimeout:
            log.warning("readyz: the %s check took longer than %.1f s", name, timeout)
            results[name] = CheckResult(ok=False, ms=timeout * 1000, error="timed out")
            continue
        error = ""
        if failure is not None:
            error = _describe(failure)
            log.warning("readyz: the %s check failed: %r", name, failure)
        results[name] = CheckResult(ok=not error, ms=seconds * 1000, error=error)
    return results


# --- The views and the middleware ----------------------------------------------------------


def _answer(body: dict, status: int) -> JsonResponse:
    response = JsonResponse(body, status=status)
    response["Cache-Control"] = "no-store"
    response["X-Content-Type-Options"] = "nosniff"
    return response


def _method_not_allowed(request: HttpRequest) -> JsonResponse:
    message = f"Method {request.method} is not allowed here; use GET."
    response = _answer(error_body("method_not_allowed", message), 405)
    response["Allow"] = ", ".join(SAFE_METHODS)
    return response


def healthz(request: HttpRequest) -> HttpResponse:
    """The process is alive: no database, no Redis, nothing but this answer."""
    if request.method not in SAFE_METHODS:
        return _method_not_allowed(request)
    return _answer({"status": "ok"}, 200)


def readyz(request: HttpRequest) -> HttpResponse:
    """200 when the database and every configured service answer, else 503 naming those
    that do not."""
    if request.method not in SAFE_METHODS:
        return _method_not_allowed(request)
    results = readiness()
    checks = {name: result.as_json() for name, result in results.items()}
    failed = [f"{name} ({r.error})" for name, r in results.items() if not r.ok]
    if not failed:
        return _answer({"status": "ok", "checks": checks}, 200)
    message = "Not ready: " + ", ".join(failed) + "."
    response = _answer(
        {"status": "unavailable", "checks": checks, **error_body("not_ready", message)}, 503
    )
    # Each failed check is logged above with its cause; Django's own "Service Unavailable"
    # line for every probe during an outage would add nothing.
    response._has_been_logged = True  # type: ignore[attr-defined]
    return response


HEALTH_VIEWS: dict[str, Callable[[HttpRequest], HttpResponse]] = {
    "/healthz": healthz,
    "/readyz": readyz,
}


class HealthCheckMiddleware:
    """Answers /healthz and /readyz before the rest of the stack (first in MIDDLEWARE)."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        view = HEALTH_VIEWS.get(request.path_info)
        if view is not None:
            return view(request)
        return self.get_response(request)
