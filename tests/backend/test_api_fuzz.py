"""Property-based fuzzing of the whole API from its OpenAPI schema, with schemathesis.

For every operation in the schema, schemathesis draws requests from the declared parameters
and bodies (valid ones and, in its negative mode, invalid ones) and sends them in process to
the Django app (WSGI) on the test database, as the caller the operation is meant for: a
volunteer for the volunteer endpoints and chats, a moderator for the moderation endpoints,
both through API keys. Half the draws name real objects of a seeded world in their path (a
task, a tree, a message, a chat and its reply, a report, an export, a user) so the deeper
code runs, not only the 404 of a random id. Every answer must be no 5xx, with a status code,
content type and body that the schema declares (errors in the API's error format).

schemathesis's negative_data_rejection check (invalid input must get a 4xx) is left out on
purpose: DRF parses leniently by design (a JSON number where a text is declared becomes that
text, "true" or 1 a boolean, an empty query parameter its default), and the API keeps that.
What invalid input must never cause is checked: a 5xx or an answer the schema does not name.

A second test sends requests without credentials (401) and as a volunteer to the moderators'
endpoints (403): those answers must match the schema too.

The run is bounded: CHORUS_FUZZ_EXAMPLES draws per operation and mode (default 8) with a
fixed seed, so CI sees the same inputs each time. To search longer by hand, raise it and
change the seed: CHORUS_FUZZ_EXAMPLES=300 CHORUS_FUZZ_SEED=7 pytest tests/backend/test_api_fuzz.py
"""

from __future__ import annotations

import json
import os
import re
from collections import defaultdict
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from django.core import signals
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections
from drf_spectacular.generators import SchemaGenerator
from drf_spectacular.renderers import OpenApiJsonRenderer
from hypothesis import HealthCheck, Phase, given, seed, settings
from hypothesis import strategies as st
from rest_framework import throttling
from schemathesis.generation import GenerationMode
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from backend.accounts.services import create_api_client
from tests.backend.test_permission_matrix import MODERATOR, VOLUNTEER, World, chat_with_reply
from tests.inference import closed_port_url

pytestmark = pytest.mark.django_db

EXAMPLES = int(os.environ.get("CHORUS_FUZZ_EXAMPLES", "8"))
SEED = int(os.environ.get("CHORUS_FUZZ_SEED", "0"))
HTTP_METHODS = ("get", "post", "put", "patch", "delete")

# The endpoints only moderators may call (everything under moderation/ and the moderator
# actions on messages, trees and users); the others are a volunteer's.
MODERATOR_PATH = re.compile(
    r"/moderation/|/halt/$|/resume/$|/settings/$|/users/|/reports/resolve/$|/edit/$"
    r"|/delete/$|/undelete/$"
)
CHECKS = [
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]


@cache
def raw_schema() -> dict[str, Any]:
    """The schema /api/schema/ serves, built without a request (so at collection time)."""
    document = SchemaGenerator().get_schema(request=None, public=True)
    return json.loads(OpenApiJsonRenderer().render(document, renderer_context={}))


def operations() -> list[tuple[str, str]]:
    return [
        (method, path)
        for path, item in raw_schema()["paths"].items()
        for method in item
        if method in HTTP_METHODS
    ]


@cache
def fuzz_schema() -> Any:
    """The schema for schemathesis, without its security requirements: the tests send the
    credentials of the caller each operation is for, so the fuzzer must not draw (and, in
    its negative mode, count as the invalid part) an Authorization header or a cookie."""
    document = json.loads(json.dumps(raw_schema()))
    document["components"].pop("securitySchemes", None)
    for item in document["paths"].values():
        for method in HTTP_METHODS:
            item.get(method, {}).pop("security", None)
    schema = schemathesis.openapi.from_dict(document)
    schema.app = get_wsgi_application()
    return schema


def is_for_moderators(path: str) -> bool:
    return MODERATOR_PATH.search(path) is not None


class FuzzWorld(World):
    """The permission matrix's world (one object of each kind), with API keys for the
    volunteer and a moderator, and the real ids each path parameter can take."""

    def __init__(self, folder: Path) -> None:
        super().__init__(folder)
        _, self.moderator_key = create_api_client(owner=self.users[MODERATOR], name="fuzz")
        # A chat of the moderator's, so moderator calls on chats reach real objects too.
        self.moderator_chat, _, self.moderator_reply = chat_with_reply(self.users[MODERATOR])
        # A second key of the volunteer's, for the key-management paths to name.
        self.spare_client, _ = create_api_client(owner=self.users[VOLUNTEER], name="spare")

    def headers(self, path: str) -> dict[str, str]:
        key = self.moderator_key if is_for_moderators(path) else self.volunteer_key
        return {"Authorization": f"Bearer {key}"}

    def real_ids(self, path: str) -> list[dict[str, str]]:
        """Sets of path parameters that name existing objects (empty when the path has none)."""
        names = re.findall(r"{(\w+)}", path)
        if not names:
            return []
        if path.startswith("/api/v1/chats/"):
            chats = [
                {"chat_id": self.chat.pk, "message_id": self.chat_reply.pk},
                {"chat_id": self.chat.pk, "message_id": self.chat_question.pk},
                {"chat_id": self.banned_chat.pk, "message_id": self.banned_reply.pk},
            ]
            return [{n: str(ids[n]) for n in names} for ids in chats]
        pools: dict[str, list[Any]] = {
            "task_id": [self.task.pk],
            "tree_id": [self.tree.pk, self.halted_tree.pk],
            "message_id": [self.message.pk, self.deleted_message.pk],
            "user_id": [self.target_user.pk, self.banned_user.pk, self.users[VOLUNTEER].pk],
            "report_id": [self.chat_report.pk],
            "export_id": [self.export.pk],
            "key_id": [self.spare_client.pk],
            "emoji": ["+1", "-1", "heart"],
        }
        combos: list[dict[str, str]] = [{}]
        for name in names:
            combos = [{**c, name: str(value)} for c in combos for value in pools[name]]
        return combos


@pytest.fixture(autouse=True)
def _quiet_world(settings, monkeypatch):  # type: ignore[no-untyped-def]
    """No model and no Hub (a chat message gets the declared 503), and no rate limits: the
    fuzzer sends hundreds of requests a minute from one address and must reach the code
    behind the limits (a 429 would match the schema but test nothing)."""
    import huggingface_hub.constants

    settings.INFERENCE_URL = ""
    settings.HF_TOKEN = ""
    settings.CHORUS_RATELIMITS_ENABLED = False
    monkeypatch.setattr(huggingface_hub.constants, "ENDPOINT", closed_port_url())
    monkeypatch.setattr(throttling.SimpleRateThrottle, "THROTTLE_RATES", defaultdict(lambda: None))


@pytest.fixture
def world(tmp_path: Path) -> Iterator[FuzzWorld]:
    """The world, and the app called in process on the test's own connection: as Django's
    test client does, the end of a request must not close the connection (it holds the
    test's transaction)."""
    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    try:
        yield FuzzWorld(tmp_path)
    finally:
        signals.request_started.connect(close_old_connections)
        signals.request_finished.connect(close_old_connections)


def run_fuzz(strategy: Any, send: Any, examples: int) -> None:
    @seed(SEED)
    @settings(
        max_examples=examples,
        deadline=None,
        database=None,
        phases=[Phase.explicit, Phase.generate, Phase.shrink],
        suppress_health_check=list(HealthCheck),
    )
    @given(case=strategy)
    def fuzz(case: Any) -> None:
        send(case)

    fuzz()


def send_and_check(case: Any, headers: dict[str, str]) -> None:
    response = case.call(headers=headers)
    # A 5xx only where the schema declares it: the chat's 503 when the assistant is off.
    # (schemathesis's not_a_server_error refuses every 5xx, declared or not.)
    declared = raw_schema()["paths"][case.operation.path][case.method.lower()]["responses"]
    if response.status_code >= 500:
        assert str(response.status_code) in declared, (
            f"{case.method} {case.formatted_path} answered {response.status_code}:\n"
            f"{response.text[:2000]}\n{case.as_curl_command()}"
        )
    case.validate_response(response, checks=CHECKS, headers=headers)


@pytest.mark.parametrize(
    ("method", "path"), operations(), ids=[f"{m.upper()} {p}" for m, p in operations()]
)
def test_every_operation_answers_any_input_as_its_schema_says(method, path, world):
    operation = fuzz_schema()[path][method.upper()]
    strategies = []
    for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
        strategies.append(operation.as_strategy(mode))
        strategies.extend(
            operation.as_strategy(mode, path_parameters=ids) for ids in world.real_ids(path)
        )
    headers = world.headers(path)
    run_fuzz(st.one_of(strategies), lambda case: send_and_check(case, headers), EXAMPLES * 2)


def test_refusals_of_strangers_and_volunteers_match_the_schema(world):
    """Without credentials every operation answers 401, and a volunteer at a moderators'
    endpoint 403 whatever the body and ids, as the schema declares."""
    volunteer = {"Authorization": f"Bearer {world.volunteer_key}"}
    for method, path in operations():
        operation = fuzz_schema()[path][method.upper()]
        callers = [{}]
        if is_for_moderators(path):
            callers.append(volunteer)
        for headers in callers:

            def send(case: Any, headers: dict[str, str] = headers) -> None:
                response = case.call(headers=headers)
                case.validate_response(response, checks=CHECKS, headers=headers)
                expected = 403 if headers else 401
                assert response.status_code == expected, (case.method, case.path, response.text)

            run_fuzz(operation.as_strategy(), send, max(2, EXAMPLES // 4))
