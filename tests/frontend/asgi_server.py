"""Chorus's real ASGI application (HTTP and WebSockets) served by uvicorn in a thread, for
browser tests that need what Django's WSGI `live_server` cannot give: WebSockets.

Use it with `transaction=True` database tests: the server's threads have their own
connections, so they only see committed rows (as `live_server` does).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass

import pytest


@dataclass(frozen=True)
class AsgiServer:
    url: str


def _serve() -> Iterator[AsgiServer]:
    import uvicorn
    from django.contrib.staticfiles.handlers import ASGIStaticFilesHandler

    from backend.asgi import application

    # Static files from the apps' folders, as `live_server` serves them (no collectstatic).
    app = ASGIStaticFilesHandler(application)
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="off")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert time.monotonic() < deadline, "the ASGI server did not start"
        time.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield AsgiServer(url=f"http://127.0.0.1:{port}")
    finally:
        server.should_exit = True
        thread.join(timeout=10)


@pytest.fixture
def asgi_server(transactional_db, settings) -> Iterator[AsgiServer]:  # type: ignore[no-untyped-def]
    """A server per test: the in-memory channel layer lives in the serving thread's loop."""
    settings.ALLOWED_HOSTS = ["127.0.0.1", "localhost"]
    settings.CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
    yield from _serve()
