"""The embedded PostgreSQL that runs Chorus when no DATABASE_URL is given.

A fresh machine has no database server; `pgserver` ships PostgreSQL binaries as a wheel and
starts one on a Unix socket inside the data folder. Several processes (uvicorn workers,
manage.py commands, tests) share the same server: pgserver keeps a list of the processes
using it and stops it when the last one exits.
"""

from __future__ import annotations

import os
from functools import cache
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[2]


def data_dir() -> Path:
    """Where the embedded cluster lives: CHORUS_EMBEDDED_PG_DIR, else var/pgdata."""
    return Path(os.environ.get("CHORUS_EMBEDDED_PG_DIR") or PROJECT_ROOT / "var" / "pgdata")


@cache
def embedded_database_url() -> str:
    """Start (or join) the embedded server and return its URL; idempotent per process."""
    import pgserver  # imported lazily: only the embedded path needs it

    path = data_dir()
    path.mkdir(parents=True, exist_ok=True)
    server = pgserver.get_server(path, cleanup_mode="stop")
    # pgserver reports the socket folder as host; use the URL form Django's parser accepts.
    return f"postgres://postgres@/postgres?host={server.pgdata}"
