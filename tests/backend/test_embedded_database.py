"""The database settings: the embedded PostgreSQL of a fresh machine, and DATABASE_URL.

Settings are read once per process, so each case runs Django in a subprocess with the
environment it is about. The embedded case runs even in CI (where DATABASE_URL is set) so
the path `make run` takes on a fresh machine cannot rot unnoticed.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

PROJECT_ROOT = Path(__file__).resolve().parents[2]

# Variables that would point the subprocess at services; a fresh machine has none of them.
SERVICE_VARIABLES = ("DATABASE_URL", "DATABASE_TEST_NAME", "REDIS_URL", "CELERY_BROKER_URL")


def run_django(args: list[str], env: dict[str, str], timeout: float) -> str:
    """Run `python <args>` in the project root and return its stdout; fail with its output."""
    result = subprocess.run(  # noqa: S603  (our own interpreter and fixed arguments)
        [sys.executable, *args],
        cwd=PROJECT_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    assert result.returncode == 0, (
        f"{args[:2]} exited with {result.returncode}\n"
        f"stdout:\n{result.stdout}\nstderr:\n{result.stderr}"
    )
    return result.stdout


def stop_leftover_server(pgdata: Path) -> None:
    """Stop a server still running on pgdata (pgserver stops it when its last user exits;
    this only matters when a subprocess was killed), so its folder can be removed."""
    pidfile = pgdata / "postmaster.pid"
    if not pidfile.exists():
        return
    try:
        pid = int(pidfile.read_text().split()[0])
        os.kill(pid, signal.SIGINT)  # PostgreSQL's "fast" shutdown
    except (ValueError, IndexError, ProcessLookupError, PermissionError):
        return
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.2)


@pytest.fixture
def embedded_pg_dir() -> Iterator[Path]:
    # Short, under /tmp: the server's Unix socket path must stay under ~100 characters.
    folder = Path(tempfile.mkdtemp(prefix="chorus-pg-", dir="/tmp"))
    try:
        yield folder
    finally:
        stop_leftover_server(folder / "pgdata")
        shutil.rmtree(folder, ignore_errors=True)


CREATE_AND_READ_USER = """
import uuid
from django.contrib.auth import get_user_model
from django.db import connection
from backend.core.embedded_db import embedded_database_url

User = get_user_model()
name = f"embedded-check-{uuid.uuid4().hex[:8]}"
User.objects.create_user(username=name, password="not-a-secret", languages=["en"])
user = User.objects.get(username=name)
print("USER", user.username == name, ",".join(user.languages))
print("URL", embedded_database_url())
with connection.cursor() as cursor:
    cursor.execute("SHOW data_directory")
    print("DATA", cursor.fetchone()[0])
"""


@pytest.mark.slow
def test_a_fresh_machine_runs_on_the_embedded_postgresql(embedded_pg_dir: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k not in SERVICE_VARIABLES}
    env["CHORUS_EMBEDDED_PG_DIR"] = str(embedded_pg_dir / "pgdata")
    env["DJANGO_SETTINGS_MODULE"] = "backend.settings"

    run_django(["manage.py", "migrate", "--noinput"], env, timeout=300)
    assert (embedded_pg_dir / "pgdata" / "PG_VERSION").exists()

    # A second process starts the (now stopped) server again on the same data.
    out = run_django(["manage.py", "shell", "-c", CREATE_AND_READ_USER], env, timeout=300)
    lines = dict(line.split(" ", 1) for line in out.splitlines() if " " in line)
    assert lines["USER"] == "True en"

    url = urlsplit(lines["URL"])
    assert url.scheme == "postgres"
    socket_dir = Path(parse_qs(url.query)["host"][0])
    assert socket_dir.resolve().is_relative_to(embedded_pg_dir.resolve()), socket_dir
    # The ORM really talked to that server, not to another PostgreSQL on this machine.
    assert Path(lines["DATA"]).resolve() == (embedded_pg_dir / "pgdata").resolve()


def test_database_url_configures_the_connection() -> None:
    env = {k: v for k, v in os.environ.items() if k not in SERVICE_VARIABLES}
    env |= {
        "DJANGO_SETTINGS_MODULE": "backend.settings",
        "DATABASE_URL": "postgres://u:p@db.example:6543/chorus",
        "DATABASE_POOL_MAX": "3",
        "DATABASE_TEST_NAME": "chorus_test",
    }
    # django.setup() reads settings and loads apps without connecting to the database.
    code = (
        "import json, django; django.setup(); from django.conf import settings; "
        "print(json.dumps(settings.DATABASES['default'], default=str))"
    )

    db = json.loads(run_django(["-c", code], env, timeout=60))

    assert db["ENGINE"] == "django.db.backends.postgresql"
    assert (db["HOST"], db["PORT"], db["NAME"]) == ("db.example", 6543, "chorus")
    assert (db["USER"], db["PASSWORD"]) == ("u", "p")
    assert db["OPTIONS"]["pool"]["max_size"] == 3
    assert db["TEST"]["NAME"] == "chorus_test"
