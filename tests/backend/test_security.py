"""Production settings pass Django's deployment checks; every response carries the security
headers and a Content-Security-Policy the pages work under; cookies are locked down."""

from __future__ import annotations

import os
import re
import secrets
import subprocess
import sys
from pathlib import Path

import pytest
from django.test import Client
from rest_framework.test import APIClient

from backend.accounts.services import create_user
from frontend.markdown import render_markdown
from tests.conftest import PROJECT_ROOT

ENV_EXAMPLE = PROJECT_ROOT / "docker" / ".env.example"
BASE_ENVIRONMENT = ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "PYTHONPATH", "VIRTUAL_ENV")


def read_env_file(path: Path) -> dict[str, str]:
    """KEY=VALUE lines as docker compose reads them (comments and blank lines skipped)."""
    values = {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        key, _, value = line.partition("=")
        values[key.strip()] = value.strip().strip("'\"")
    return values


def database_url() -> str:
    from django.db import connection

    database = connection.settings_dict
    socket_dir = database.get("OPTIONS", {}).get("host")
    if socket_dir:  # the embedded server
        return f"postgres://{database['USER']}@/{database['NAME']}?host={socket_dir}"
    host, port = database["HOST"] or "127.0.0.1", database["PORT"] or 5432
    return f"postgres://{database['USER']}@{host}:{port}/{database['NAME']}"


def check_deploy(**overrides: str) -> subprocess.CompletedProcess[str]:
    """`manage.py check --deploy` in a fresh process with the production environment."""
    # Only what a process needs to start, then production's values: nothing of the test
    # run's own environment (e.g. DJANGO_ALLOW_ASYNC_UNSAFE, set for the browser tests).
    environment = {key: os.environ[key] for key in BASE_ENVIRONMENT if key in os.environ}
    environment |= read_env_file(ENV_EXAMPLE)
    environment |= {
        "DJANGO_SETTINGS_MODULE": "backend.settings",
        "SECRET_KEY": secrets.token_urlsafe(50),
        "DATABASE_URL": database_url(),
        **overrides,
    }
    return subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=PROJECT_ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


# --- manage.py check --deploy -----------------------------------------------------------


@pytest.mark.slow
def test_the_production_settings_pass_the_deployment_checks() -> None:
    done = check_deploy()
    assert done.returncode == 0, done.stdout + done.stderr
    assert "no issues" in done.stdout


@pytest.mark.slow
@pytest.mark.parametrize(
    ("overrides", "complaint"),
    [
        ({"DEBUG": "true"}, "security.W018"),
        ({"SECRET_KEY": "django-insecure-chorus-local-development-key-change-me"}, "W009"),
    ],
)
def test_the_deployment_checks_fail_on_an_unsafe_production_setting(
    overrides: dict[str, str], complaint: str
) -> None:
    done = check_deploy(**overrides)
    assert done.returncode != 0
    assert complaint in done.stdout + done.stderr


def test_every_security_setting_has_a_production_value_in_the_env_example() -> None:
    production = read_env_file(ENV_EXAMPLE)
    assert production["SECURE_SSL_REDIRECT"] == "true"
    assert int(production["SECURE_HSTS_SECONDS"]) >= 31536000
    for flag in ("SESSION_COOKIE_SECURE", "CSRF_COOKIE_SECURE", "SECURE_HSTS_PRELOAD"):
        assert production[flag] == "true", flag


# --- Headers ---------------------------------------------------------------------------------


def policy(response) -> dict[str, list[str]]:  # type: ignore[no-untyped-def]
    header = response["Content-Security-Policy"]
    directives = {}
    for part in header.split(";"):
        name, *sources = part.split()
        directives[name] = sources
    return directives


def assert_strict_policy(response) -> None:  # type: ignore[no-untyped-def]
    csp = policy(response)
    assert csp["default-src"] == ["'self'"]
    assert csp["script-src"] == ["'self'"]
    assert csp["style-src"] == ["'self'"]
    assert csp["frame-ancestors"] == ["'none'"]
    assert csp["object-src"] == ["'none'"]
    assert csp["base-uri"] == ["'none'"]
    assert csp["form-action"] == ["'self'"]
    assert csp["img-src"] == ["'self'"]
    # The live pages' WebSockets: the same host, spelled out for older browsers.
    assert csp["connect-src"] == ["'self'", "ws://testserver"]
    assert not any("unsafe" in source for sources in csp.values() for source in sources)


@pytest.mark.django_db
@pytest.mark.parametrize("path", ["/", "/accounts/login/", "/accounts/signup/", "/guidelines/"])
def test_pages_carry_the_content_security_policy_and_security_headers(path: str) -> None:
    response = Client().get(path)
    assert response.status_code == 200
    assert_strict_policy(response)
    assert response["X-Frame-Options"] == "DENY"
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Referrer-Policy"] == "same-origin"
    assert response["Cross-Origin-Opener-Policy"] == "same-origin"


@pytest.mark.django_db
def test_api_answers_and_errors_carry_the_policy_too() -> None:
    user = create_user(username="sam", password="pw")
    client = APIClient()
    assert_strict_policy(client.get("/api/v1/me/"))  # 401
    client.force_authenticate(user)
    ok = client.get("/api/v1/me/")
    assert ok.status_code == 200
    assert_strict_policy(ok)
    assert ok["X-Frame-Options"] == "DENY"
    missing = Client().get("/no-such-page/")
    assert missing.status_code == 404
    assert_strict_policy(missing)


@pytest.mark.django_db
def test_an_https_request_gets_hsts_and_a_wss_socket_origin(settings) -> None:  # type: ignore[no-untyped-def]
    settings.SECURE_HSTS_SECONDS = 31536000
    settings.SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    settings.SECURE_HSTS_PRELOAD = True
    response = Client().get("/", secure=True)
    assert response["Strict-Transport-Security"] == ("max-age=31536000; includeSubDomains; preload")
    assert policy(response)["connect-src"] == ["'self'", "wss://testserver"]
    # Plain HTTP never gets HSTS (browsers ignore it there, and it would be a lie).
    assert "Strict-Transport-Security" not in Client().get("/")


@pytest.mark.django_db
def test_behind_the_proxy_http_is_redirected_but_health_checks_are_not(settings) -> None:  # type: ignore[no-untyped-def]
    settings.SECURE_SSL_REDIRECT = True
    settings.SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    plain = Client().get("/guidelines/")
    assert plain.status_code == 301
    assert plain["Location"] == "https://testserver/guidelines/"
    proxied = Client().get("/guidelines/", headers={"X-Forwarded-Proto": "https"})
    assert proxied.status_code == 200
    assert Client().get("/healthz").status_code != 301


@pytest.mark.django_db
def test_the_api_docs_run_without_inline_script() -> None:
    user = create_user(username="dev", password="pw")
    client = Client()
    client.force_login(user)
    page = client.get("/api/docs/")
    assert page.status_code == 200
    html = page.content.decode()
    assert re.findall(r"<script(?![^>]*\bsrc=)", html) == []  # every script is a file
    assert "<style" not in html
    csp = policy(page)
    assert csp["script-src"] == ["'self'"]
    assert csp["img-src"] == ["'self'", "data:"]  # Swagger UI's icons
    script_url = re.search(r'<script src="([^"]*script=[^"]*)"', html)
    assert script_url
    script = client.get(script_url.group(1).replace("&amp;", "&"))
    assert script.status_code == 200
    assert script["Content-Type"].startswith("application/javascript")
    assert "SwaggerUIBundle" in script.content.decode()


@pytest.mark.django_db
def test_a_browser_gets_the_apis_json_and_drfs_html_pages_are_for_development_only() -> None:
    user = create_user(username="dev", password="pw")
    client = Client()
    client.force_login(user)
    page = client.get("/api/v1/me/", HTTP_ACCEPT="text/html,application/xhtml+xml,*/*;q=0.8")
    assert page.status_code == 200
    assert page["Content-Type"] == "application/json"
    assert page.json()["username"] == "dev"
    # With DEBUG on (a developer's machine) the browsable API is there.
    shown = subprocess.run(
        [
            sys.executable,
            "-c",
            "from backend import settings;"
            "print(settings.REST_FRAMEWORK['DEFAULT_RENDERER_CLASSES'][-1])",
        ],
        cwd=PROJECT_ROOT,
        env={**os.environ, "DEBUG": "1", "DATABASE_URL": "postgres://nobody@127.0.0.1:1/none"},
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert shown.stdout.strip() == "rest_framework.renderers.BrowsableAPIRenderer"


# --- Cookies ---------------------------------------------------------------------------------


@pytest.mark.django_db
def test_session_and_csrf_cookies_are_http_only_and_same_site(settings) -> None:  # type: ignore[no-untyped-def]
    settings.SESSION_COOKIE_SECURE = True
    settings.CSRF_COOKIE_SECURE = True
    create_user(username="cora", password="a long test password 42")
    client = Client()
    form = client.get("/accounts/login/")
    csrf = form.cookies["csrftoken"]
    assert (csrf["httponly"], csrf["samesite"], csrf["secure"]) == (True, "Lax", True)
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', form.content.decode())
    assert token
    response = client.post(
        "/accounts/login/",
        {
            "login": "cora",
            "password": "a long test password 42",
            "csrfmiddlewaretoken": token.group(1),
        },
    )
    assert response.status_code == 302
    session = response.cookies["sessionid"]
    assert (session["httponly"], session["samesite"], session["secure"]) == (True, "Lax", True)


# --- Markdown under the policy ---------------------------------------------------------------


def test_aligned_markdown_table_columns_use_classes_not_style_attributes() -> None:
    html = render_markdown("| a | b | c |\n|:-|:-:|-:|\n| 1 | 2 | 3 |")
    assert "style=" not in html
    assert html.count('class="align-left"') == 2
    assert html.count('class="align-center"') == 2
    assert html.count('class="align-right"') == 2
    # Raw HTML stays text: no attribute of the writer's own reaches the page.
    assert "<td class" not in render_markdown('<td class="evil" style="color:red">x</td>')
