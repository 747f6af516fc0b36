"""Watching the running site: the access log and request metrics of every HTTP request, the
count of open WebSockets, and /metrics for Prometheus.

/metrics is for the operators' scraper, not for the internet: it answers a request that
carries `Authorization: Bearer <CHORUS_METRICS_TOKEN>` or that comes from one of
CHORUS_METRICS_NETWORKS (by the address the web process sees: list only networks whose
clients reach it directly, never the reverse proxy's own, or everyone behind the proxy
gets in). Anyone else gets 404, as if nothing were there; a wrong token gets 403.
"""

from __future__ import annotations

import hmac
import ipaddress
import logging
import time
from collections.abc import Awaitable, Callable
from functools import cache
from typing import Any

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from prometheus_client import CONTENT_TYPE_LATEST

from backend.core import metrics
from backend.core.api_errors import error_body
from backend.core.logs import current_request, request_user_id

access_log = logging.getLogger("chorus.access")


class RequestMonitoringMiddleware:
    """Times each request (outermost, so it sees every middleware and static file), counts
    it by route pattern and writes its access-log line at INFO."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        started = time.perf_counter()
        token = current_request.set(request)
        try:
            response = self.get_response(request)
        finally:
            current_request.reset(token)
        seconds = time.perf_counter() - started
        route = route_of(request)
        metrics.observe_request(request.method or "", route, response.status_code, seconds)
        if access_log.isEnabledFor(logging.INFO):
            duration_ms = round(seconds * 1000, 2)
            extra: dict[str, Any] = {
                "method": request.method,
                "path": request.path,
                "route": route,
                "status": response.status_code,
                "duration_ms": duration_ms,
            }
            user_id = request_user_id(request)
            if user_id is not None:
                extra["user_id"] = user_id
            access_log.info(
                "%s %s %s %.1f ms",
                request.method,
                request.path,
                response.status_code,
                duration_ms,
                extra=extra,
            )
        return response


def route_of(request: HttpRequest) -> str:
    """The URL pattern that answered (e.g. /api/v1/tasks/<uuid:task_id>/submit/), never the
    path itself: a label per task id would grow without end."""
    match = request.resolver_match
    if match is not None:
        return "/" + match.route
    if request.path.startswith(settings.STATIC_URL):
        return settings.STATIC_URL  # WhiteNoise answers before any URL is resolved
    return "unmatched"


# --- WebSockets --------------------------------------------------------------------------------

Send = Callable[[dict[str, Any]], Awaitable[None]]


@cache
def _websocket_routes() -> list[tuple[Any, str]]:
    from backend.routing import websocket_urlpatterns

    return [(p.pattern, "/" + str(p.pattern)) for p in websocket_urlpatterns]


def websocket_route(path: str) -> str:
    for pattern, route in _websocket_routes():
        if pattern.match(path.lstrip("/")):
            return route
    return "unmatched"


async def count_websocket(app: Any, scope: dict, receive: Any, send: Send) -> None:
    """Run the WebSocket app, counting the connection as open from its accept until the
    app is done with it."""
    gauge = metrics.WEBSOCKETS.labels(websocket_route(scope["path"]))
    accepted = False

    async def sending(message: dict[str, Any]) -> None:
        nonlocal accepted
        await send(message)
        if message["type"] == "websocket.accept" and not accepted:
            accepted = True
            gauge.inc()

    try:
        await app(scope, receive, sending)
    finally:
        if accepted:
            gauge.dec()


# --- /metrics ----------------------------------------------------------------------------------


@cache
def _networks(configured: tuple[str, ...]) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
    return [ipaddress.ip_network(n, strict=False) for n in configured]


def _from_allowed_network(remote_addr: str) -> bool:
    networks = _networks(tuple(settings.CHORUS_METRICS_NETWORKS))
    if not networks:
        return False
    try:
        address = ipaddress.ip_address(remote_addr)
    except ValueError:
        return False
    return any(address in network for network in networks)


def scrape_refusal(authorization: str, remote_addr: str) -> tuple[int, dict] | None:
    """Why a scrape is refused (status and error body), or None when it may go ahead."""
    token = settings.CHORUS_METRICS_TOKEN
    if authorization.startswith("Bearer ") and token:
        if hmac.compare_digest(authorization.removeprefix("Bearer ").encode(), token.encode()):
            return None
        return 403, error_body("permission_denied", "This token does not open the metrics.")
    if _from_allowed_network(remote_addr):
        return None
    return 404, error_body("not_found", "No such resource.")


def metrics_view(request: HttpRequest) -> HttpResponse:
    """Prometheus's text format, for the configured scrapers only (see the module)."""
    refused = scrape_refusal(
        request.headers.get("Authorization", ""), request.META.get("REMOTE_ADDR", "")
    )
    if refused is not None:
        status, body = refused
        return JsonResponse(body, status=status)
    if request.method not in ("GET", "HEAD"):
        return JsonResponse(
            error_body("method_not_allowed", f"Method {request.method} not allowed."), status=405
        )
    return HttpResponse(metrics.render(), content_type=CONTENT_TYPE_LATEST)
