"""/healthz and /readyz: what container checks, load balancers and deploy scripts rely on.

Against the real PostgreSQL and (where REDIS_URL is set) the real Redis; a dependency that
is down is an address where nothing listens, or a socket that accepts and never answers.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.conf import settings as django_settings
from django.test import Client
from django.urls import reverse
from drf_spectacular.generators import SchemaGenerator

from tests.inference import closed_port_url

# A host a probe uses (the container's address), not one in ALLOWED_HOSTS.
PROBE_HOST = "10.1.2.3:8000"


@pytest.fixture(autouse=True)
def _patient_checks(settings):  # type: ignore[no-untyped-def]
    """A check's first run builds its client and opens the pool; on a busy test machine that
    can pass the 2 s default. Only the timeout test wants a short one (and sets it)."""
    settings.CHORUS_READYZ_TIMEOUT = 15.0


def closed_redis_url() -> str:
    return closed_port_url().replace("http://", "redis://") + "/0"


@pytest.fixture
def silent_listener() -> Iterator[tuple[str, int]]:
    """A socket that accepts connections (the kernel does) and never says a word."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(16)
        yield listener.getsockname()


class _Health(BaseHTTPRequestHandler):
    status = 200

    def do_GET(self) -> None:
        self.send_response(self.status if self.path == "/health" else 404)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"{}")

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def health_server() -> Iterator[type[_Health]]:
    """An HTTP server with a /health (its status set through the yielded handler class)."""
    handler = type("Handler", (_Health,), {"status": 200})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    handler.url = f"http://127.0.0.1:{server.server_address[1]}"  # type: ignore[attr-defined]
    try:
        yield handler
    finally:
        server.shutdown()
        server.server_close()


def probe(path: str, **extra: str):  # type: ignore[no-untyped-def]
    return Client(enforce_csrf_checks=True).get(path, HTTP_HOST=PROBE_HOST, **extra)


# --- /healthz ------------------------------------------------------------------------------


def test_healthz_answers_without_touching_the_database():
    # No django_db mark: pytest-django refuses any database access in this test.
    response = probe("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}
    assert response["Cache-Control"] == "no-store"
    assert not response.cookies, "a probe must not get a session"
    assert Client().head("/healthz", HTTP_HOST=PROBE_HOST).status_code == 200


def test_the_health_endpoints_are_named_urls():
    assert reverse("healthz") == "/healthz"
    assert reverse("readyz") == "/readyz"


def test_healthz_answers_a_probe_by_ip_over_plain_http_even_when_https_is_enforced(settings):
    settings.SECURE_SSL_REDIRECT = True
    settings.ALLOWED_HOSTS = ["chorus.example.org"]
    assert probe("/healthz").status_code == 200
    # The rest of the site still refuses the unknown host.
    assert probe("/terms/").status_code in (301, 400)


def test_a_write_to_a_health_endpoint_is_refused_in_the_api_error_format():
    for path in ("/healthz", "/readyz"):
        response = Client(enforce_csrf_checks=True).post(path, HTTP_HOST=PROBE_HOST)
        assert response.status_code == 405  # not 403: CSRF never sees it
        assert response.json()["error"]["code"] == "method_not_allowed"
        assert response["Allow"] == "GET, HEAD"


def test_the_health_endpoints_come_before_every_other_middleware():
    # Rate limits, sessions, CSRF and the host check all live further down the chain.
    assert django_settings.MIDDLEWARE[0] == "backend.core.health.HealthCheckMiddleware"


def test_the_health_endpoints_are_not_in_the_openapi_schema():
    schema = SchemaGenerator().get_schema(request=None, public=True)
    assert schema["paths"], "the schema has no paths at all: the check below proves nothing"
    assert not [path for path in schema["paths"] if "healthz" in path or "readyz" in path]


# --- /readyz -------------------------------------------------------------------------------


@pytest.mark.django_db
def test_readyz_is_ready_with_the_database_and_redis(settings, redis_url):
    settings.REDIS_URL = redis_url
    settings.INFERENCE_URL = ""
    response = probe("/readyz")
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["status"] == "ok"
    assert set(body["checks"]) == {"database", "redis"}
    assert all(check["ok"] for check in body["checks"].values())


@pytest.mark.django_db
def test_readyz_checks_only_the_database_without_redis_and_inference(settings):
    settings.REDIS_URL = ""
    settings.INFERENCE_URL = ""
    response = probe("/readyz")
    assert response.status_code == 200, response.content
    assert set(response.json()["checks"]) == {"database"}


@pytest.mark.django_db
def test_readyz_names_an_unreachable_redis(settings):
    settings.REDIS_URL = closed_redis_url()
    settings.INFERENCE_URL = ""
    response = probe("/readyz")
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "unavailable"
    assert body["checks"]["database"]["ok"] is True
    assert body["checks"]["redis"] == {
        "ok": False,
        "ms": body["checks"]["redis"]["ms"],
        "error": "unreachable",
    }
    assert body["error"]["code"] == "not_ready"
    assert "redis" in body["error"]["message"]
    assert "database" not in body["error"]["message"]
    # The address (and anything else from the exception) stays in the log.
    assert "127.0.0.1" not in response.content.decode()


@pytest.mark.django_db
def test_readyz_gives_up_on_a_redis_that_never_answers_within_its_timeout(
    settings, silent_listener
):
    host, port = silent_listener
    settings.REDIS_URL = f"redis://{host}:{port}/0"
    settings.INFERENCE_URL = ""
    settings.CHORUS_READYZ_TIMEOUT = 0.5
    started = time.monotonic()
    response = probe("/readyz")
    assert time.monotonic() - started < 5  # 0.5 s, and what a busy test machine adds
    assert response.status_code == 503
    assert response.json()["checks"]["redis"]["error"] == "timed out"

    # Probes in a row while it hangs: never more than one check of it at a time.
    for _ in range(3):
        assert probe("/readyz").status_code == 503
    hanging = [t for t in threading.enumerate() if t.name == "readyz-redis"]
    assert len(hanging) <= 1


@pytest.mark.django_db
def test_readyz_names_an_unreachable_inference_server(settings):
    settings.REDIS_URL = ""
    settings.INFERENCE_URL = closed_port_url()
    response = probe("/readyz")
    assert response.status_code == 503
    body = response.json()
    assert body["checks"]["inference"]["error"] == "unreachable"
    assert body["checks"]["database"]["ok"] is True
    assert "inference" in body["error"]["message"]


@pytest.mark.django_db
def test_readyz_asks_the_inference_server_for_its_health(settings, health_server):
    settings.REDIS_URL = ""
    settings.INFERENCE_URL = health_server.url  # type: ignore[attr-defined]
    assert probe("/readyz").status_code == 200

    health_server.status = 500
    response = probe("/readyz")
    assert response.status_code == 503
    assert response.json()["checks"]["inference"]["error"] == "status 500"


@pytest.mark.django_db
def test_readyz_names_every_dependency_that_failed(settings):
    settings.REDIS_URL = closed_redis_url()
    settings.INFERENCE_URL = closed_port_url()
    response = probe("/readyz")
    assert response.status_code == 503
    message = response.json()["error"]["message"]
    assert "redis (unreachable)" in message
    assert "inference (unreachable)" in message
