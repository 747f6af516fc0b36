"""API keys: made and listed by their owner, the whole key shown once and stored only as a
hash, revocable with immediate effect; whatever a key does is recorded as the acting user's
and the key's."""

from __future__ import annotations

import re
import uuid

import pytest
from django.test import Client
from rest_framework.test import APIClient

from backend.accounts.models import ApiClient, Role
from backend.accounts.services import (
    MAX_LIVE_KEYS,
    create_api_client,
    create_user,
    hash_api_key,
    revoke_api_client,
)
from backend.moderation.models import Action, AuditEntry, Report
from backend.tasks.models import Task
from backend.trees.models import Message, Reaction, Review

pytestmark = pytest.mark.django_db

PASSWORD = "a long test password 42"


def assert_error(response, status: int, code: str | None = None) -> dict:  # type: ignore[no-untyped-def]
    assert response.status_code == status, response.content
    error = response.json()["error"]
    assert set(error) == {"code", "message", "fields"}
    if code:
        assert error["code"] == code
    return error


def with_key(key: str, **headers: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {key}", **headers)
    return client


@pytest.fixture
def ada():  # type: ignore[no-untyped-def]
    return create_user(username="ada", password=PASSWORD, accepted_terms_version=1)


@pytest.fixture
def signed_in(ada) -> APIClient:  # type: ignore[no-untyped-def]
    client = APIClient()
    client.force_login(ada)
    return client


# --- Through the API -------------------------------------------------------------------------


def test_a_volunteer_makes_a_key_sees_it_once_and_it_works(ada, signed_in) -> None:  # type: ignore[no-untyped-def]
    made = signed_in.post("/api/v1/me/keys/", {"name": "my review bot"}, format="json")
    assert made.status_code == 201
    assert made["Cache-Control"] == "no-store"
    body = made.json()
    key = body["key"]
    assert re.fullmatch(r"chorus_[0-9a-f]{12}_[\w-]{43}", key)
    assert body["prefix"] == key.split("_")[1]
    assert body["name"] == "my review bot"
    assert body["revoked_at"] is None
    assert body["can_act_for_users"] is False

    # Stored as a hash only: the row holds nothing from which the key could be read.
    row = ApiClient.objects.get(pk=body["id"])
    assert row.key_hash == hash_api_key(key)
    secret = key.split("_", 2)[2]
    assert all(secret not in str(value) for value in row.__dict__.values())

    # Listed by prefix, never again whole.
    listed = signed_in.get("/api/v1/me/keys/").json()
    assert [item["prefix"] for item in listed] == [body["prefix"]]
    assert "key" not in listed[0]
    assert secret not in signed_in.get("/api/v1/me/keys/").content.decode()

    me = with_key(key).get("/api/v1/me/")
    assert me.status_code == 200
    assert me.json()["username"] == "ada"


def test_a_key_cannot_make_list_or_revoke_keys(ada) -> None:  # type: ignore[no-untyped-def]
    client, key = create_api_client(owner=ada, name="bot")
    api = with_key(key)
    assert_error(api.post("/api/v1/me/keys/", {"name": "another"}, format="json"), 403)
    assert_error(api.get("/api/v1/me/keys/"), 403)
    assert_error(api.delete(f"/api/v1/me/keys/{client.pk}/"), 403)
    assert ApiClient.objects.filter(owner=ada).count() == 1


def test_key_management_needs_a_sign_in() -> None:
    assert_error(APIClient().get("/api/v1/me/keys/"), 401)
    assert_error(APIClient().post("/api/v1/me/keys/", {"name": "x"}, format="json"), 401)


@pytest.mark.parametrize(
    ("body", "field"),
    [({}, "name"), ({"name": "   "}, "name"), ({"name": "x" * 101}, "name"), ([], None)],
)
def test_a_bad_key_request_is_refused_with_the_error_format(signed_in, body, field) -> None:  # type: ignore[no-untyped-def]
    error = assert_error(signed_in.post("/api/v1/me/keys/", body, format="json"), 400)
    if field:
        assert field in error["fields"]
    assert not ApiClient.objects.exists()


def test_live_keys_per_person_are_limited(ada, signed_in) -> None:  # type: ignore[no-untyped-def]
    for n in range(MAX_LIVE_KEYS):
        create_api_client(owner=ada, name=f"bot {n}")
    assert_error(signed_in.post("/api/v1/me/keys/", {"name": "one more"}, format="json"), 409)
    revoke_api_client(client=ApiClient.objects.filter(owner=ada).first())  # type: ignore[arg-type]
    assert (
        signed_in.post("/api/v1/me/keys/", {"name": "one more"}, format="json").status_code == 201
    )


def test_a_revoked_key_is_refused_at_once(ada, signed_in) -> None:  # type: ignore[no-untyped-def]
    client, key = create_api_client(owner=ada, name="bot")
    api = with_key(key)
    assert api.get("/api/v1/me/").status_code == 200
    revoked = signed_in.delete(f"/api/v1/me/keys/{client.pk}/")
    assert revoked.status_code == 200
    assert revoked.json()["revoked_at"] is not None
    error = assert_error(api.get("/api/v1/me/"), 401)
    assert "revoked" in error["message"]
    # Revoking again changes nothing; the list shows when it was revoked.
    assert signed_in.delete(f"/api/v1/me/keys/{client.pk}/").json() == revoked.json()
    assert signed_in.get("/api/v1/me/keys/").json()[0]["revoked_at"] == revoked.json()["revoked_at"]


def test_nobody_revokes_or_sees_someone_elses_key(ada) -> None:  # type: ignore[no-untyped-def]
    client, key = create_api_client(owner=ada, name="bot")
    eve = APIClient()
    eve.force_login(create_user(username="eve", password=PASSWORD))
    assert eve.get("/api/v1/me/keys/").json() == []
    assert_error(eve.delete(f"/api/v1/me/keys/{client.pk}/"), 404)
    assert_error(eve.delete(f"/api/v1/me/keys/{uuid.uuid4()}/"), 404)
    assert with_key(key).get("/api/v1/me/").status_code == 200


@pytest.mark.parametrize(
    "header",
    [
        "Bearer chorus_nope",  # malformed
        "Bearer chorus_{prefix}_{wrong}",  # the right prefix, a wrong secret
        "Bearer chorus_000000000000_{wrong}",  # no such key
    ],
)
def test_a_wrong_key_is_refused_with_the_error_format(ada, header: str) -> None:  # type: ignore[no-untyped-def]
    client, key = create_api_client(owner=ada, name="bot")
    wrong = key.split("_", 2)[2][::-1]
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=header.format(prefix=client.key_prefix, wrong=wrong))
    assert_error(api.get("/api/v1/me/"), 401)


def test_the_key_of_a_closed_account_is_refused(ada) -> None:  # type: ignore[no-untyped-def]
    _, key = create_api_client(owner=ada, name="bot")
    ada.is_active = False
    ada.save()
    assert_error(with_key(key).get("/api/v1/me/"), 401)


# --- On the settings page --------------------------------------------------------------------


def test_the_settings_page_makes_shows_once_lists_and_revokes_keys(ada) -> None:  # type: ignore[no-untyped-def]
    page = Client()
    page.force_login(ada)
    made = page.post("/settings/keys/", {"name": "my bot"})
    assert made.status_code == 200
    assert made["Cache-Control"] == "no-store"
    html = made.content.decode()
    key = re.search(r'id="new-key" class="key" value="(chorus_[^"]+)"', html)
    assert key
    key_text = key.group(1)
    client = ApiClient.objects.get(owner=ada)
    assert client.name == "my bot"
    assert with_key(key_text).get("/api/v1/me/").status_code == 200

    # Never again: the page lists the prefix only.
    later = page.get("/settings/").content.decode()
    assert key_text not in later
    assert f"chorus_{client.key_prefix}_" in later

    revoked = page.post(f"/settings/keys/{client.pk}/revoke/", follow=True)
    assert "was revoked" in revoked.content.decode()
    assert_error(with_key(key_text).get("/api/v1/me/"), 401)
    # Someone else cannot revoke it (and a GET does nothing).
    other = Client()
    other.force_login(create_user(username="eve", password=PASSWORD))
    assert other.post(f"/settings/keys/{client.pk}/revoke/").status_code == 404
    assert page.get(f"/settings/keys/{client.pk}/revoke/").status_code == 405


def test_the_settings_page_refuses_a_nameless_key(ada) -> None:  # type: ignore[no-untyped-def]
    page = Client()
    page.force_login(ada)
    refused = page.post("/settings/keys/", {"name": ""})
    assert refused.status_code == 400
    assert 'id="new-key"' not in refused.content.decode()
    assert not ApiClient.objects.exists()


# --- Attribution -----------------------------------------------------------------------------


def test_work_done_through_a_key_records_the_user_and_the_key(  # type: ignore[no-untyped-def]
    small_trees, bob, carol, volunteer
) -> None:
    bob_key = ApiClient.objects.get(owner=bob.user)
    carol_key = ApiClient.objects.get(owner=carol.user)

    task = bob.request_task("initial_prompt").json()
    done = bob.submit(task["id"], text="How do I keep basil alive?", key="k1")
    assert done.status_code == 201, done.content
    prompt = Message.objects.get(pk=done.json()["result_id"])
    assert (prompt.author, prompt.api_client) == (bob.user, bob_key)
    assert Task.objects.get(pk=task["id"]).api_client == bob_key

    review_task = carol.request_task("label_initial_prompt").json()
    labels = {"spam": 0, "lang_mismatch": 0, "quality": 0.75}
    assert carol.submit(review_task["id"], labels=labels).status_code == 201
    review = Review.objects.get(message=prompt)
    assert (review.user, review.api_client) == (carol.user, carol_key)
    dan = volunteer()  # the second review accepts the prompt: now everyone sees it
    assert dan.submit(dan.request_task("label_initial_prompt").json()["id"], labels=labels)

    assert (
        carol.post(f"/api/v1/messages/{prompt.pk}/reactions/", {"emoji": "+1"}).status_code == 201
    )
    reaction = Reaction.objects.get(message=prompt)
    assert (reaction.user, reaction.api_client) == (carol.user, carol_key)

    reported = carol.post(f"/api/v1/messages/{prompt.pk}/reports/", {"reason": "spam"})
    assert reported.status_code == 201, reported.content
    report = Report.objects.get(message=prompt)
    assert (report.reporter, report.api_client) == (carol.user, carol_key)


def test_the_same_work_on_a_signed_in_session_records_no_key(small_trees, ada) -> None:  # type: ignore[no-untyped-def]
    session = APIClient()
    session.force_login(ada)
    task = session.post("/api/v1/tasks/", {"type": "initial_prompt", "lang": "en"}, format="json")
    done = session.post(
        f"/api/v1/tasks/{task.json()['id']}/submit/",
        {"text": "Why is the sky blue?"},
        format="json",
    )
    assert done.status_code == 201, done.content
    message = Message.objects.get(pk=done.json()["result_id"])
    assert (message.author, message.api_client) == (ada, None)


def test_a_moderator_action_through_a_key_names_the_key_in_the_audit_log(
    small_trees, bob, moderator
) -> None:  # type: ignore[no-untyped-def]
    task = bob.request_task("initial_prompt").json()
    prompt_id = bob.submit(task["id"], text="BUY CHEAP WATCHES").json()["result_id"]
    deleted = moderator.post(f"/api/v1/messages/{prompt_id}/delete/", {"reason": "spam"})
    assert deleted.status_code == 200, deleted.content
    entry = AuditEntry.objects.get(action=Action.MESSAGE_DELETE)
    key = ApiClient.objects.get(owner=moderator.user)
    assert (entry.actor_id, entry.api_client_id, entry.api_client_name) == (
        moderator.user.pk,
        key.pk,
        "test",
    )
    log = moderator.get("/api/v1/moderation/audit/").json()
    rows = log["results"] if isinstance(log, dict) else log
    assert rows[0]["api_client_id"] == str(key.pk)
    assert rows[0]["actor_name"] == moderator.user.username


def test_a_trusted_client_acts_for_the_named_user_and_is_recorded(small_trees, ada) -> None:  # type: ignore[no-untyped-def]
    owner = create_user(username="chatbot-operator", role=Role.VOLUNTEER)
    client, key = create_api_client(owner=owner, name="discord bot", can_act_for_users=True)
    bot = with_key(key, HTTP_X_CHORUS_USER="ada")
    assert bot.get("/api/v1/me/").json()["username"] == "ada"
    task = bot.post("/api/v1/tasks/", {"type": "initial_prompt", "lang": "en"}, format="json")
    assert task.status_code == 201, task.content
    done = bot.post(
        f"/api/v1/tasks/{task.json()['id']}/submit/", {"text": "What is a fern?"}, format="json"
    )
    message = Message.objects.get(pk=done.json()["result_id"])
    assert (message.author, message.api_client) == (ada, client)
    # Someone who does not exist cannot be acted for.
    assert_error(with_key(key, HTTP_X_CHORUS_USER="nobody").get("/api/v1/me/"), 401)


def test_an_ordinary_key_cannot_act_for_someone_else(ada) -> None:  # type: ignore[no-untyped-def]
    owner = create_user(username="mallory")
    _, key = create_api_client(owner=owner, name="bot")
    assert_error(with_key(key, HTTP_X_CHORUS_USER="ada").get("/api/v1/me/"), 403)
    # Naming oneself is fine.
    assert with_key(key, HTTP_X_CHORUS_USER="mallory").get("/api/v1/me/").status_code == 200
