"""ASGI entry point for uvicorn: HTTP and, through Channels, WebSockets.

HTTP requests run Django's synchronous stack on a pool of threads (a2wsgi). Under Django's own
ASGI handler every request of a sync view gets a new thread and hops between it and the event
loop at each middleware; the benchmark (bench/taskloop.py) measured that at about 60% more
CPU per task loop (15.7 against 9.6 ms with one worker). WebSockets stay on Channels.
"""

import os
from typing import Any

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "backend.settings")

from a2wsgi import WSGIMiddleware
from channels.auth import AuthMiddlewareStack
from channels.routing import ProtocolTypeRouter, URLRouter
from channels.security.websocket import AllowedHostsOriginValidator
from django.conf import settings

from backend.wsgi import application as wsgi_application  # sets Django up first

# isort: split
from backend.core.live import remember_serving_loop
from backend.core.monitoring import count_websocket
from backend.routing import websocket_urlpatterns  # the consumers import models

# One thread per pooled database connection: a request never waits for a connection.
# (Django's stubs type the handler's return more narrowly than a2wsgi's WSGI protocol.)
http = WSGIMiddleware(wsgi_application, workers=settings.CHORUS_HTTP_THREADS)  # type: ignore[arg-type]

# WebSockets: signed in by the session cookie, from this site's own pages only.
websocket = AllowedHostsOriginValidator(AuthMiddlewareStack(URLRouter(websocket_urlpatterns)))

router = ProtocolTypeRouter({"http": http, "websocket": websocket})


async def application(scope: dict, receive: Any, send: Any) -> None:
    # Live updates from request threads are handed to this loop (backend.core.live).
    remember_serving_loop()
    if scope["type"] == "websocket":
        await count_websocket(router, scope, receive, send)
    else:
        await router(scope, receive, send)
