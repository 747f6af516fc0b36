"""Shared fixtures. Tests use the PostgreSQL at DATABASE_URL when set, else the embedded one.

CHORUS_REQUIRE_SERVICES=1 (set by .ci/run) turns every skip into a failure, so CI cannot
pass while silently leaving out the tests that need Redis, a browser or the sample data.
"""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

# The assistant's inference servers (a tiny served model, one down, one stalled).
from tests.inference import (  # noqa: F401 (fixtures)
    inference,
    inference_down,
    inference_stalled,
    tiny_server,
)

PROJECT_ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = PROJECT_ROOT.parent / "shared" / "data"


def require_services() -> bool:
    return os.environ.get("CHORUS_REQUIRE_SERVICES", "") not in ("", "0", "false")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):  # type: ignore[no-untyped-def]
    outcome = yield
    report = outcome.get_result()
    if report.skipped and require_services() and not hasattr(report, "wasxfail"):
        report.outcome = "failed"
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else report.longrepr
        report.longrepr = f"skipped, but CHORUS_REQUIRE_SERVICES forbids skips: {reason}"


@pytest.fixture(autouse=True)
def fresh_rate_limits(settings):  # type: ignore[no-untyped-def]
    """Each test counts against rate limits of its own (cache keys under a fresh prefix, no
    in-process counters or cache failure left over), so limits hold within a test but the
    requests of earlier tests in the same minute do not count."""
    from backend.core import ratelimit

    settings.CHORUS_RATELIMIT_PREFIX = f"ratelimit-{uuid.uuid4().hex}"
    ratelimit.reset_fallback()
    yield
    ratelimit.reset_fallback()


@pytest.fixture
def steady_rate_clock(monkeypatch):  # type: ignore[no-untyped-def]
    """The rate limits' clock stopped 20 s into a day (so into every minute and hour too): a
    test's requests never straddle the end of a window (a test about windows moves it)."""
    from backend.core import ratelimit

    clock = [86_400 * 11_575 + 20.0]
    monkeypatch.setattr(ratelimit, "_now", lambda: clock[0])
    return clock


@pytest.fixture
def oasst_sample_path() -> Path:
    path = SHARED_DATA / "oasst_en_100_trees.jsonl"
    if not path.exists():
        pytest.skip(f"the sample data {path} is absent (it lives in ../shared/data)")
    return path


@pytest.fixture
def redis_url() -> str:
    url = os.environ.get("REDIS_URL", "")
    if not url:
        pytest.skip("REDIS_URL is not set: no Redis server to test against")
    return url


def run_async(function, *args):  # type: ignore[no-untyped-def]
    """Run an async test scenario to completion from synchronous test code, in a thread of
    its own: a Playwright browser (sync API) may hold the test thread's event loop."""
    from concurrent.futures import ThreadPoolExecutor

    from asgiref.sync import async_to_sync

    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(async_to_sync(function), *args).result()


def import_settings(**env: str) -> subprocess.CompletedProcess[str]:
    """Import backend.settings in a fresh Python with these environment variables added (a
    database URL that is never dialled stands in when none is set): how a bad setting stops
    a process before it serves anything."""
    full_env = {**os.environ, **env}
    full_env.setdefault("DATABASE_URL", "postgres://nobody@127.0.0.1:1/none")
    return subprocess.run(
        [sys.executable, "-c", "import backend.settings"],
        cwd=PROJECT_ROOT,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
