"""Live updates: events for WebSocket groups, sent from synchronous code after commit.

The channel layer is Redis when REDIS_URL is set (every web process and worker reaches
every browser) and in-memory otherwise (one process). Its queues live on the event loop
that serves the WebSockets; synchronous code (request threads, Celery jobs) hands each
event to that loop when this process runs one, or sends it from a loop of its own.
Live updates are a convenience: when the layer cannot be reached (Redis down), the event
is dropped with a log line and the request that caused it carries on.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import weakref
from typing import Any

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.db import transaction

log = logging.getLogger(__name__)

_serving_loop: asyncio.AbstractEventLoop | None = None


def remember_serving_loop() -> None:
    """Called by the ASGI application, on the loop that serves WebSockets."""
    global _serving_loop
    if _serving_loop is None or not _serving_loop.is_running():
        _serving_loop = asyncio.get_running_loop()


# The layers whose sends fail: an outage is logged when it starts and when it ends, not
# once per dropped event (a busy site sends many a second).
_layers_down: weakref.WeakSet[Any] = weakref.WeakSet()


def _send(group: str, event: dict[str, Any]) -> None:
    try:
        layer = get_channel_layer()
    except Exception as exc:  # a layer that cannot be built (a wrong setting, no module)
        _note_unbuildable(exc)
        return
    if layer is None:
        return
    try:
        loop = _serving_loop
        if loop is not None and loop.is_running():
            future = asyncio.run_coroutine_threadsafe(layer.group_send(group, event), loop)
            future.add_done_callback(functools.partial(_note_outcome, layer))
        else:
            async_to_sync(layer.group_send)(group, event)
            _note_sent(layer)
    except Exception as exc:  # the layer is an optional service: never fail the caller
        _note_dropped(layer, exc)


def _note_outcome(layer: Any, future: Any) -> None:
    if future.cancelled():
        return
    if future.exception() is not None:
        _note_dropped(layer, future.exception())
    else:
        _note_sent(layer)


def _note_dropped(layer: Any, exc: BaseException) -> None:
    if layer not in _layers_down:
        _layers_down.add(layer)
        log.warning("live updates dropped until the channel layer answers again: %s", exc)


_unbuildable_logged = False


def _note_unbuildable(exc: BaseException) -> None:
    global _unbuildable_logged
    if not _unbuildable_logged:
        _unbuildable_logged = True
        log.warning("live updates dropped: the channel layer cannot be built: %s", exc)


def _note_sent(layer: Any) -> None:
    if layer in _layers_down:
        _layers_down.discard(layer)
        log.warning("live updates flow again")


def load_channel_layer() -> None:
    """Build this process's channel layer now instead of at its first event.

    For processes that send events but never start a WebSocket: Celery's pool processes
    (backend/celery.py). Building the Redis layer imports channels_redis, which imports
    `cryptography` for its optional message encryption; that library's Rust extension
    (OpenSSL linked in) adds about 7 MB of resident memory. Loaded lazily, that step
    came at a random time in each pool process (the first job of it that sent an event)
    and made that job slower. Never raises (live updates are optional, and a process that
    failed to start would be started again and again): a layer that cannot be built is
    logged (once) and the events then sent are dropped (_send)."""
    try:
        get_channel_layer()
    except Exception as exc:
        _note_unbuildable(exc)


def broadcast(group: str, event: dict[str, Any]) -> None:
    """Send `event` to `group` once the current transaction commits (at once outside one)."""
    transaction.on_commit(lambda: _send(group, event))


MODERATION_GROUP = "moderation"


def task_group(lang: str) -> str:
    return f"tasks.{lang}"
