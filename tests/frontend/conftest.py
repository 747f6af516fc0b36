from __future__ import annotations

import pytest
from django.test import Client

from backend.accounts.models import User
from backend.accounts.services import accept_terms, complete_tutorial, create_user
from tests.frontend.scenario import QUICK_TREES, OpenWork, build_open_work

PASSWORD = "a long test password 42"


@pytest.fixture
def quick_trees(settings):  # type: ignore[no-untyped-def]
    settings.CHORUS_TREE = dict(QUICK_TREES)
    return settings.CHORUS_TREE


@pytest.fixture
def open_work(quick_trees) -> OpenWork:  # type: ignore[no-untyped-def]
    return build_open_work("en")


def make_volunteer(username: str = "newbie", languages: list[str] | None = None) -> User:
    user = create_user(
        username=username,
        password=PASSWORD,
        email=f"{username}@example.org",
        languages=languages or ["en"],
    )
    accept_terms(user=user)
    return complete_tutorial(user=user)


@pytest.fixture
def newbie(db) -> User:  # type: ignore[no-untyped-def]
    return make_volunteer()


@pytest.fixture
def newbie_client(newbie: User) -> Client:
    client = Client()
    client.force_login(newbie)
    return client
