"""Rate limits on the pages' forms (login, sign-up, password reset, tasks, reports) and the
chat socket: a friendly 429 page with Retry-After, and nothing changed by a refused post."""

from __future__ import annotations

import re

import pytest
from django.test import Client, override_settings
from django.urls import reverse

from backend.accounts.models import User
from backend.assistant.models import ChatMessage
from backend.moderation.models import Report
from backend.tasks.models import Task, TaskStatus
from backend.trees.models import Message
from tests.backend.test_assistant_chat import a_chat, chat_socket, session_cookie
from tests.backend.test_rate_limits import UNREACHABLE_CACHE
from tests.conftest import run_async
from tests.frontend.conftest import PASSWORD, make_volunteer

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("steady_rate_clock")]


def assert_refused_page(response) -> None:  # type: ignore[no-untyped-def]
    assert response.status_code == 429
    assert response["Retry-After"] == "40"  # the steady clock: 20 s into a minute
    assert "text/html" in response["Content-Type"]
    page = response.content.decode()
    assert "Too many requests" in page
    assert "Please wait 40 seconds" in page


def login(client: Client, login: str, password: str, ip: str = "127.0.0.1"):  # type: ignore[no-untyped-def]
    return client.post(
        reverse("account_login"), {"login": login, "password": password}, REMOTE_ADDR=ip
    )


def test_logins_from_one_address_are_limited_and_a_refused_one_signs_no_one_in(
    settings, newbie: User
) -> None:
    settings.CHORUS_RATELIMITS = {"login": {"ip": "2/min"}}
    assert login(Client(), "newbie", "wrong password").status_code == 200
    assert login(Client(), "newbie", "wrong password").status_code == 200
    client = Client()
    assert_refused_page(login(client, "newbie", PASSWORD))
    assert "_auth_user_id" not in client.session
    # Another address may still log in.
    assert login(client, "newbie", PASSWORD, ip="10.0.0.2").status_code == 302


def test_failed_logins_lock_the_account_for_every_address_until_the_window_ends(
    settings, newbie: User, steady_rate_clock
) -> None:
    settings.CHORUS_RATELIMITS = {"login_failed": {"account": "3/5min"}}
    for n in range(3):
        assert login(Client(), "NewBie", "guess", ip=f"10.0.1.{n}").status_code == 200
    refused = login(Client(), "newbie", PASSWORD, ip="10.0.2.1")
    assert refused.status_code == 429
    assert refused["Retry-After"] == "280"  # the five-minute window began 20 s ago
    # Someone else's account is not affected.
    make_volunteer("other")
    assert login(Client(), "other", PASSWORD, ip="10.0.2.1").status_code == 302
    steady_rate_clock[0] += 280
    assert login(Client(), "newbie", PASSWORD, ip="10.0.2.1").status_code == 302


def test_the_api_login_form_counts_failures_against_the_account_too(settings, newbie: User) -> None:
    settings.CHORUS_RATELIMITS = {"login_failed": {"account": "1/5min"}}
    assert login(Client(), "newbie", "guess").status_code == 200
    form = {"username": "newbie", "password": PASSWORD}
    assert Client().post("/api/auth/login/", form).status_code == 429


def test_sign_ups_from_one_address_are_limited_and_a_refused_one_creates_no_account(
    client: Client, settings
) -> None:
    settings.CHORUS_RATELIMITS = {"signup": {"ip": "1/hour"}}

    def sign_up(name: str, ip: str = "127.0.0.1"):  # type: ignore[no-untyped-def]
        form = {
            "email": f"{name}@example.org",
            "username": name,
            "password1": PASSWORD,
            "password2": PASSWORD,
            "languages": ["en"],
            "accept_terms": "on",
            "accept_data_use": "on",
        }
        return Client().post(reverse("account_signup"), form, REMOTE_ADDR=ip)

    assert sign_up("first").status_code == 302
    refused = sign_up("second")
    assert refused.status_code == 429
    assert refused["Retry-After"] == str(3600 - 20)
    assert not User.objects.filter(username="second").exists()
    assert sign_up("third", ip="10.0.0.3").status_code == 302


def test_password_resets_are_limited_per_address_and_per_account(
    settings, newbie: User, mailoutbox
) -> None:
    settings.CHORUS_RATELIMITS = {"password_reset": {"ip": "3/hour", "account": "1/hour"}}

    def reset(email: str, ip: str):  # type: ignore[no-untyped-def]
        return Client().post(reverse("account_reset_password"), {"email": email}, REMOTE_ADDR=ip)

    assert reset("newbie@example.org", "10.0.0.1").status_code == 302
    assert reset("NEWBIE@example.org", "10.0.0.2").status_code == 429  # the same mailbox
    assert len(mailoutbox) == 1
    assert reset("a@example.org", "10.0.0.3").status_code == 302
    assert reset("b@example.org", "10.0.0.3").status_code == 302
    assert reset("c@example.org", "10.0.0.3").status_code == 302
    assert reset("d@example.org", "10.0.0.3").status_code == 429


def test_a_refused_task_start_leases_nothing(
    settings, open_work, newbie_client: Client, newbie: User
) -> None:
    settings.CHORUS_RATELIMITS = {"task_request": {"user": "1/min"}}
    form = {"type": "initial_prompt", "lang": "en"}
    assert newbie_client.post(reverse("start_task"), form).status_code == 302
    assert_refused_page(newbie_client.post(reverse("start_task"), form))
    assert Task.objects.filter(user=newbie).count() == 1


def test_a_refused_task_submission_stores_nothing_and_the_task_stays_open(
    settings, open_work, newbie_client: Client, newbie: User
) -> None:
    settings.CHORUS_RATELIMITS = {"task_submit": {"user": "1/min"}}
    newbie_client.post(reverse("start_task"), {"type": "initial_prompt", "lang": "en"})
    task = Task.objects.get(user=newbie)
    url = reverse("task", args=[task.id])
    text = "How do tides work?"
    assert newbie_client.post(url, {"text": text, "action": "review", "key": "k"}).status_code == (
        200
    )
    assert_refused_page(newbie_client.post(url, {"text": text, "action": "submit", "key": "k"}))
    assert not Message.objects.filter(author=newbie).exists()
    assert Task.objects.get(pk=task.pk).status == TaskStatus.LEASED
    # The task page itself still opens (only posts are counted).
    assert newbie_client.get(url).status_code == 200


def test_a_refused_report_from_a_page_is_not_stored(
    settings, open_work, newbie_client: Client
) -> None:
    settings.CHORUS_RATELIMITS = {"report": {"user": "0/min"}}
    url = reverse("report", args=[open_work.growing_root.id])
    assert_refused_page(newbie_client.post(url, {"reason": "spam", "text": ""}))
    assert not Report.objects.exists()


def test_a_script_asking_for_json_gets_the_apis_error_format(settings, newbie: User) -> None:
    settings.CHORUS_RATELIMITS = {"login": {"ip": "0/min"}}
    response = Client().post(
        reverse("account_login"),
        {"login": "newbie", "password": PASSWORD},
        headers={"Accept": "application/json"},
    )
    assert response.status_code == 429
    assert response["Retry-After"] == "40"
    error = response.json()["error"]
    assert (error["code"], error["fields"], error["retry_after"]) == ("rate_limited", {}, 40)
    assert re.search(r"wait 40 seconds", error["message"])


def test_with_the_cache_unreachable_login_still_works_and_is_limited(
    settings, newbie: User
) -> None:
    settings.CHORUS_RATELIMITS = {"login": {"ip": "1/min"}}
    with override_settings(CACHES=UNREACHABLE_CACHE):
        assert login(Client(), "newbie", PASSWORD).status_code == 302
        assert_refused_page(login(Client(), "newbie", PASSWORD))


def test_the_refusal_page_speaks_the_readers_language(settings, newbie: User) -> None:
    settings.CHORUS_RATELIMITS = {"login": {"ip": "0/min"}}
    response = Client().post(
        reverse("account_login"),
        {"login": "newbie", "password": PASSWORD},
        headers={"Accept-Language": "de"},
    )
    assert response.status_code == 429
    assert 'lang="de"' in response.content.decode()


@pytest.mark.django_db(transaction=True)
def test_the_chat_socket_refuses_messages_over_the_rate_and_saves_nothing(settings) -> None:
    settings.INFERENCE_URL = ""  # the first message is refused too: the assistant is off
    settings.CHORUS_RATELIMITS = {"chat_message": {"user": "1/min"}}
    chat = a_chat()
    cookie = session_cookie(chat.owner)

    async def scenario() -> list[dict]:
        socket = chat_socket(chat, cookie)
        await socket.connect()
        answers = []
        for _ in range(2):
            await socket.send_json_to({"type": "send", "text": "Hello there"})
            answers.append(await socket.receive_json_from(timeout=30))
        await socket.disconnect()
        return answers

    first, second = run_async(scenario)
    assert first["code"] == "inference_off"
    assert (second["type"], second["code"], second["retry_after"]) == ("error", "rate_limited", 40)
    assert not ChatMessage.objects.exists()
