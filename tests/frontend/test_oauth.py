"""OAuth sign-in providers are switched on by settings alone."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.conftest import PROJECT_ROOT

SCRIPT = """
import django
django.setup()
from django.conf import settings
from django.test import Client
print("apps:", "allauth.socialaccount.providers.github" in settings.INSTALLED_APPS)
response = Client().get("/accounts/login/")
page = response.content.decode()
print("button:", "/accounts/github/login/" in page)
# The sign-in form posts here, and Chorus redirects to GitHub: CSP form-action must allow it.
print("form-action:", "https://github.com" in response["Content-Security-Policy"])
"""


def run(**env: str) -> str:
    """The script in a fresh process (settings are read once), on the test database."""
    from django.db import connection

    database = connection.settings_dict
    socket_dir = database.get("OPTIONS", {}).get("host")
    if socket_dir:  # the embedded server
        url = f"postgres://{database['USER']}@/{database['NAME']}?host={socket_dir}"
    else:
        host, port = database["HOST"] or "127.0.0.1", database["PORT"] or 5432
        url = f"postgres://{database['USER']}@{host}:{port}/{database['NAME']}"
    environment = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "backend.settings",
        "DATABASE_URL": url,
        **env,
    }
    done = subprocess.run(  # noqa: S603
        [sys.executable, "-c", SCRIPT],
        cwd=PROJECT_ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return done.stdout


@pytest.mark.django_db
def test_github_sign_in_appears_when_configured() -> None:
    assert run(CHORUS_OAUTH_PROVIDERS="") == "apps: False\nbutton: False\nform-action: False\n"
    configured = run(
        CHORUS_OAUTH_PROVIDERS="github", GITHUB_CLIENT_ID="id", GITHUB_CLIENT_SECRET="secret"
    )
    assert configured == "apps: True\nbutton: True\nform-action: True\n"
