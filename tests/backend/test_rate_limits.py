"""Rate limits on the API: per user, per address, windows, the count shared by processes
through Redis, and the fallback to per-process counting while the cache is unreachable."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid

import pytest
from django.core.checks import run_checks
from django.test import override_settings
from rest_framework.test import APIClient

from backend.core import ratelimit
from backend.moderation.models import Report
from backend.tasks.models import Task, TaskStatus
from backend.trees.models import Message
from tests.backend.test_api_access import accepted_root, assert_error
from tests.conftest import PROJECT_ROOT

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("steady_rate_clock")]

# A cache whose Redis cannot be reached (nothing listens on port 1).
UNREACHABLE_CACHE = {
    "default": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": "redis://127.0.0.1:1/0",
    }
}


def limit(settings, scope: str, **rates: str) -> None:  # type: ignore[no-untyped-def]
    """Only this scope's rates (the rest of the limits off), for readable counts."""
    settings.CHORUS_RATELIMITS = {scope: rates}


def post(volunteer, path: str, body: dict | None = None, ip: str = "127.0.0.1"):  # type: ignore[no-untyped-def]
    return volunteer.client.post(path, body or {}, format="json", REMOTE_ADDR=ip)


def assert_limited(response) -> int:  # type: ignore[no-untyped-def]
    """A 429 in the API's error format whose Retry-After the body repeats; the seconds."""
    error = assert_error(response, 429, "rate_limited")
    wait = int(response["Retry-After"])
    assert 1 <= wait <= 60
    assert error["retry_after"] == wait
    assert f"retry in {wait} s" in error["message"]
    assert error["fields"] == {}
    return wait


# --- The rates ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "rate"),
    [
        ("30/min", ratelimit.Rate(30, 60)),
        ("5/5min", ratelimit.Rate(5, 300)),
        ("1000/day", ratelimit.Rate(1000, 86400)),
        (" 2 / 10s ", ratelimit.Rate(2, 10)),
        ("10/hours", ratelimit.Rate(10, 3600)),
        ("off", None),
        ("", None),
    ],
)
def test_a_rate_is_read_as_a_count_per_period(text, rate):
    assert ratelimit.Rate.parse(text) == rate


@pytest.mark.parametrize("text", ["30", "x/min", "30/fortnight", "30/0min", "-1/min"])
def test_a_malformed_rate_is_refused_with_what_to_write(text):
    with pytest.raises(ValueError, match="COUNT/UNIT"):
        ratelimit.Rate.parse(text)


def test_a_malformed_rate_in_settings_fails_the_system_check(settings):
    settings.CHORUS_RATELIMITS = {"login": {"ip": "lots"}, "signup": {"someone": "1/min"}}
    errors = [e for e in run_checks() if e.id == "chorus.E001"]
    assert len(errors) == 2
    assert "login.ip" in errors[0].msg
    assert "unknown kind 'someone'" in errors[1].msg


# --- Client addresses -----------------------------------------------------------------------


def test_a_client_cannot_choose_its_address_with_x_forwarded_for(settings):
    settings.CHORUS_TRUSTED_PROXIES = 0
    assert ratelimit.client_ip_from("203.0.113.7", "198.51.100.1") == "203.0.113.7"


def test_behind_trusted_proxies_the_client_is_the_entry_they_appended(settings):
    settings.CHORUS_TRUSTED_PROXIES = 1
    # The first entry is the client's own claim; the proxy appended the real address.
    assert ratelimit.client_ip_from("10.0.0.2", "1.2.3.4, 203.0.113.7") == "203.0.113.7"
    settings.CHORUS_TRUSTED_PROXIES = 2
    assert ratelimit.client_ip_from("10.0.0.3", "1.2.3.4, 203.0.113.7, 10.0.0.2") == ("203.0.113.7")
    # Garbage in the header falls back to the connecting address.
    assert ratelimit.client_ip_from("10.0.0.3", "not-an-address, x") == "10.0.0.3"


def test_an_ipv6_client_counts_by_its_network():
    assert ratelimit.client_ip_from("2001:db8:1:2:aaaa::1", "") == "2001:db8:1:2::"
    assert ratelimit.client_ip_from("2001:db8:1:2:bbbb::9", "") == "2001:db8:1:2::"
    assert ratelimit.client_ip_from("::ffff:192.0.2.1", "") == "192.0.2.1"


# --- Each limited endpoint ------------------------------------------------------------------


def _request_task(volunteer, ip):  # type: ignore[no-untyped-def]
    return post(volunteer, "/api/v1/tasks/", {"type": "initial_prompt", "lang": "en"}, ip)


def _submit(volunteer, ip):  # type: ignore[no-untyped-def]
    return post(volunteer, f"/api/v1/tasks/{uuid.uuid4()}/submit/", {"text": "hi"}, ip)


def _report(volunteer, ip):  # type: ignore[no-untyped-def]
    return post(volunteer, f"/api/v1/messages/{uuid.uuid4()}/reports/", {"reason": "spam"}, ip)


def _chat_message(volunteer, ip):  # type: ignore[no-untyped-def]
    return post(volunteer, f"/api/v1/chats/{uuid.uuid4()}/messages/", {"text": "hi"}, ip)


def _chat_report(volunteer, ip):  # type: ignore[no-untyped-def]
    path = f"/api/v1/chats/{uuid.uuid4()}/messages/{uuid.uuid4()}/report/"
    return post(volunteer, path, {"reason": "spam"}, ip)


ENDPOINTS = [
    ("task_request", _request_task),
    ("task_submit", _submit),
    ("report", _report),
    ("chat_message", _chat_message),
    ("report", _chat_report),
]


@pytest.mark.parametrize(("scope", "send"), ENDPOINTS)
def test_each_limited_endpoint_refuses_a_user_over_the_rate_and_no_one_else(
    settings, volunteer, scope, send
):
    limit(settings, scope, user="3/min")
    bob, carol = volunteer(), volunteer()
    for _ in range(3):
        assert send(bob, "127.0.0.1").status_code != 429
    assert_limited(send(bob, "127.0.0.1"))
    assert_limited(send(bob, "10.9.9.9"))  # a new address does not help a user
    assert send(carol, "127.0.0.1").status_code != 429


@pytest.mark.parametrize(("scope", "send"), ENDPOINTS)
def test_each_limited_endpoint_refuses_an_address_over_the_rate_and_no_other(
    settings, volunteer, scope, send
):
    limit(settings, scope, ip="2/min")
    bob, carol = volunteer(), volunteer()
    assert send(bob, "10.0.0.1").status_code != 429
    assert send(carol, "10.0.0.1").status_code != 429
    assert_limited(send(bob, "10.0.0.1"))
    assert_limited(send(carol, "10.0.0.1"))  # the whole address, whoever signs in
    assert send(bob, "10.0.0.2").status_code != 429


def test_a_forged_x_forwarded_for_does_not_escape_the_address_limit(settings, bob):
    limit(settings, "task_request", ip="1/min")
    assert _request_task(bob, "10.0.0.1").status_code == 201
    forged = bob.client.post(
        "/api/v1/tasks/",
        {"type": "initial_prompt", "lang": "en"},
        format="json",
        REMOTE_ADDR="10.0.0.1",
        HTTP_X_FORWARDED_FOR="192.0.2.55",
    )
    assert_limited(forged)


def test_unlimited_endpoints_and_methods_are_not_counted(settings, bob):
    limit(settings, "task_request", user="1/min")
    for _ in range(3):
        assert bob.get("/api/v1/me/").status_code == 200
        assert bob.get("/api/v1/tasks/availability/", lang="en").status_code == 200
    assert _request_task(bob, "127.0.0.1").status_code == 201


def test_a_refused_task_request_leases_nothing(settings, bob):
    limit(settings, "task_request", user="1/min")
    assert _request_task(bob, "127.0.0.1").status_code == 201
    assert_limited(_request_task(bob, "127.0.0.1"))
    assert Task.objects.filter(user=bob.user).count() == 1


def test_a_refused_submission_stores_nothing_and_the_task_stays_open(settings, bob):
    limit(settings, "task_submit", user="1/min")
    first = bob.request_task("initial_prompt").json()
    second = bob.request_task("initial_prompt").json()
    assert bob.submit(first["id"], text="A first prompt about gardening").status_code == 201
    assert_limited(bob.submit(second["id"], text="A second prompt about the sea"))
    assert Task.objects.get(pk=second["id"]).status == TaskStatus.LEASED
    assert not Message.objects.filter(text="A second prompt about the sea").exists()


def test_a_refused_report_is_not_stored(settings, bob):
    limit(settings, "report", user="1/min")
    message = accepted_root()
    path = f"/api/v1/messages/{message.id}/reports/"
    assert post(bob, path, {"reason": "spam"}).status_code == 201
    Report.objects.update(resolved_at="2020-01-01T00:00:00Z")  # so a second would be allowed
    assert_limited(post(bob, path, {"reason": "spam"}))
    assert Report.objects.count() == 1


def test_the_window_ends_when_retry_after_said(settings, bob, steady_rate_clock):
    limit(settings, "task_request", user="2/min")
    clock = steady_rate_clock
    clock[0] -= 7.5  # 12.5 s into a minute
    assert _request_task(bob, "127.0.0.1").status_code == 201
    assert _request_task(bob, "127.0.0.1").status_code == 201
    assert assert_limited(_request_task(bob, "127.0.0.1")) == 48  # ceil(60 - 12.5)
    clock[0] += 47
    assert assert_limited(_request_task(bob, "127.0.0.1")) == 1
    clock[0] += 1
    assert _request_task(bob, "127.0.0.1").status_code == 201


def test_switched_off_nothing_is_limited(settings, bob):
    limit(settings, "task_request", user="1/min", ip="1/min")
    settings.CHORUS_RATELIMITS_ENABLED = False
    for _ in range(3):
        assert _request_task(bob, "127.0.0.1").status_code == 201


def test_the_api_ceiling_counts_every_request_of_a_user(settings, bob):
    settings.CHORUS_RATELIMITS = {"api": {"user": "2/min", "anon": "1/min"}}
    assert bob.get("/api/v1/me/").status_code == 200
    assert bob.get("/api/v1/me/stats/").status_code == 200
    assert_limited(bob.get("/api/v1/leaderboard/"))
    # Anonymous callers are counted by address where they are let in (the schema).
    anonymous = APIClient()
    assert anonymous.get("/api/schema/", REMOTE_ADDR="10.0.0.1").status_code == 200
    refused = anonymous.get("/api/schema/", REMOTE_ADDR="10.0.0.1")
    assert refused.status_code == 429  # in the schema's own format (YAML)
    assert int(refused["Retry-After"]) == 40
    assert anonymous.get("/api/schema/", REMOTE_ADDR="10.0.0.2").status_code == 200


# --- Shared by processes, and when the cache fails ------------------------------------------


@pytest.mark.slow  # a second Python process starting Django
def test_two_processes_on_one_redis_share_the_count(settings, redis_url, monkeypatch):
    """A second Python process (its own cache client and connections) counts against the
    same limit as this one. Both follow the real clock: a day's window, so the test does
    not straddle two."""
    limit(settings, "task_request", user="3/day")
    monkeypatch.setattr(ratelimit, "_now", time.time)
    assert ratelimit.consume("task_request", user_id="shared-user") == 0
    script = (
        "import sys, django\n"
        "django.setup()\n"
        "from django.conf import settings\n"
        "settings.CHORUS_RATELIMIT_PREFIX = sys.argv[1]\n"
        "settings.CHORUS_RATELIMITS = {'task_request': {'user': '3/day'}}\n"
        "from backend.core import ratelimit\n"
        "print([ratelimit.consume('task_request', user_id='shared-user') for _ in range(3)])\n"
    )
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "backend.settings",
        "REDIS_URL": redis_url,
        # Settings only parse it: the script never connects to a database.
        "DATABASE_URL": os.environ.get("DATABASE_URL") or "postgres://nobody@127.0.0.1:1/none",
    }
    done = subprocess.run(  # noqa: S603 (our own interpreter and script)
        [sys.executable, "-c", script, settings.CHORUS_RATELIMIT_PREFIX],
        cwd=PROJECT_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    other_process = eval(done.stdout.strip().splitlines()[-1])  # noqa: S307 (a list of ints)
    assert other_process[:2] == [0, 0]
    assert other_process[2] > 0  # the fourth request of the user, counted over both
    assert ratelimit.consume("task_request", user_id="shared-user") > 0


def test_with_the_cache_unreachable_requests_are_answered_and_still_limited(settings, bob):
    limit(settings, "task_request", user="2/min")
    with override_settings(CACHES=UNREACHABLE_CACHE):
        assert _request_task(bob, "127.0.0.1").status_code == 201
        assert _request_task(bob, "127.0.0.1").status_code == 201
        assert_limited(_request_task(bob, "127.0.0.1"))
        assert Task.objects.filter(user=bob.user).count() == 2


def test_the_shared_cache_is_tried_again_after_a_failure(settings, monkeypatch):
    limit(settings, "task_request", user="1/min")
    with override_settings(CACHES=UNREACHABLE_CACHE):
        assert ratelimit.consume("task_request", user_id="u1") == 0
        assert ratelimit.consume("task_request", user_id="u1") > 0  # counted in memory
    monkeypatch.setattr(ratelimit, "FALLBACK_SECONDS", 0.0)
    # The cache answers again: counting goes back to it (a fresh count there).
    assert ratelimit.consume("task_request", user_id="u2") == 0
    assert ratelimit.consume("task_request", user_id="u2") > 0
    from django.core.cache import cache

    window = int(ratelimit._now() // 60)  # the steady clock
    assert cache.get(ratelimit._key("task_request", "user", "u2", window)) == 2
