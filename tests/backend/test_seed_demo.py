"""manage.py seed_demo: demo users, key and trees in every state; idempotent."""

from __future__ import annotations

import re
from io import StringIO
from pathlib import Path

import pytest
from django.contrib.auth import authenticate
from django.core.management import call_command
from rest_framework.test import APIClient

from backend.accounts.models import ApiClient, Role, User
from backend.accounts.services import create_user
from backend.core.demo import DEMO_PASSWORD, DEMO_USERS
from backend.tasks.models import Task
from backend.trees.invariants import check_invariants
from backend.trees.models import Message, MessageTree, Ranking, Review, StateChange
from backend.trees.rules import State

pytestmark = pytest.mark.django_db(transaction=True)

KEY = re.compile(r"chorus_[0-9a-f]+_[A-Za-z0-9_-]+")


@pytest.fixture(autouse=True)
def var_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("CHORUS_VAR_DIR", str(tmp_path))
    return tmp_path


def seed() -> str:
    out = StringIO()
    call_command("seed_demo", stdout=out)
    return out.getvalue()


def database_counts() -> dict[str, object]:
    return {
        "users": User.objects.count(),
        "api clients": ApiClient.objects.count(),
        "trees": MessageTree.objects.count(),
        "messages": Message.objects.count(),
        "reviews": Review.objects.count(),
        "rankings": Ranking.objects.count(),
        "tasks": Task.objects.count(),
        "state changes": StateChange.objects.count(),
        "states": sorted(MessageTree.objects.values_list("id", "state")),
    }


def test_every_tree_state_has_at_least_one_demo_tree_and_the_data_is_consistent() -> None:
    seed()
    states = set(MessageTree.objects.values_list("state", flat=True))
    assert states == {state.value for state in State}
    assert set(MessageTree.objects.values_list("lang", flat=True)) == {"en", "de"}
    assert check_invariants() == {}


def test_the_demo_users_have_their_roles_and_can_log_in() -> None:
    seed()
    for spec in DEMO_USERS:
        user = authenticate(username=spec.username, password=DEMO_PASSWORD)
        assert user is not None, spec.username
        assert user.role == spec.role
        assert user.languages == list(spec.languages)
    assert User.objects.get(username="mia").is_moderator
    admin = User.objects.get(username="admin")
    assert admin.role == Role.ADMIN
    assert admin.is_superuser


def test_the_demo_volunteer_logs_in_on_the_web_page_and_can_work_at_once(client) -> None:  # type: ignore[no-untyped-def]
    seed()
    response = client.post("/accounts/login/", {"login": "ada", "password": DEMO_PASSWORD})
    assert response.status_code == 302
    dashboard = client.get(response["Location"])
    assert dashboard.status_code == 200  # no terms or tutorial in the way
    assert b"Start any task" in dashboard.content
    started = client.post("/tasks/start/", {"type": "random", "lang": "en"})
    assert re.fullmatch(r"/tasks/[0-9a-f-]+/", started["Location"])
    assert client.get(started["Location"]).status_code == 200


def test_running_it_twice_changes_nothing_and_prints_the_logins_and_key_again(
    var_dir: Path,
) -> None:
    first = seed()
    before = database_counts()
    key_file = (var_dir / "demo-api-key.txt").read_text()
    second = seed()
    assert database_counts() == before
    assert (var_dir / "demo-api-key.txt").read_text() == key_file
    assert "already there, nothing changed" in second
    key = KEY.search(first)
    assert key is not None
    assert key.group() in second
    assert key_file.strip() == key.group()
    for spec in DEMO_USERS:
        assert re.search(rf"^\s+{spec.username}\s+{spec.role}\s.*{DEMO_PASSWORD}$", second, re.M)


def test_the_printout_has_the_address_the_logins_the_key_and_the_trees_per_state() -> None:
    out = seed()
    assert "http://127.0.0.1:8000/api/docs/" in out
    assert 'curl -H "Authorization: Bearer chorus_' in out
    for spec in DEMO_USERS:
        assert spec.username in out
    for state in State:
        count = MessageTree.objects.filter(state=state).count()
        assert re.search(rf"^\s+{state.value}\s+{count}$", out, re.M)


def test_the_printed_api_key_works_for_ada() -> None:
    key = KEY.search(seed())
    assert key is not None
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {key.group()}")
    response = client.get("/api/v1/me/")
    assert response.status_code == 200
    assert response.json()["username"] == "ada"
    available = client.get("/api/v1/tasks/availability/", {"lang": "en"})
    assert available.status_code == 200


def test_without_the_local_key_file_a_rerun_says_where_the_key_went(var_dir: Path) -> None:
    seed()
    (var_dir / "demo-api-key.txt").unlink()
    out = seed()
    assert KEY.search(out) is None
    assert "printed when the demo was created" in out


def test_a_database_with_other_accounts_is_left_alone() -> None:
    create_user(username="someone", password="a real password")
    out = seed()
    assert "not added" in out
    assert not User.objects.filter(username__in=[u.username for u in DEMO_USERS]).exists()
    assert not MessageTree.objects.exists()
