"""The defects the schema fuzzer (test_api_fuzz.py) found, each pinned by a plain request."""

from __future__ import annotations

import pytest
from django.test import Client

from backend.accounts.models import User
from backend.assistant.models import Chat
from backend.trees.models import Message, MessageRevision
from tests.factories import MessageFactory, UserFactory

pytestmark = pytest.mark.django_db

LIST_PATHS = {
    "/api/v1/trees/": "volunteer",
    "/api/v1/chats/": "volunteer",
    "/api/v1/moderation/messages/": "moderator",
    "/api/v1/moderation/audit/": "moderator",
}


@pytest.fixture
def schema() -> dict:
    response = Client().get("/api/schema/", HTTP_ACCEPT="application/json")
    return response.json()


@pytest.mark.parametrize("path", sorted(LIST_PATHS))
def test_a_paged_list_is_described_as_the_page_it_answers(schema, path, bob, moderator):
    """The schema said these lists answer a JSON array; they answer a page object."""
    operation = schema["paths"][path]["get"]
    ref = operation["responses"]["200"]["content"]["application/json"]["schema"]["$ref"]
    page = schema["components"]["schemas"][ref.rsplit("/", 1)[1]]
    assert page["type"] == "object"
    assert {"count", "results"} <= set(page["required"])
    assert page["properties"]["results"]["type"] == "array"
    names = {p["name"]: p["schema"] for p in operation["parameters"]}
    assert names["limit"]["minimum"] == 1
    assert names["offset"]["minimum"] == 0
    assert "400" in operation["responses"]

    caller = moderator if LIST_PATHS[path] == "moderator" else bob
    body = caller.get(path, limit=1).json()
    assert set(body) == {"count", "next", "previous", "results"}
    assert isinstance(body["results"], list)


@pytest.mark.parametrize("path", sorted(LIST_PATHS))
@pytest.mark.parametrize(
    ("param", "value"),
    [
        ("limit", "ten"),
        ("limit", "0"),
        ("limit", "-5"),
        ("offset", "-1"),
        ("offset", "Ü"),
        ("offset", "١٢"),  # Arabic-Indic digits: int() would take them
        ("offset", str(2**63)),  # past PostgreSQL's bigint: once a 500
    ],
)
def test_a_malformed_limit_or_offset_is_refused_and_named(path, param, value, bob, moderator):
    """DRF ignored a malformed limit or offset and answered another page than asked for."""
    caller = moderator if LIST_PATHS[path] == "moderator" else bob
    response = caller.get(path, **{param: value})
    assert response.status_code == 400, response.content
    error = response.json()["error"]
    assert error["code"] == "invalid_input"
    assert list(error["fields"]) == [param]


def test_limit_and_offset_still_page_through_a_list(bob):
    for n in range(3):
        Chat.objects.create(owner=bob.user, title=f"Chat {n}")
    first = bob.get("/api/v1/chats/", limit=2).json()
    rest = bob.get("/api/v1/chats/", limit=2, offset=2).json()
    assert first["count"] == rest["count"] == 3
    assert len(first["results"]) == 2
    assert len(rest["results"]) == 1
    seen = {c["id"] for c in first["results"]} | {c["id"] for c in rest["results"]}
    assert len(seen) == 3
    # An empty value is an unfilled form field: the default, as for every query parameter.
    assert len(bob.get("/api/v1/chats/", offset="").json()["results"]) == 3


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("patch", "/api/v1/trees/{tree}/settings/", {"settings": "not an object"}),
        ("post", "/api/v1/trees/{tree}/halt/", {"reason": ["not", "a", "text"]}),
        ("post", "/api/v1/trees/{tree}/resume/", {"reason": {"a": 1}}),
        ("post", "/api/v1/messages/{message}/edit/", {}),
        ("post", "/api/v1/messages/{message}/delete/", {"reason": None}),
        ("post", "/api/v1/messages/{message}/undelete/", {"reason": "x" * 5000}),
        ("post", "/api/v1/messages/{message}/reports/resolve/", {"note": 5 * ["x"]}),
        ("post", "/api/v1/users/{user}/ban/", {"reason": "x" * 5000}),
        ("post", "/api/v1/users/{user}/unban/", {}),
        ("post", "/api/v1/users/{user}/purge/", {"reason": None}),
    ],
)
def test_a_volunteer_gets_403_from_a_moderator_action_whatever_the_body(bob, method, path, body):
    """A volunteer's malformed body got a 400 describing the moderators' fields."""
    message = MessageFactory()
    url = path.format(tree=message.tree_id, message=message.pk, user=UserFactory().pk)
    response = getattr(bob.client, method)(url, body, format="json")
    assert response.status_code == 403, response.content
    assert response.json()["error"]["code"] == "permission_denied"


def test_a_stranger_still_gets_401_from_a_moderator_action():
    message = MessageFactory()
    response = Client().post(f"/api/v1/messages/{message.pk}/edit/", {}, "application/json")
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "not_authenticated"


def test_an_edit_reason_of_up_to_1000_characters_is_kept(moderator):
    """The API takes reasons of up to 1000 characters, but the revision kept only 500: 500."""
    message = MessageFactory(review_result=True)
    reason = "r" * 1000
    response = moderator.post(
        f"/api/v1/messages/{message.pk}/edit/", {"text": "A clearer text.", "reason": reason}
    )
    assert response.status_code == 200, response.content
    assert MessageRevision.objects.get(message=message).reason == reason
    assert Message.objects.get(pk=message.pk).text == "A clearer text."


def test_a_ban_reason_of_up_to_1000_characters_is_kept(moderator):
    """The same for the ban reason stored on the user."""
    target = UserFactory()
    reason = "b" * 1000
    response = moderator.post(f"/api/v1/users/{target.pk}/ban/", {"reason": reason})
    assert response.status_code == 200, response.content
    target = User.objects.get(pk=target.pk)
    assert target.is_banned
    assert target.banned_reason == reason


def test_a_reason_over_1000_characters_is_refused_and_changes_nothing(moderator):
    target = UserFactory()
    response = moderator.post(f"/api/v1/users/{target.pk}/ban/", {"reason": "b" * 1001})
    assert response.status_code == 400
    assert list(response.json()["error"]["fields"]) == ["reason"]
    assert not User.objects.get(pk=target.pk).is_banned


@pytest.mark.parametrize(
    ("who", "method", "path", "body", "field"),
    [
        ("moderator", "post", "/api/v1/users/{user}/ban/", {"reason": -7.0e119}, "reason"),
        ("moderator", "post", "/api/v1/users/{user}/purge/", {"reason": 12}, "reason"),
        (
            "moderator",
            "post",
            "/api/v1/messages/{message}/edit/",
            {"text": 5, "reason": "r"},
            "text",
        ),
        ("moderator", "post", "/api/v1/trees/{tree}/halt/", {"reason": True}, "reason"),
        (
            "volunteer",
            "post",
            "/api/v1/messages/{message}/reports/",
            {"reason": "spam", "text": 1},
            "text",
        ),
        ("volunteer", "patch", "/api/v1/me/", {"display_name": 42}, "display_name"),
        ("volunteer", "patch", "/api/v1/me/", {"languages": [1]}, "languages.0"),
        ("volunteer", "post", "/api/v1/chats/", {"title": 3.5}, "title"),
    ],
)
def test_a_number_where_a_text_is_declared_is_refused(
    bob, moderator, who, method, path, body, field
):
    """DRF turned a number into its digits: a ban "reason" of -7e+119 was stored as text.
    (Submissions were strict already; now every text in a request body is.)"""
    message = MessageFactory(review_result=True)
    target = UserFactory()
    url = path.format(tree=message.tree_id, message=message.pk, user=target.pk)
    caller = moderator if who == "moderator" else bob
    response = getattr(caller.client, method)(url, body, format="json")
    assert response.status_code == 400, response.content
    error = response.json()["error"]
    assert error["code"] == "invalid_input"
    assert list(error["fields"]) == [field]
    assert not User.objects.get(pk=target.pk).is_banned
