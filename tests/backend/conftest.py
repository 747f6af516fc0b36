"""A simulated volunteer that works through the real API with an API key."""

from __future__ import annotations

import itertools
import random
import uuid
from collections.abc import Callable
from typing import Any

import pytest
from rest_framework.test import APIClient

from backend.accounts.models import Role
from backend.accounts.services import create_api_client, create_user
from tests.frontend.asgi_server import asgi_server  # noqa: F401 (a fixture: the app over HTTP)

_names = itertools.count()

# Small trees so a test can grow one to the end in a few dozen tasks.
SMALL_TREES = {
    "reviews_per_message": 2,
    "acceptance_threshold": 0.6,
    "max_active_trees": 3,
    "max_prompts_in_review": 4,
    "max_prompts_in_lottery": 6,
    "max_depth": 2,
    "max_children_prompter": 2,
    "max_children_assistant": 1,
    "goal_tree_size": 5,
    "rankings_per_parent": 2,
    "rank_prompter_replies": False,
}


class Volunteer:
    def __init__(
        self, role: str = Role.VOLUNTEER, languages: list[str] | None = None, troll: bool = False
    ) -> None:
        n = next(_names)
        self.troll = troll  # writes spam; honest reviewers label it so
        self.user = create_user(
            username=f"v{n}-{uuid.uuid4().hex[:6]}",
            languages=languages or ["en"],
            role=role,
            accepted_terms_version=1,
        )
        _, self.key = create_api_client(owner=self.user, name="test")
        self.client = APIClient()
        self.client.credentials(HTTP_AUTHORIZATION=f"Bearer {self.key}")

    def get(self, path: str, **params: Any):  # type: ignore[no-untyped-def]
        return self.client.get(path, params)

    def post(self, path: str, body: dict | None = None):  # type: ignore[no-untyped-def]
        return self.client.post(path, body or {}, format="json")

    def request_task(self, task_type: str = "random", lang: str = "en"):  # type: ignore[no-untyped-def]
        return self.post("/api/v1/tasks/", {"type": task_type, "lang": lang})

    def submit(self, task_id: str, **payload: Any):  # type: ignore[no-untyped-def]
        return self.post(f"/api/v1/tasks/{task_id}/submit/", payload)

    def answer(self, task: dict, rng: random.Random, *, good: bool = True) -> dict:
        """A plausible submission for any task type."""
        kind = task["type"]
        if kind in ("initial_prompt", "assistant_reply", "prompter_reply"):
            if self.troll:
                return {"text": f"BUY CHEAP WATCHES {rng.random():.6f}"}
            return {"text": f"{kind} by {self.user.username}: {rng.random():.6f}"}
        if kind.startswith("label_"):
            is_spam = task["conversation"][-1]["text"].startswith("BUY")
            spam = 1 if is_spam == good else 0  # a careless review now and then
            return {"labels": {"spam": spam, "lang_mismatch": 0, "quality": 0.75}}
        order = [r["id"] for r in task["replies"]]
        rng.shuffle(order)
        return {"ranking": order}

    def do_one(self, rng: random.Random, *, task_type: str = "random", good: bool = True):  # type: ignore[no-untyped-def]
        response = self.request_task(task_type)
        if response.status_code != 201:
            return response, None
        task = response.json()
        return response, self.submit(
            task["id"], key=uuid.uuid4().hex, **self.answer(task, rng, good=good)
        )


@pytest.fixture
def small_trees(settings):  # type: ignore[no-untyped-def]
    settings.CHORUS_TREE = dict(SMALL_TREES)
    return settings.CHORUS_TREE


@pytest.fixture
def volunteer() -> Callable[..., Volunteer]:
    return Volunteer


@pytest.fixture
def bob(volunteer):  # type: ignore[no-untyped-def]
    return volunteer()


@pytest.fixture
def carol(volunteer):  # type: ignore[no-untyped-def]
    return volunteer()


@pytest.fixture
def moderator(volunteer):  # type: ignore[no-untyped-def]
    return volunteer(role=Role.MODERATOR)
