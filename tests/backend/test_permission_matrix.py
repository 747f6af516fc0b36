"""Who may call what: every API endpoint and every page, for every kind of caller.

The tables below classify each URL (by its name; one entry per name) with the roles allowed
to use it. For each (URL, method, role) a test makes the call on a fresh world: an allowed
call succeeds (and a write changes what is stored), a refused one gets 401/403/404 (pages:
the login page, 403 or 404) and changes nothing. The URLs come from Django's resolver, and
`test_every_*_is_classified` fails when a URL exists that the tables do not name: a new
endpoint cannot go unclassified. To classify one, add a line to API or PAGES.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit

import pytest
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver
from django.utils import timezone
from rest_framework.test import APIClient

from backend.accounts.models import ApiClient, Role, User
from backend.accounts.services import create_api_client
from backend.assistant import services as assistant
from backend.assistant.models import Chat, ChatMessage, ChatReport, ChatRole
from backend.community.models import PointAward
from backend.exports.models import DatasetExport, ExportStatus
from backend.moderation.models import AuditEntry, Report
from backend.tasks.services import request_task
from backend.trees.models import Message, MessageRevision, MessageTree, Reaction
from backend.trees.rules import State
from tests.backend.test_api_bad_input import snapshot as stored_domain
from tests.factories import MessageFactory, TreeFactory, UserFactory
from tests.inference import closed_port_url

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _no_model_and_no_hub(settings, monkeypatch):  # type: ignore[no-untyped-def]
    """The assistant is switched off (INFERENCE_URL empty): an allowed chat message reaches
    the 503 `inference_off` that comes after every permission check (the chat is looked up
    as the caller's first), so the matrix tells who gets that far without a model. The
    replies themselves are tested against a real tiny model in test_assistant_api.py.

    A push to the Hub is configured (token, repo) but the Hub is an address where nothing
    listens: an allowed push gets the publish error and records nothing."""
    import huggingface_hub.constants

    settings.INFERENCE_URL = ""
    settings.HF_TOKEN = "hf_matrix"
    settings.CHORUS_HF_DATASET_REPO = "chorus/matrix"
    monkeypatch.setattr(huggingface_hub.constants, "ENDPOINT", closed_port_url())


# --- Roles ---------------------------------------------------------------------------------

ANONYMOUS = "anonymous"
VOLUNTEER = "volunteer"
MODERATOR = "moderator"
ADMIN = "admin"
BANNED = "banned"
# The volunteer's own API key.
API_KEY = "api_key"
# A trusted client (owned by a moderator) acting for the volunteer with X-Chorus-User: it
# has the volunteer's rights, never its owner's.
ACTING = "acting_client"

API_ROLES = (ANONYMOUS, VOLUNTEER, MODERATOR, ADMIN, BANNED, API_KEY, ACTING)
PAGE_ROLES = (ANONYMOUS, VOLUNTEER, MODERATOR, ADMIN, BANNED, API_KEY)

NOBODY: frozenset[str] = frozenset()
EVERYONE = frozenset(API_ROLES)
SIGNED_IN = EVERYONE - {ANONYMOUS}
CONTRIBUTORS = SIGNED_IN - {BANNED}  # signed in and not banned
STAFF = frozenset({MODERATOR, ADMIN})
# The volunteer in person or through a client: the task's owner.
THE_VOLUNTEER = frozenset({VOLUNTEER, API_KEY, ACTING})
# Pages take sessions only: an API key opens none.
SESSIONS = frozenset({VOLUNTEER, MODERATOR, ADMIN, BANNED})
PAGE_CONTRIBUTORS = frozenset({VOLUNTEER, MODERATOR, ADMIN})


@dataclass(frozen=True)
class Call:
    """One request to a URL: the method, who may make it, its body, and which object of the
    world each URL parameter names (by default the one of the parameter's name)."""

    method: str
    allowed: frozenset[str]
    body: dict[str, Any] = field(default_factory=dict)
    args: dict[str, str] = field(default_factory=dict)
    # Whether an allowed call changes what is stored (checked, so the snapshot can fail).
    writes: bool | None = None
    # The status an allowed call gets when it is not a success: it passed every permission
    # check and stopped at something else (the assistant switched off).
    answers: int | None = None

    @property
    def is_write(self) -> bool:
        return self.method != "get" if self.writes is None else self.writes


def get(allowed: frozenset[str], **args: str) -> Call:
    return Call("get", allowed, args=args)


def post(allowed: frozenset[str], body: dict[str, Any] | None = None, **args: str) -> Call:
    return Call("post", allowed, body or {}, args=args)


# --- The API, /api/v1 ----------------------------------------------------------------------

REASON = {"reason": "Checked by the permission matrix."}
API: dict[str, tuple[Call, ...]] = {
    "me": (get(SIGNED_IN), Call("patch", SIGNED_IN, {"display_name": "Renamed"})),
    "my-stats": (get(SIGNED_IN),),
    # Keys are managed while signed in, never with a key; a key is its owner's alone.
    "api-keys": (get(SESSIONS), post(SESSIONS, {"name": "matrix"})),
    "api-key": (Call("delete", frozenset({VOLUNTEER})),),
    "leaderboard": (get(SIGNED_IN),),
    "tasks": (post(CONTRIBUTORS, {"type": "initial_prompt", "lang": "en"}),),
    "task-availability": (Call("get", SIGNED_IN, {"lang": "en"}),),
    "task": (get(THE_VOLUNTEER),),
    "task-submit": (post(THE_VOLUNTEER, {"key": "k1", "text": "Why is the sea salty?"}),),
    "task-skip": (post(THE_VOLUNTEER, {"reason": "other"}),),
    "trees": (get(SIGNED_IN),),
    "tree": (get(SIGNED_IN),),
    "tree-halt": (post(STAFF, REASON),),
    "tree-resume": (post(STAFF, REASON, tree_id="halted_tree"),),
    "message": (get(SIGNED_IN),),
    "message-conversation": (get(SIGNED_IN),),
    "message-reactions": (post(CONTRIBUTORS, {"emoji": "-1"}),),
    "message-reaction": (Call("delete", CONTRIBUTORS, args={"emoji": "=+1"}),),
    "message-report": (post(CONTRIBUTORS, {"reason": "spam"}),),
    "message-reports-resolve": (post(STAFF, {"note": "Seen."}),),
    "message-edit": (post(STAFF, {"text": "A better text.", **REASON}),),
    "message-delete": (post(STAFF, REASON),),
    "message-undelete": (post(STAFF, REASON, message_id="deleted_message"),),
    "tree-settings": (Call("patch", STAFF, {"settings": {"goal_size": 20}, **REASON}),),
    "user-ban": (post(STAFF, REASON),),
    "user-unban": (post(STAFF, REASON, user_id="banned_user"),),
    "user-purge": (post(STAFF, REASON),),
    "report-queue": (get(STAFF),),
    "message-search": (get(STAFF),),
    "audit-log": (get(STAFF),),
    "trollboard": (get(STAFF),),
    "quality-figures": (get(STAFF),),
    "statistics": (get(STAFF),),
    "exports": (get(STAFF),),
    "export": (get(STAFF),),
    "export-download": (get(STAFF),),
    "chat-report-queue": (get(STAFF),),
    "chat-report-resolve": (post(STAFF, report_id="chat_report"),),
    # The assistant: a chat is its owner's alone (the volunteer's, in person or through a
    # client); anyone else, moderators included, gets 404. A banned user may read and list
    # their own chats but neither start one nor write in one (chat_id="banned_chat").
    "chats": (get(SIGNED_IN), post(CONTRIBUTORS, {"title": "A new chat"})),
    "chat": (
        get(THE_VOLUNTEER),
        get(frozenset({BANNED}), chat_id="banned_chat"),
        Call("patch", THE_VOLUNTEER, {"title": "Renamed", "excluded_from_training": True}),
        Call("delete", THE_VOLUNTEER),
    ),
    "chat-messages": (
        get(THE_VOLUNTEER),
        # The owner gets as far as the switched-off model (see _no_model_and_no_hub).
        Call("post", THE_VOLUNTEER, {"text": "Hello?"}, writes=False, answers=503),
        post(NOBODY, {"text": "Hello?"}, chat_id="banned_chat"),
    ),
    "chat-message-vote": (post(THE_VOLUNTEER, {"vote": -1}, message_id="chat_reply"),),
    "chat-message-report": (post(THE_VOLUNTEER, {"reason": "spam"}, message_id="chat_reply"),),
    "chat-message-propose": (
        post(THE_VOLUNTEER, message_id="chat_reply"),
        post(NOBODY, chat_id="banned_chat", message_id="banned_reply"),
    ),
}

# --- Pages ---------------------------------------------------------------------------------

MESSAGE_ACTIONS = {
    "edit": {"text": "A better text.", **REASON},
    "delete": REASON,
    "undelete": REASON,
    "resolve": REASON,
}
PAGES: dict[str, tuple[Call, ...]] = {
    "home": (get(EVERYONE),),
    "favicon": (get(EVERYONE),),
    "terms": (get(EVERYONE),),
    "guidelines": (get(EVERYONE),),
    "tutorial": (get(PAGE_CONTRIBUTORS),),
    "set_language": (post(EVERYONE, {"language": "de"}),),
    "dashboard": (get(PAGE_CONTRIBUTORS),),
    "leaderboard": (get(PAGE_CONTRIBUTORS),),
    "start_task": (post(PAGE_CONTRIBUTORS, {"type": "initial_prompt", "lang": "en"}),),
    "task": (get(frozenset({VOLUNTEER})),),
    "skip_task": (post(frozenset({VOLUNTEER}), {"reason": "other"}),),
    "preview": (Call("post", PAGE_CONTRIBUTORS, {"text": "**bold**"}, writes=False),),
    "trees": (get(PAGE_CONTRIBUTORS),),
    "tree": (get(PAGE_CONTRIBUTORS),),
    "react": (post(PAGE_CONTRIBUTORS, {"emoji": "-1"}),),
    "report": (get(PAGE_CONTRIBUTORS), post(PAGE_CONTRIBUTORS, {"reason": "spam"})),
    "profile": (get(SESSIONS), post(SESSIONS, {"display_name": "Renamed", "languages": "en"})),
    "contributions": (get(SESSIONS),),
    "delete_account": (get(SESSIONS), post(SESSIONS, {"confirm": "{username}"})),
    "create_api_key": (post(SESSIONS, {"name": "matrix"}),),
    "revoke_api_key": (post(frozenset({VOLUNTEER})),),
    "moderation_queue": (get(STAFF),),
    "moderation_search": (get(STAFF),),
    "moderation_audit": (get(STAFF),),
    "moderation_message": (get(STAFF),),
    "moderation_message_action": tuple(
        post(
            STAFF,
            body,
            action=f"={action}",
            **({"message_id": "deleted_message"} if action == "undelete" else {}),
        )
        for action, body in MESSAGE_ACTIONS.items()
    ),
    "moderation_tree_action": (
        post(STAFF, REASON, action="=halt"),
        post(STAFF, REASON, action="=resume", tree_id="halted_tree"),
        post(STAFF, {"goal_size": "20", **REASON}, action="=settings"),
    ),
    "moderation_user": (get(STAFF),),
    "moderation_user_action": (
        post(STAFF, REASON, action="=ban"),
        post(STAFF, REASON, action="=unban", user_id="banned_user"),
        post(STAFF, REASON, action="=purge"),
    ),
    # Sign-in pages (django-allauth): open to all; the signed-in ones need a session.
    "account_login": (get(EVERYONE),),
    "account_signup": (get(EVERYONE),),
    "account_logout": (get(EVERYONE),),
    "account_reset_password": (get(EVERYONE),),
    "account_reset_password_done": (get(EVERYONE),),
    "account_email": (get(SESSIONS),),
    "account_change_password": (get(SESSIONS),),
    "account_set_password": (get(SESSIONS),),
    "socialaccount_connections": (get(SESSIONS),),
    # The browsable API's sign-in, and the API's description.
    "rest_framework:login": (get(EVERYONE),),
    "rest_framework:logout": (Call("post", EVERYONE, writes=False),),
    "schema": (get(EVERYONE),),
    "api-docs": (get(EVERYONE),),
    # Health endpoints for probes: anonymous, read-only, the same answer for everyone
    # (test_health.py tests what they say).
    "healthz": (get(EVERYONE),),
    "readyz": (get(EVERYONE),),
    # Prometheus's scrapes: opened by a token or a network, never by a role (404 to every
    # role here, where neither is configured; tests/backend/test_metrics.py opens it).
    "metrics": (get(NOBODY),),
    "admin:index": (get(frozenset({ADMIN})),),
    # Moderators' figures and the exports. A push tries the (unreachable) Hub: the page
    # says why it failed and nothing is recorded.
    "moderation_trollboard": (get(STAFF),),
    "moderation_quality": (get(STAFF),),
    "moderation_statistics": (get(STAFF),),
    "moderation_exports": (get(STAFF), post(STAFF, {"review": "any"})),
    "moderation_export_download": (get(STAFF),),
    "moderation_export_push": (Call("post", STAFF, writes=False),),
    # The assistant's pages: the chat is the volunteer's (the only one with a session of
    # theirs); without a model the sent message is refused with a notice, stored nowhere.
    "chats": (get(PAGE_CONTRIBUTORS), post(PAGE_CONTRIBUTORS)),
    "chat": (
        get(frozenset({VOLUNTEER})),
        Call("post", frozenset({VOLUNTEER}), {"text": "Hi"}, writes=False),
    ),
    "chat_exclude": (post(frozenset({VOLUNTEER}), {"excluded": "1"}),),
    "chat_delete": (post(frozenset({VOLUNTEER})),),
    "chat_vote": (post(frozenset({VOLUNTEER}), {"vote": "-1"}, message_id="chat_reply"),),
    "chat_report": (
        get(frozenset({VOLUNTEER}), message_id="chat_reply"),
        post(frozenset({VOLUNTEER}), {"reason": "spam"}, message_id="chat_reply"),
    ),
    "chat_propose": (post(frozenset({VOLUNTEER}), message_id="chat_reply"),),
    "chat_reports": (get(STAFF), post(STAFF, {"report": "{chat_report}"})),
}
# Pages that exist but are not called here, with the reason: each needs a state that only a
# sign-in flow in progress has (a key sent by e-mail, a pending social login or code). They
# are allauth's own, tested there.
NOT_CALLED = {
    "account_inactive": "shown at the end of a sign-in of an inactive account",
    "account_reauthenticate": "needs a sign-in in progress",
    "account_request_reauthentication_code": "needs a sign-in in progress",
    "account_confirm_reauthentication_code": "needs a code sent by e-mail",
    "account_email_verification_sent": "shown after a sign-up",
    "account_confirm_login_code": "needs a code sent by e-mail",
    "account_confirm_email": "needs a key sent by e-mail",
    "account_reset_password_from_key": "needs a key sent by e-mail",
    "account_reset_password_from_key_done": "shown after a reset",
    "socialaccount_login_cancelled": "shown when a social login is cancelled",
    "socialaccount_login_error": "shown when a social login fails",
    "socialaccount_signup": "needs a pending social login",
    # allauth's unnamed old paths of the socialaccount pages (accounts/social/...).
    "accounts/social/login/cancelled/": "an old path of socialaccount_login_cancelled",
    "accounts/social/login/error/": "an old path of socialaccount_login_error",
    "accounts/social/signup/": "an old path of socialaccount_signup",
    "accounts/social/connections/": "an old path of socialaccount_connections",
}
# Django's admin: every model page is for admins (is_staff); the index stands for them all.
ADMIN_NAMESPACE = "admin"


# --- The URLs Django knows -----------------------------------------------------------------


@dataclass(frozen=True)
class Route:
    name: str  # the URL name with its namespace, or the path for an unnamed URL
    route: str  # the path pattern, e.g. api/v1/tasks/<uuid:task_id>/
    pattern: URLPattern


def every_route() -> Iterator[Route]:
    def walk(patterns: list[Any], prefix: str, namespace: str) -> Iterator[Route]:
        for pattern in patterns:
            if isinstance(pattern, URLResolver):
                inner = namespace
                if pattern.namespace:
                    inner = f"{namespace}{pattern.namespace}:"
                yield from walk(pattern.url_patterns, prefix + str(pattern.pattern), inner)
            else:
                route = prefix + str(pattern.pattern)
                name = f"{namespace}{pattern.name}" if pattern.name else route
                yield Route(name, route, pattern)

    yield from walk(get_resolver().url_patterns, "", "")


def api_routes() -> dict[str, Route]:
    return {r.name: r for r in every_route() if r.route.startswith("api/v1/")}


def page_routes() -> dict[str, Route]:
    return {
        r.name: r
        for r in every_route()
        if not r.route.startswith(("api/v1/", f"{ADMIN_NAMESPACE}/"))
    }


def api_methods(route: Route) -> set[str]:
    view = route.pattern.callback.view_class  # type: ignore[attr-defined]
    return {m for m in ("get", "post", "put", "patch", "delete") if hasattr(view, m)}


def test_every_api_endpoint_is_classified():
    known = {(name, m) for name, route in api_routes().items() for m in api_methods(route)}
    classified = {(name, call.method) for name, calls in API.items() for call in calls}
    assert known - classified == set(), "endpoints the matrix does not classify"
    assert classified - known == set(), "endpoints the matrix names that do not exist"


def test_every_page_is_classified():
    known = set(page_routes())
    classified = set(PAGES) | set(NOT_CALLED)
    assert known - classified == set(), "pages the matrix does not classify"
    assert classified - known - {f"{ADMIN_NAMESPACE}:index"} == set(), "pages that do not exist"
    assert f"{ADMIN_NAMESPACE}:index" in {r.name for r in every_route()}


# --- The world each call is made in --------------------------------------------------------


class World:
    """Everyone, and one object of each kind a URL can name."""

    def __init__(self, folder: Path) -> None:
        now = timezone.now()

        def person(name: str, **fields: Any) -> User:
            fields = {"tutorial_completed_at": now, "password": None, **fields}
            return UserFactory(username=name, **fields)

        self.users = {
            VOLUNTEER: person("vera"),
            MODERATOR: person("mona", role=Role.MODERATOR),
            ADMIN: person("ada", role=Role.ADMIN, is_staff=True, is_superuser=True),
            BANNED: person("ben", is_banned=True, banned_reason="spam"),
        }
        self.author = person("alex")
        self.target_user = person("tom")
        self.banned_user = person("bob", is_banned=True, banned_reason="spam")
        self.volunteer_client, self.volunteer_key = create_api_client(
            owner=self.users[VOLUNTEER], name="vera's"
        )
        bot = person("bot", role=Role.MODERATOR)
        _, self.trusted_key = create_api_client(owner=bot, name="chat", can_act_for_users=True)

        self.tree = TreeFactory(state=State.GROWING)
        self.message = MessageFactory(
            tree=self.tree, author=self.author, review_result=True, review_count=3
        )
        Report.objects.create(message=self.message, reporter=self.author, reason="spam")
        for user in self.users.values():
            Reaction.objects.create(message=self.message, user=user, emoji="+1")
        Message.objects.filter(pk=self.message.pk).update(emojis={"+1": len(self.users)})

        self.halted_tree = TreeFactory(
            state=State.HALTED_BY_MODERATOR, state_before_halt=State.GROWING
        )
        MessageFactory(tree=self.halted_tree, author=self.author, review_result=True)
        self.deleted_message = MessageFactory(
            tree=TreeFactory(state=State.GROWING),
            author=self.author,
            review_result=True,
            deleted=True,
        )
        self.task = request_task(user=self.users[VOLUNTEER], task_type="initial_prompt", lang="en")

        # The volunteer's chat: a question and the model's reply, voted up (so it can be
        # proposed); another's chat with a reported reply; a chat of the banned user.
        self.chat, self.chat_question, self.chat_reply = chat_with_reply(self.users[VOLUNTEER])
        _, _, reported = chat_with_reply(self.author)
        self.chat_report = ChatReport.objects.create(
            message=reported, reporter=self.author, reason="spam"
        )
        self.banned_chat, _, self.banned_reply = chat_with_reply(self.users[BANNED])

        # A finished export with its version folder.
        version = folder / "v1"
        (version / "sft").mkdir(parents=True)
        (version / "sft" / "train.jsonl").write_text('{"messages": []}\n')
        self.export = DatasetExport.objects.create(
            status=ExportStatus.DONE, version=1, seed=1, path=str(version), finished_at=now
        )

    def target(self, which: str) -> str:
        if which.startswith("="):
            return which[1:]
        return str(
            {
                "task_id": self.task.pk,
                "tree_id": self.tree.pk,
                "halted_tree": self.halted_tree.pk,
                "message_id": self.message.pk,
                "deleted_message": self.deleted_message.pk,
                "user_id": self.target_user.pk,
                "banned_user": self.banned_user.pk,
                "chat_id": self.chat.pk,
                "banned_chat": self.banned_chat.pk,
                "banned_reply": self.banned_reply.pk,
                "chat_reply": self.chat_reply.pk,
                "chat_report": self.chat_report.pk,
                "report_id": self.chat_report.pk,
                "export_id": self.export.pk,
                "key_id": self.volunteer_client.pk,
            }[which]
        )

    def path(self, route: str, call: Call) -> str:
        def fill(match: re.Match[str]) -> str:
            name = match.group(1)
            return self.target(call.args.get(name, name))

        return "/" + re.sub(r"<(?:\w+:)?(\w+)>", fill, route)

    def api_client(self, role: str) -> APIClient:
        client = APIClient()
        if role == API_KEY:
            client.credentials(HTTP_AUTHORIZATION=f"Bearer {self.volunteer_key}")
        elif role == ACTING:
            client.credentials(
                HTTP_AUTHORIZATION=f"Bearer {self.trusted_key}",
                HTTP_X_CHORUS_USER=self.users[VOLUNTEER].username,
            )
        elif role != ANONYMOUS:
            client.force_login(self.users[role])
        return client

    def page_client(self, role: str) -> Client:
        client = Client()
        if role == API_KEY:
            client.defaults["HTTP_AUTHORIZATION"] = f"Bearer {self.volunteer_key}"
        elif role != ANONYMOUS:
            client.force_login(self.users[role])
        return client

    def username(self, role: str) -> str:
        user = self.users.get(role) or self.users[VOLUNTEER]
        return user.username


def chat_with_reply(owner: User) -> tuple[Chat, ChatMessage, ChatMessage]:
    """A chat with a question and the model's reply, voted up (made as the services make
    them, but without their checks: the banned user has one from before the ban)."""
    chat = Chat.objects.create(owner=owner, title="Primes")
    question = ChatMessage.objects.create(
        chat=chat, role=ChatRole.USER, text="What is a prime number?"
    )
    reply = assistant.save_reply(
        chat=chat,
        reply_to=question,
        text="A number with two divisors.",
        model_name="m",
        finish_reason="stop",
    )
    ChatMessage.objects.filter(pk=reply.pk).update(vote=1)
    return chat, question, reply


def stored() -> dict[str, Any]:
    """What a refused call could change, beyond the domain rows of test_api_bad_input."""
    return stored_domain() | {
        "audit": list(AuditEntry.objects.values_list("id", flat=True)),
        "revisions": MessageRevision.objects.count(),
        "open_reports": Report.objects.filter(resolved_at=None).count(),
        "reaction_rows": sorted(Reaction.objects.values_list("user__username", "emoji")),
        "message_rows": sorted(Message.objects.values_list("id", "text", "deleted")),
        "tree_settings": sorted(MessageTree.objects.values_list("id", "state", "goal_size")),
        "people": sorted(User.objects.values_list("username", "role", "is_active", "is_banned")),
        "api_clients": sorted(ApiClient.objects.values_list("key_prefix", "revoked_at")),
        "points": PointAward.objects.count(),
        "chats": sorted(Chat.objects.values_list("id", "title", "excluded_from_training")),
        "chat_messages": sorted(
            ChatMessage.objects.values_list("id", "text", "vote", "proposed_prompt_id")
        ),
        "chat_reports": sorted(ChatReport.objects.values_list("id", "message_id", "resolved_at")),
        "exports": sorted(
            DatasetExport.objects.values_list("id", "status", "pushed_repo", "pushed_at")
        ),
    }


def matrix(table: dict[str, tuple[Call, ...]], roles: tuple[str, ...]) -> list[Any]:
    return [
        pytest.param(name, call, role, id=f"{call.method.upper()} {name} {suffix}as {role}")
        for name, calls in table.items()
        for call in calls
        for suffix in [f"{'/'.join(call.args.values())} " if call.args else ""]
        for role in roles
    ]


# --- The API -------------------------------------------------------------------------------


@pytest.mark.parametrize(("name", "call", "role"), matrix(API, API_ROLES))
def test_an_api_call_is_allowed_only_to_its_roles(name, call, role, tmp_path):
    world = World(tmp_path)
    path = world.path(api_routes()[name].route, call)
    client = world.api_client(role)
    before = stored()
    if call.method == "get":
        response = client.get(path, call.body)
    else:
        response = client.generic(
            call.method.upper(), path, json.dumps(call.body), "application/json"
        )
    after = stored()
    if role in call.allowed and call.answers:
        assert response.status_code == call.answers, (
            response.status_code,
            response.content[:600],
        )
        assert response.json()["error"]["code"]
        assert after == before
    elif role in call.allowed:
        assert 200 <= response.status_code < 300, (response.status_code, response.content[:600])
        if call.is_write:
            assert after != before, "an allowed write changed nothing"
    else:
        assert response.status_code in (401, 403, 404), (
            response.status_code,
            response.content[:600],
        )
        assert response.json()["error"]["code"]
        assert after == before


# --- Pages ---------------------------------------------------------------------------------


def is_login_redirect(response: Any) -> bool:
    return response.status_code == 302 and urlsplit(response["Location"]).path in (
        "/accounts/login/",
        "/admin/login/",
    )


@pytest.mark.parametrize(("name", "call", "role"), matrix(PAGES, PAGE_ROLES))
def test_a_page_is_allowed_only_to_its_roles(name, call, role, tmp_path):
    world = World(tmp_path)
    routes = page_routes() | {r.name: r for r in every_route() if r.name == name}
    path = world.path(routes[name].route, call)
    client = world.page_client(role)
    body = {
        k: v.format(username=world.username(role), chat_report=world.chat_report.pk)
        for k, v in call.body.items()
    }
    before = stored()
    response = client.generic(
        call.method.upper(),
        path,
        urlencode(body),
        "application/x-www-form-urlencoded",
    )
    after = stored()
    if role in call.allowed:
        assert response.status_code in (200, 301, 302), (
            response.status_code,
            response.content[:600],
        )
        assert not is_login_redirect(response), response["Location"]
        if call.is_write and name != "set_language":  # a cookie, not a row
            assert after != before, "an allowed write changed nothing"
    else:
        assert is_login_redirect(response) or response.status_code in (403, 404), (
            response.status_code,
            response.get("Location"),
        )
        assert after == before
