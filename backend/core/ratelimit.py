"""Rate limits: fixed-window counters in the default cache, per user, per IP, per account.

Each limited action has a scope ("task_request", "login", ...) with up to three rates in
settings.CHORUS_RATELIMITS, keyed by kind:
  user     per signed-in user (ignored for anonymous requests)
  ip       per client address (an IPv6 client counts by its /64 network)
  anon     per client address, for anonymous requests only
  account  per account named in a form (failed logins, password resets)
A request over any of its scope's rates is refused with the seconds until its window ends.

The counters live in the Django "default" cache: Redis in production, so every web process
shares them. cache.add + cache.incr are atomic there (SET NX, INCRBY), so concurrent requests
cannot overshoot. When the cache fails (Redis down or unreachable), counting moves to this
process's memory for FALLBACK_SECONDS before the cache is tried again: each process then
limits on its own (a client spread over N processes may get up to N times a rate), which is
degraded but never unlimited, and never an error for the client.

Views declare what they limit: DRF views with `rate_scopes` (backend/core/throttling.py),
page form posts in PAGE_SCOPES (RateLimitMiddleware), the chat socket in its consumer.
"""

from __future__ import annotations

import hashlib
import ipaddress
import logging
import math
import re
import threading
import time
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.core.cache import cache, caches

from backend.core.cache import FallbackRedisCache

log = logging.getLogger(__name__)

KINDS = ("user", "ip", "anon", "account")
# After a cache error, count in process memory this long before trying the cache again, so
# a dead Redis costs one failed connection per process every few seconds, not per request.
FALLBACK_SECONDS = 5.0

_UNITS = {
    "s": 1,
    "sec": 1,
    "second": 1,
    "m": 60,
    "min": 60,
    "minute": 60,
    "h": 3600,
    "hour": 3600,
    "d": 86400,
    "day": 86400,
}
_RATE = re.compile(r"^\s*(\d+)\s*/\s*(\d*)\s*([a-z]+?)s?\s*$")


@dataclass(frozen=True)
class Rate:
    """`count` requests per `seconds`."""

    count: int
    seconds: int

    @classmethod
    def parse(cls, text: str) -> Rate | None:
        """Parse "30/min", "5/5min", "1000/day"; "" or "off" is no limit. Raises ValueError."""
        if text.strip().lower() in ("", "off", "none"):
            return None
        match = _RATE.match(text.lower())
        if not match or match.group(3) not in _UNITS:
            raise ValueError(
                f"{text!r} is not a rate: write COUNT/UNIT, e.g. 30/min, 5/5min, 1000/day "
                f"(units: {', '.join(sorted(set(_UNITS)))}), or off"
            )
        count, multiple, unit = int(match.group(1)), int(match.group(2) or 1), match.group(3)
        if multiple == 0:
            raise ValueError(f"{text!r} is not a rate: its period is zero (write COUNT/UNIT)")
        return cls(count=count, seconds=multiple * _UNITS[unit])


def rates_of(scope: str) -> dict[str, Rate]:
    """The scope's rates by kind, from settings; an unknown scope has none."""
    configured: dict[str, str] = settings.CHORUS_RATELIMITS.get(scope, {})
    rates = {kind: Rate.parse(text) for kind, text in configured.items()}
    return {kind: rate for kind, rate in rates.items() if rate is not None}


def check_settings() -> list[str]:
    """What is wrong in settings.CHORUS_RATELIMITS (the system check reports it)."""
    problems = []
    for scope, configured in settings.CHORUS_RATELIMITS.items():
        for kind, text in configured.items():
            if kind not in KINDS:
                problems.append(f"{scope}: unknown kind {kind!r} (one of {', '.join(KINDS)})")
                continue
            try:
                Rate.parse(text)
            except ValueError as error:
                problems.append(f"{scope}.{kind}: {error}")
    return problems


# --- Who is asking --------------------------------------------------------------------------


def client_ip_from(remote_addr: str, forwarded_for: str) -> str:
    """The client's address. X-Forwarded-For counts only behind CHORUS_TRUSTED_PROXIES
    proxies: each appends the address it was reached from, so the client's own is the
    trusted count's entry from the right; anything left of it may be forged."""
    proxies: int = settings.CHORUS_TRUSTED_PROXIES
    address = remote_addr
    if proxies > 0 and forwarded_for:
        hops = [hop.strip() for hop in forwarded_for.split(",") if hop.strip()]
        if hops:
            address = hops[-proxies] if len(hops) >= proxies else hops[0]
    try:
        parsed = ipaddress.ip_address(address.strip().strip("[]"))
    except ValueError:
        return remote_addr or "unknown"
    if isinstance(parsed, ipaddress.IPv6Address):
        if parsed.ipv4_mapped is not None:
            return str(parsed.ipv4_mapped)
        # One subscriber holds a whole /64; counting single addresses would let them rotate.
        return str(ipaddress.IPv6Network(f"{parsed}/64", strict=False).network_address)
    return str(parsed)


def client_ip(request: Any) -> str:
    """The address of a Django (or DRF) request's client."""
    meta = request.META
    return client_ip_from(meta.get("REMOTE_ADDR", ""), meta.get("HTTP_X_FORWARDED_FOR", ""))


# --- Counting -------------------------------------------------------------------------------


class _LocalCounters:
    """Per-process fixed-window counters, used while the shared cache is failing."""

    MAX_KEYS = 50_000

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: dict[str, tuple[int, float]] = {}

    def incr(self, key: str, timeout: float, amount: int) -> int:
        now = time.monotonic()
        with self._lock:
            if len(self._counts) > self.MAX_KEYS:
                self._counts = {k: v for k, v in self._counts.items() if v[1] > now}
            count, expires = self._counts.get(key, (0, now + timeout))
            if expires <= now:
                count, expires = 0, now + timeout
            count += amount
            self._counts[key] = (count, expires)
            return count

    def clear(self) -> None:
        with self._lock:
            self._counts.clear()


_local = _LocalCounters()
_cache_failed_at: float | None = None


def reset_fallback() -> None:
    """Forget the in-process counters and any cache failure (tests use this)."""
    global _cache_failed_at
    _cache_failed_at = None
    _local.clear()


def _shared_incr(key: str, timeout: int, amount: int) -> int:
    """Add `amount` to the counter at `key` (created for `timeout` seconds) in the cache."""
    backend = caches["default"]
    if isinstance(backend, FallbackRedisCache):  # Redis, or this process's memory meanwhile
        return backend.count(key, timeout, amount)
    cache.add(key, 0, timeout)
    try:
        return cache.incr(key, amount)
    except ValueError:  # expired between add and incr: start it again
        cache.add(key, 0, timeout)
        return cache.incr(key, amount)


def _incr(key: str, timeout: int, amount: int) -> int:
    global _cache_failed_at
    if _cache_failed_at is not None and time.monotonic() - _cache_failed_at < FALLBACK_SECONDS:
        return _local.incr(key, timeout, amount)
    try:
        count = _shared_incr(key, timeout, amount)
    except Exception:  # any cache failure: limit in this process rather than fail or not limit
        if _cache_failed_at is None:
            log.warning("rate limits: the cache failed; counting in process memory", exc_info=True)
        _cache_failed_at = time.monotonic()
        return _local.incr(key, timeout, amount)
    if _cache_failed_at is not None:
        log.warning("rate limits: the cache answers again")
        _cache_failed_at = None
    return count


def _now() -> float:
    """The clock the windows follow (wall time: every process must agree on it)."""
    return time.time()


def _key(scope: str, kind: str, who: str, window: int) -> str:
    # Hashed: account names and addresses may hold characters a cache key must not.
    digest = hashlib.blake2b(who.encode(), digest_size=12).hexdigest()
    return f"{settings.CHORUS_RATELIMIT_PREFIX}:{scope}:{kind}:{digest}:{window}"


def consume(scope: str, *, user_id: object = None, ip: str = "", account: str = "") -> int:
    """Count one request of `scope` against each of its rates that applies: 0 when it may go
    ahead, else the seconds until the window it overflowed ends (the Retry-After)."""
    return _apply(scope, user_id=user_id, ip=ip, account=account, amount=1)


def peek(scope: str, *, user_id: object = None, ip: str = "", account: str = "") -> int:
    """Like consume, without counting: whether the scope's counters are over their rates."""
    return _apply(scope, user_id=user_id, ip=ip, account=account, amount=0)


def _apply(scope: str, *, user_id: object, ip: str, account: str, amount: int) -> int:
    if not settings.CHORUS_RATELIMITS_ENABLED:
        return 0
    who = {
        "user": str(user_id) if user_id is not None else "",
        "ip": ip,
        "anon": ip if user_id is None else "",
        "account": account.strip().lower(),
    }
    now = _now()
    limited, wait = False, 0
    for kind, rate in rates_of(scope).items():
        if not who[kind]:
            continue
        window = int(now // rate.seconds)
        # The key lives a second past its window's end whenever it was made, so it never
        # expires while its window is counting (Django's incr is EXISTS then INCRBY).
        count = _incr(_key(scope, kind, who[kind], window), rate.seconds + 1, amount)
        if count > rate.count or (amount == 0 and count >= rate.count):
            limited = True
            wait = max(wait, math.ceil((window + 1) * rate.seconds - now))
    return max(wait, 1) if limited else 0
