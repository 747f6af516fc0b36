"""The "default" cache: Redis, falling back to this process's memory while Redis is down.

Rate limits, DRF's throttles and cached figures all go through the default cache, and none
of them is worth failing a volunteer's request for. When a Redis call fails to connect (or
times out), the cache logs one warning for the outage and serves every call from a
per-process LocMemCache; after CHORUS_REDIS_RETRY_SECONDS it tries Redis again, and the
first call that gets through logs the recovery and empties the local copy (what it held
was only this process's view, and may be stale by the next outage).

While Redis is down each process counts on its own: a rate limit of N per minute becomes
N per minute per web process, and a cache miss costs what it costs without a cache.
Errors other than connection errors (a bad command, a serialisation bug) are raised.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from django.core.cache.backends.locmem import LocMemCache
from django.core.cache.backends.redis import RedisCache
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from redis.retry import Retry

log = logging.getLogger(__name__)

# What "Redis is unreachable" looks like through redis-py: refused or reset connections,
# timeouts, a server still loading its data (BusyLoadingError is a ConnectionError).
REDIS_DOWN: tuple[type[Exception], ...] = (RedisConnectionError, RedisTimeoutError, OSError)

# Options of this backend (not redis-py's), taken out of OPTIONS before Redis sees them.
RETRY_OPTION = "FALLBACK_RETRY_SECONDS"


class _Outage:
    """Whether this process found one Redis location down, and until when not to retry."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.down_until = 0.0  # time.monotonic() before which Redis is not tried
        self.is_down = False

    def went_down(self, exc: Exception, *, retry_seconds: float) -> None:
        with self.lock:
            self.down_until = time.monotonic() + retry_seconds
            if not self.is_down:
                self.is_down = True
                log.warning(
                    "Redis cache unreachable (%s: %s); this process uses its own memory "
                    "until Redis answers again (tried every %g s)",
                    type(exc).__name__,
                    exc,
                    retry_seconds,
                )

    def came_back(self, local: LocMemCache) -> None:
        with self.lock:
            if self.is_down:
                self.is_down = False
                local.clear()
                log.warning("Redis cache reachable again; the in-memory fallback is emptied")


_outages: dict[str, _Outage] = {}
_outages_lock = threading.Lock()


def _outage_of(location: str) -> _Outage:
    with _outages_lock:
        return _outages.setdefault(location, _Outage())


class FallbackRedisCache(RedisCache):
    """RedisCache that survives Redis being down (see the module docstring).

    OPTIONS: FALLBACK_RETRY_SECONDS (seconds between attempts to reach Redis again while
    it is down, default 5) and redis-py's connection options; socket_connect_timeout and
    socket_timeout default to 0.5 s so a dead server does not stall requests, and redis-py's
    own retries are off (the back-off here replaces them).
    """

    def __init__(self, server: str, params: dict[str, Any]) -> None:
        params = dict(params)
        options = dict(params.get("OPTIONS") or {})
        self.retry_seconds = float(options.pop(RETRY_OPTION, 5.0))
        options.setdefault("socket_connect_timeout", 0.5)
        options.setdefault("socket_timeout", 0.5)
        options.setdefault("retry", Retry(NoBackoff(), 0))
        params["OPTIONS"] = options
        super().__init__(server, params)
        # Django makes a cache object per thread and per request context, so what an
        # outage means for this process lives in module state, one per Redis location,
        # and the fallback is a LocMemCache by name (LocMemCache shares storage by name).
        self.outage = _outage_of(server)
        local_params = {k: v for k, v in params.items() if k != "OPTIONS"}
        self.local = LocMemCache(f"chorus-redis-fallback:{server}", local_params)

    @property
    def is_using_redis(self) -> bool:
        """False during an outage, until a call gets through to Redis again."""
        return not self.outage.is_down

    def _either(self, on_redis: Callable[[], Any], on_local: Callable[[], Any]) -> Any:
        """`on_redis()`, or `on_local()` while Redis is down (or when this call finds it so)."""
        if time.monotonic() >= self.outage.down_until:
            try:
                result = on_redis()
            except REDIS_DOWN as exc:
                self.outage.went_down(exc, retry_seconds=self.retry_seconds)
            else:
                if self.outage.is_down:
                    self.outage.came_back(self.local)
                return result
        return on_local()

    def _call(self, name: str, *args: Any, **kwargs: Any) -> Any:
        return self._either(
            lambda: getattr(super(FallbackRedisCache, self), name)(*args, **kwargs),
            lambda: getattr(self.local, name)(*args, **kwargs),
        )

    def count(self, key: str, timeout: int, amount: int = 1) -> int:
        """Add `amount` to the integer at `key`, made for `timeout` seconds when absent (rate
        limits). On Redis one round trip and one transaction, SET NX EX then INCRBY, where
        Django's add + incr take three (SET NX, EXISTS, INCRBY); integers are stored bare,
        as Django stores them."""

        def on_redis() -> int:
            full_key = self.make_and_validate_key(key)
            pipe = self._cache.get_client(full_key, write=True).pipeline()
            pipe.set(full_key, 0, ex=timeout, nx=True)
            pipe.incrby(full_key, amount)
            return int(pipe.execute()[1])

        def on_local() -> int:
            self.local.add(key, 0, timeout)
            try:
                return self.local.incr(key, amount)
            except ValueError:  # expired between add and incr: start it again
                self.local.add(key, 0, timeout)
                return self.local.incr(key, amount)

        return int(self._either(on_redis, on_local))

    # Every call of Django's cache API that RedisCache implements; the rest of BaseCache
    # (get_or_set, decr, incr_version, the async methods) is built on these.
    def add(self, *args: Any, **kwargs: Any) -> bool:
        return bool(self._call("add", *args, **kwargs))

    def get(self, *args: Any, **kwargs: Any) -> Any:
        return self._call("get", *args, **kwargs)

    def set(self, *args: Any, **kwargs: Any) -> None:
        self._call("set", *args, **kwargs)

    def touch(self, *args: Any, **kwargs: Any) -> bool:
        return bool(self._call("touch", *args, **kwargs))

    def delete(self, *args: Any, **kwargs: Any) -> bool:
        return bool(self._call("delete", *args, **kwargs))

    def get_many(self, *args: Any, **kwargs: Any) -> dict[str, Any]:
        return dict(self._call("get_many", *args, **kwargs))

    def has_key(self, *args: Any, **kwargs: Any) -> bool:
        return bool(self._call("has_key", *args, **kwargs))

    def incr(self, *args: Any, **kwargs: Any) -> int:
        return int(self._call("incr", *args, **kwargs))

    def set_many(self, *args: Any, **kwargs: Any) -> list[str]:
        return list(self._call("set_many", *args, **kwargs) or [])

    def delete_many(self, *args: Any, **kwargs: Any) -> None:
        self._call("delete_many", *args, **kwargs)

    def clear(self) -> None:
        self._call("clear")
