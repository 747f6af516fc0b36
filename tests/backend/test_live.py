"""WebSockets through Channels: the moderators' live feed and the volunteers' live counts,
against the Redis channel layer (and the in-memory one a single process uses)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from channels.layers import channel_layers
from channels.testing import WebsocketCommunicator
from django.test import Client

from backend.accounts.models import Role
from backend.accounts.services import create_user
from backend.asgi import application
from backend.core import live
from backend.moderation.services import report_message
from backend.tasks import services as tasks
from backend.trees.models import Message
from tests.conftest import PROJECT_ROOT, run_async
from tests.frontend.scenario import QUICK_TREES, build_open_work

pytestmark = [pytest.mark.django_db(transaction=True)]


@pytest.fixture(params=["redis", "memory"])
def layer(request, settings):  # type: ignore[no-untyped-def]
    if request.param == "redis":
        url = request.getfixturevalue("redis_url")
        settings.CHANNEL_LAYERS = {
            "default": {
                "BACKEND": "channels_redis.core.RedisChannelLayer",
                # A prefix of its own, so parallel test processes never hear each other.
                "CONFIG": {"hosts": [url], "prefix": f"test-{id(request)}"},
            }
        }
    else:
        settings.CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
    settings.CHORUS_TREE = dict(QUICK_TREES)
    return request.param


def session_cookie(user) -> str:  # type: ignore[no-untyped-def]
    client = Client()
    client.force_login(user)
    return f"sessionid={client.cookies['sessionid'].value}"


def socket(path: str, cookie: str) -> WebsocketCommunicator:
    return WebsocketCommunicator(
        application, path, headers=[(b"cookie", cookie.encode()), (b"origin", b"http://localhost")]
    )


def run(coroutine_function):  # type: ignore[no-untyped-def]
    return run_async(coroutine_function)


def test_moderators_see_new_reports_arrive(layer) -> None:  # type: ignore[no-untyped-def]
    work = build_open_work("en")
    moderator = create_user(username="mod", role=Role.MODERATOR)
    reported = Message.objects.get(tree=work.growing_root.tree, author=work.users["bea"])
    cookie = session_cookie(moderator)

    async def scenario() -> dict:
        feed = socket("/ws/moderation/", cookie)
        connected, _ = await feed.connect()
        assert connected
        # The report is made by a request thread (synchronous code), as in production.
        from channels.db import database_sync_to_async

        await database_sync_to_async(report_message)(
            message=reported, reporter=work.users["cem"], reason="incorrect", text="wrong"
        )
        event = await feed.receive_json_from(timeout=5)
        await feed.disconnect()
        return event

    event = run(scenario)
    assert event["type"] == "report"
    assert event["message_id"] == str(reported.id)
    assert event["open_reports"] == 1
    assert "wrong" in event["html"]
    assert reported.text[:40] in event["html"]


def test_the_moderation_feed_refuses_volunteers_and_strangers(layer) -> None:  # type: ignore[no-untyped-def]
    cookie = session_cookie(create_user(username="vol"))

    async def scenario() -> tuple:
        refused = socket("/ws/moderation/", cookie)
        connected, code = await refused.connect()
        anonymous = WebsocketCommunicator(
            application, "/ws/moderation/", headers=[(b"origin", b"http://localhost")]
        )
        anonymous_connected, _ = await anonymous.connect()
        foreign = WebsocketCommunicator(
            application, "/ws/tasks/", headers=[(b"origin", b"https://evil.example")]
        )
        foreign_connected, _ = await foreign.connect()
        return connected, code, anonymous_connected, foreign_connected

    connected, code, anonymous_connected, foreign_connected = run(scenario)
    assert (connected, code) == (False, 4403)
    assert anonymous_connected is False
    assert foreign_connected is False


def test_a_volunteers_counts_update_when_others_take_work(layer) -> None:  # type: ignore[no-untyped-def]
    work = build_open_work("en")
    watcher = create_user(username="watcher", languages=["en"])
    other = create_user(username="other", languages=["en"])
    cookie = session_cookie(watcher)

    async def scenario() -> tuple[dict, dict]:
        board = socket("/ws/tasks/", cookie)
        connected, _ = await board.connect()
        assert connected
        first = await board.receive_json_from(timeout=5)
        from channels.db import database_sync_to_async

        await database_sync_to_async(tasks.request_task)(
            user=other, task_type="label_initial_prompt", lang="en"
        )
        second = await board.receive_json_from(timeout=5)
        await board.disconnect()
        return first, second

    first, second = run(scenario)
    assert first["type"] == "counts"
    assert first["counts"]["en"]["label_initial_prompt"] == 1
    # The only prompt to review went to `other`.
    assert second["counts"]["en"]["label_initial_prompt"] == 0
    assert work


def test_live_updates_are_dropped_quietly_when_the_layer_is_down(settings, caplog) -> None:  # type: ignore[no-untyped-def]
    settings.CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {"hosts": ["redis://127.0.0.1:1/0"]},  # nothing listens there
        }
    }
    settings.CHORUS_TREE = dict(QUICK_TREES)
    work = build_open_work("en")
    reporter = work.users["cem"]
    message = Message.objects.get(tree=work.growing_root.tree, author=work.users["bea"])
    report = report_message(message=message, reporter=reporter, reason="spam")
    assert report.pk
    assert "live update" in caplog.text


# A fresh Python, set up as a Celery pool process is when it starts: the Redis layer is
# configured (nothing is dialled) and nothing has built it yet.
POOL_PROCESS_START = """
import sys
import django
django.setup()
from celery import signals
from channels.layers import channel_layers
import backend.celery
before = "default" in channel_layers.backends, "channels_redis.core" in sys.modules
signals.worker_process_init.send(sender=None)
after = "default" in channel_layers.backends, "channels_redis.core" in sys.modules
print(before, after, type(channel_layers["default"]).__name__)
"""


def test_a_pool_process_builds_the_channel_layer_when_it_starts() -> None:
    # Built lazily, it came (about 7 MB with the libraries it loads) during the first job
    # that sent a live update: a step in memory at a random time, and a slower job.
    env = {
        **os.environ,
        "DATABASE_URL": "postgres://nobody@127.0.0.1:1/none",
        "REDIS_URL": "redis://127.0.0.1:1/0",
    }
    started = subprocess.run(  # noqa: S603
        [sys.executable, "-c", POOL_PROCESS_START],
        cwd=PROJECT_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert started.returncode == 0, started.stderr
    assert started.stdout.split() == ["(False,", "False)", "(True,", "True)", "RedisChannelLayer"]


def test_a_layer_that_cannot_be_built_does_not_stop_a_pool_process(
    settings, caplog, monkeypatch
) -> None:  # type: ignore[no-untyped-def]
    settings.CHANNEL_LAYERS = {"default": {"BACKEND": "nowhere.NoLayer"}}
    monkeypatch.setattr(live, "_unbuildable_logged", False)
    live.load_channel_layer()
    assert "default" not in channel_layers.backends
    assert "the channel layer cannot be built" in caplog.text


def test_an_event_for_a_layer_that_cannot_be_built_is_dropped_not_raised(
    settings, caplog, monkeypatch
) -> None:  # type: ignore[no-untyped-def]
    # The job or request that caused the event carries on, as when Redis is down.
    settings.CHANNEL_LAYERS = {"default": {"BACKEND": "nowhere.NoLayer"}}
    monkeypatch.setattr(live, "_unbuildable_logged", False)
    live._send("moderation", {"type": "report.created"})
    live._send("moderation", {"type": "report.created"})
    assert caplog.text.count("the channel layer cannot be built") == 1
