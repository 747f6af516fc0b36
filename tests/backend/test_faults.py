"""Fault injection with real services (issue 7, "Reliability").

Each test breaks one real service on purpose and checks what a user relies on:
- Redis stopped: the cache falls back to memory, requests keep working, and it all comes
  back when Redis does (a private redis-server; the machine's Redis is never touched);
- the database connection killed in the middle of a submission: a clean 503, and a retry
  with the same idempotency key stores exactly one message;
- a Celery worker killed in the middle of an export: the job runs again and exactly one
  complete version is published, never a partial one.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator

import pytest

from backend.core.cache import FallbackRedisCache
from tests.backend.faults import PrivateRedis, free_port, redis_server_binary, wait_until


@pytest.fixture
def private_redis(tmp_path) -> Iterator[PrivateRedis]:  # type: ignore[no-untyped-def]
    server = PrivateRedis(redis_server_binary(), tmp_path)
    server.start()
    try:
        yield server
    finally:
        server.stop()


def fallback_cache(url: str, retry_seconds: float = 60.0) -> FallbackRedisCache:
    return FallbackRedisCache(
        url, {"KEY_PREFIX": "faults", "OPTIONS": {"FALLBACK_RETRY_SECONDS": retry_seconds}}
    )


# --- Redis down: the default cache -------------------------------------------------------


def test_the_cache_works_from_memory_when_redis_cannot_be_reached(caplog):
    cache = fallback_cache(f"redis://127.0.0.1:{free_port()}/0")  # nothing listens there
    caplog.set_level(logging.WARNING, logger="backend.core.cache")

    started = time.monotonic()
    assert cache.get("missing") is None
    cache.set("answer", 42)
    assert cache.add("counter", 1)
    assert cache.incr("counter") == 2
    assert cache.get_or_set("computed", lambda: "fresh") == "fresh"
    assert cache.get_many(["answer", "counter"]) == {"answer": 42, "counter": 2}
    for _ in range(200):
        cache.incr("counter")
    assert cache.get("counter") == 202
    assert time.monotonic() - started < 2.0  # no connection attempt per call

    assert not cache.is_using_redis
    warnings = [r for r in caplog.records if "unreachable" in r.getMessage()]
    assert len(warnings) == 1  # once per outage, not once per call


def test_the_cache_goes_back_to_redis_when_it_returns(private_redis, caplog):
    import redis

    caplog.set_level(logging.WARNING, logger="backend.core.cache")
    cache = fallback_cache(private_redis.url, retry_seconds=0.2)
    direct = redis.Redis.from_url(private_redis.url)
    cache.set("before", "in redis")
    assert cache.is_using_redis
    assert direct.dbsize() == 1

    private_redis.stop()
    assert cache.get("before") is None  # a miss, not an error
    cache.set("during", "in memory")
    assert cache.get("during") == "in memory"
    assert not cache.is_using_redis

    private_redis.start()  # a fresh, empty server on the same port
    wait_until(
        lambda: cache.get("anything") is None and cache.is_using_redis,
        timeout=5,
        what="the cache to try Redis again",
    )
    cache.set("after", "in redis again")
    assert direct.get("faults:1:after") is not None
    # What the outage kept in memory is gone: only Redis answers now.
    assert cache.get("during") is None
    messages = [r.getMessage() for r in caplog.records]
    assert sum("unreachable" in m for m in messages) == 1
    assert sum("reachable again" in m for m in messages) == 1
    direct.close()
