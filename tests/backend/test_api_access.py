"""Who may call the API and what each person sees: keys, sessions, acting for users, roles."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from backend import api_urls
from backend.accounts.models import ApiClient, Role
from backend.accounts.services import create_api_client, create_user, revoke_api_client
from backend.moderation.models import Report
from backend.tasks.models import Task
from backend.tasks.services import expire_tasks
from backend.trees import services as trees
from backend.trees.models import Message, MessageTree, Reaction
from backend.trees.rules import State
from tests.factories import MessageFactory, TreeFactory, UserFactory

pytestmark = pytest.mark.django_db

HTTP_METHODS = ("get", "post", "put", "patch", "delete")
GOOD_LABELS = {"spam": 0, "lang_mismatch": 0, "quality": 0.75}


def assert_error(response, status: int, code: str) -> dict:  # type: ignore[no-untyped-def]
    assert response.status_code == status, (response.status_code, response.content[:800])
    body = response.json()
    assert set(body) == {"error"}, body
    assert {"code", "message", "fields"} <= set(body["error"]), body
    assert body["error"]["code"] == code, body
    assert body["error"]["message"], body
    return body["error"]


def every_endpoint() -> list[tuple[str, str]]:
    """(method, path) for each route of backend/api_urls.py, its parameters filled in."""
    # Fixed values, so every xdist worker collects the same test ids.
    fill = {"uuid": "00000000-0000-4000-8000-000000000001", "str": "+1"}
    endpoints = []
    for pattern in api_urls.urlpatterns:
        route = re.sub(
            r"<(\w+):\w+>", lambda m: fill[m.group(1)], "/api/v1/" + str(pattern.pattern)
        )
        view = pattern.callback.view_class
        endpoints += [(method, route) for method in HTTP_METHODS if hasattr(view, method)]
    return endpoints


def author():  # type: ignore[no-untyped-def]
    """A message author; no password, as hashing one costs a fifth of a second."""
    return UserFactory(password=None)


def accepted_root(state: State = State.GROWING, **fields) -> Message:  # type: ignore[no-untyped-def]
    tree = TreeFactory(state=state)
    fields = {"author": author(), "review_result": True, "review_count": 3, **fields}
    return MessageFactory(tree=tree, **fields)


def bearer(key: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")
    return client


# --- Authentication ------------------------------------------------------------------------


@pytest.mark.parametrize(("method", "path"), every_endpoint())
def test_every_endpoint_refuses_an_anonymous_caller(method, path):
    accepted_root()
    tasks_before = Task.objects.count()
    response = APIClient().generic(method.upper(), path, "{}", content_type="application/json")
    assert_error(response, 401, "not_authenticated")
    assert response["WWW-Authenticate"] == "Bearer"
    assert Task.objects.count() == tasks_before


@pytest.mark.parametrize(
    "header",
    [
        "Bearer nonsense",
        "Bearer ",
        "Bearer chorus_",
        "Bearer chorus__secret",
        "Bearer other_abc_secret",
    ],
)
def test_a_malformed_api_key_is_refused(header):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=header)
    response = client.get("/api/v1/me/")
    assert_error(response, 401, "authentication_failed")
    assert response["WWW-Authenticate"] == "Bearer"


def test_an_unknown_api_key_is_refused(bob):
    prefix = bob.key.split("_")[1]
    for key in ("chorus_000000000000_secret", f"chorus_{prefix}_wrong-secret"):
        assert_error(bearer(key).get("/api/v1/me/"), 401, "authentication_failed")


def test_a_revoked_api_key_is_refused(bob):
    assert bob.get("/api/v1/me/").status_code == 200
    revoke_api_client(client=ApiClient.objects.get(owner=bob.user))
    response = bob.get("/api/v1/me/")
    assert_error(response, 401, "authentication_failed")
    assert_error(bob.request_task("initial_prompt"), 401, "authentication_failed")
    assert not Task.objects.exists()


def test_the_key_of_a_deactivated_account_is_refused(bob):
    bob.user.is_active = False
    bob.user.save(update_fields=["is_active"])
    assert_error(bob.get("/api/v1/me/"), 401, "authentication_failed")


def test_another_authorization_scheme_counts_as_anonymous(bob):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Basic {bob.key}")
    assert_error(client.get("/api/v1/me/"), 401, "not_authenticated")


def test_a_valid_key_authenticates_its_owner(bob):
    response = bob.get("/api/v1/me/")
    assert response.status_code == 200
    assert response.json()["username"] == bob.user.username
    assert response.json()["role"] == "volunteer"


# --- Acting for other users ----------------------------------------------------------------


def test_an_ordinary_client_may_not_act_for_another_user(bob, carol):
    bob.client.credentials(
        HTTP_AUTHORIZATION=f"Bearer {bob.key}", HTTP_X_CHORUS_USER=carol.user.username
    )
    assert_error(bob.get("/api/v1/me/"), 403, "permission_denied")
    assert_error(bob.request_task("initial_prompt"), 403, "permission_denied")
    assert not Task.objects.exists()


def test_an_ordinary_client_may_name_its_own_owner(bob):
    bob.client.credentials(
        HTTP_AUTHORIZATION=f"Bearer {bob.key}", HTTP_X_CHORUS_USER=bob.user.username
    )
    assert bob.get("/api/v1/me/").json()["username"] == bob.user.username


@pytest.fixture
def trusted_key() -> str:
    owner = create_user(username="chat-bot", role=Role.VOLUNTEER)
    _, key = create_api_client(owner=owner, name="chat bot", can_act_for_users=True)
    return key


def acting(key: str, username: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {key}", HTTP_X_CHORUS_USER=username)
    return client


def test_a_trusted_client_acts_for_the_user_it_names(trusted_key, carol):
    client = acting(trusted_key, carol.user.username)
    assert client.get("/api/v1/me/").json()["username"] == carol.user.username

    response = client.post("/api/v1/tasks/", {"type": "initial_prompt", "lang": "en"}, "json")
    assert response.status_code == 201, response.json()
    task = Task.objects.get(pk=response.json()["id"])
    assert task.user == carol.user

    done = client.post(
        f"/api/v1/tasks/{task.id}/submit/", {"key": "k", "text": "Why is the sea salty?"}, "json"
    )
    assert done.status_code == 201, done.json()
    assert Message.objects.get(pk=done.json()["result_id"]).author == carol.user
    # The task is carol's own: her personal key can read it too.
    assert carol.get(f"/api/v1/tasks/{task.id}/").status_code == 200


def test_a_trusted_client_without_the_header_acts_as_its_owner(trusted_key):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {trusted_key}")
    assert client.get("/api/v1/me/").json()["username"] == "chat-bot"


def test_a_trusted_client_cannot_act_for_someone_who_does_not_exist(trusted_key):
    assert_error(acting(trusted_key, "nobody").get("/api/v1/me/"), 401, "authentication_failed")


def test_a_trusted_client_cannot_act_for_a_deactivated_user(trusted_key, carol):
    carol.user.is_active = False
    carol.user.save(update_fields=["is_active"])
    client = acting(trusted_key, carol.user.username)
    assert_error(client.get("/api/v1/me/"), 401, "authentication_failed")


def test_a_trusted_client_acting_for_a_banned_user_gets_no_task(trusted_key, carol):
    carol.user.is_banned = True
    carol.user.save(update_fields=["is_banned"])
    client = acting(trusted_key, carol.user.username)
    response = client.post("/api/v1/tasks/", {"type": "initial_prompt", "lang": "en"}, "json")
    assert_error(response, 403, "user_banned")
    assert not Task.objects.exists()


# --- Sessions ------------------------------------------------------------------------------


def test_a_logged_in_session_reads_its_profile():
    user = create_user(username="dora", password="a long enough pass phrase", languages=["de"])
    client = APIClient()
    assert client.login(username="dora", password="a long enough pass phrase")
    response = client.get("/api/v1/me/")
    assert response.status_code == 200
    assert response.json()["username"] == "dora"
    assert response.json()["languages"] == ["de"]
    assert response.json()["id"] == str(user.id)


def test_a_forced_login_session_reads_its_profile_and_stats(bob):
    client = APIClient()
    client.force_login(bob.user)
    assert client.get("/api/v1/me/").json()["username"] == bob.user.username
    assert client.get("/api/v1/me/stats/").status_code == 200


def test_a_session_write_without_a_csrf_token_is_refused(bob):
    client = APIClient(enforce_csrf_checks=True)
    client.force_login(bob.user)
    response = client.post("/api/v1/tasks/", {"type": "initial_prompt", "lang": "en"}, "json")
    assert_error(response, 403, "permission_denied")
    assert not Task.objects.exists()


def test_an_api_key_needs_no_csrf_token(bob):
    client = APIClient(enforce_csrf_checks=True)
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {bob.key}")
    response = client.post("/api/v1/tasks/", {"type": "initial_prompt", "lang": "en"}, "json")
    assert response.status_code == 201, response.json()


def test_a_logged_out_session_is_anonymous(bob):
    client = APIClient()
    client.force_login(bob.user)
    client.logout()
    assert_error(client.get("/api/v1/me/"), 401, "not_authenticated")


# --- Rate limits ---------------------------------------------------------------------------


@pytest.fixture
def tight_rates(settings):  # type: ignore[no-untyped-def]
    settings.CHORUS_RATELIMITS = {"api": {"anon": "2/min", "user": "3/min"}}


def test_a_client_over_its_rate_is_told_when_to_retry(tight_rates, bob):
    for _ in range(3):
        assert bob.get("/api/v1/me/").status_code == 200
    response = bob.get("/api/v1/me/")
    error = assert_error(response, 429, "rate_limited")
    assert 1 <= int(response["Retry-After"]) <= 60
    assert error["retry_after"] == int(response["Retry-After"])
    assert f"retry in {error['retry_after']} s" in error["message"]


# --- Moderator commands --------------------------------------------------------------------


@pytest.mark.parametrize("verb", ["halt", "resume"])
def test_a_volunteer_may_not_halt_or_resume_a_tree(bob, verb):
    state = State.GROWING if verb == "halt" else State.HALTED_BY_MODERATOR
    root = accepted_root(state)
    if verb == "resume":
        MessageTree.objects.filter(pk=root.tree_id).update(state_before_halt=State.GROWING)
    response = bob.post(f"/api/v1/trees/{root.tree_id}/{verb}/")
    assert_error(response, 403, "permission_denied")
    assert MessageTree.objects.get(pk=root.tree_id).state == state


def test_a_moderator_halts_and_resumes_a_tree_where_it_stopped(moderator):
    root = accepted_root()  # growing, with room for replies
    halted = moderator.post(f"/api/v1/trees/{root.tree_id}/halt/")
    assert halted.status_code == 200, halted.json()
    assert halted.json()["state"] == State.HALTED_BY_MODERATOR
    tree = MessageTree.objects.get(pk=root.tree_id)
    assert tree.state == State.HALTED_BY_MODERATOR
    assert tree.state_before_halt == State.GROWING

    resumed = moderator.post(f"/api/v1/trees/{root.tree_id}/resume/")
    assert resumed.status_code == 200, resumed.json()
    assert resumed.json()["state"] == State.GROWING
    tree.refresh_from_db()
    assert (tree.state, tree.state_before_halt) == (State.GROWING, "")
    assert list(tree.state_changes.values_list("target", flat=True)) == [
        State.HALTED_BY_MODERATOR,
        State.GROWING,
    ]


def test_a_halted_tree_hands_out_no_tasks(bob, moderator):
    root = accepted_root()
    assert moderator.post(f"/api/v1/trees/{root.tree_id}/halt/").status_code == 200
    assert_error(bob.request_task("assistant_reply"), 404, "no_task_available")


# --- What each person sees -----------------------------------------------------------------


@pytest.fixture
def mixed_tree(carol):  # type: ignore[no-untyped-def]
    """A growing tree: an accepted root and reply, carol's pending reply, someone else's
    pending reply, a rejected reply and a deleted one."""
    root = accepted_root()
    tree = root.tree

    def reply(**fields):  # type: ignore[no-untyped-def]
        fields.setdefault("author", author())
        return MessageFactory(tree=tree, parent=root, role="assistant", **fields)

    return {
        "root": root,
        "accepted": reply(review_result=True),
        "carols_pending": reply(author=carol.user),
        "others_pending": reply(),
        "rejected": reply(review_result=False),
        "deleted": reply(review_result=True, deleted=True),
    }


def visible_ids(person, tree_id) -> set[str]:  # type: ignore[no-untyped-def]
    response = person.get(f"/api/v1/trees/{tree_id}/")
    assert response.status_code == 200, response.json()
    return {m["id"] for m in response.json()["messages"]}


def ids(tree: dict, *names: str) -> set[str]:
    return {str(tree[name].id) for name in names}


def test_a_volunteer_sees_only_accepted_messages_in_a_tree(bob, mixed_tree):
    tree_id = mixed_tree["root"].tree_id
    assert visible_ids(bob, tree_id) == ids(mixed_tree, "root", "accepted")
    for hidden in ("carols_pending", "others_pending", "rejected", "deleted"):
        message_id = mixed_tree[hidden].id
        assert_error(bob.get(f"/api/v1/messages/{message_id}/"), 404, "not_found")
        assert_error(bob.get(f"/api/v1/messages/{message_id}/conversation/"), 404, "not_found")


def test_a_volunteer_sees_their_own_pending_message(carol, mixed_tree):
    tree_id = mixed_tree["root"].tree_id
    assert visible_ids(carol, tree_id) == ids(mixed_tree, "root", "accepted", "carols_pending")
    mine = mixed_tree["carols_pending"]
    response = carol.get(f"/api/v1/messages/{mine.id}/")
    assert response.status_code == 200
    assert response.json()["review_result"] is None
    chain = carol.get(f"/api/v1/messages/{mine.id}/conversation/").json()
    assert [m["id"] for m in chain] == [str(mixed_tree["root"].id), str(mine.id)]


def test_a_moderator_sees_every_message_including_deleted_ones(moderator, mixed_tree):
    assert visible_ids(moderator, mixed_tree["root"].tree_id) == ids(mixed_tree, *mixed_tree)
    deleted = moderator.get(f"/api/v1/messages/{mixed_tree['deleted'].id}/")
    assert deleted.status_code == 200
    assert deleted.json()["deleted"] is True
    pending = moderator.get(f"/api/v1/messages/{mixed_tree['others_pending'].id}/")
    assert pending.status_code == 200


def tree_ids(person, **params) -> set[str]:  # type: ignore[no-untyped-def]
    response = person.get("/api/v1/trees/", **params)
    assert response.status_code == 200, response.json()
    return {t["id"] for t in response.json()["results"]}


@pytest.mark.parametrize("state", [State.HALTED_BY_MODERATOR, State.ABORTED_LOW_GRADE])
def test_a_volunteer_does_not_see_halted_or_aborted_trees(bob, moderator, state):
    live = accepted_root()
    hidden = accepted_root(state, author=bob.user)  # not even a tree of their own
    assert tree_ids(bob) == {str(live.tree_id)}
    assert_error(bob.get(f"/api/v1/trees/{hidden.tree_id}/"), 404, "not_found")
    assert_error(bob.get(f"/api/v1/messages/{hidden.id}/"), 404, "not_found")
    assert_error(bob.get(f"/api/v1/messages/{hidden.id}/conversation/"), 404, "not_found")
    assert_error(
        bob.post(f"/api/v1/messages/{hidden.id}/reactions/", {"emoji": "+1"}), 404, "not_found"
    )
    assert_error(
        bob.post(f"/api/v1/messages/{hidden.id}/reports/", {"reason": "spam"}), 404, "not_found"
    )

    assert tree_ids(moderator) == {str(live.tree_id), str(hidden.tree_id)}
    assert tree_ids(moderator, state=state) == {str(hidden.tree_id)}
    assert moderator.get(f"/api/v1/trees/{hidden.tree_id}/").status_code == 200
    assert moderator.get(f"/api/v1/messages/{hidden.id}/").status_code == 200


def test_a_tree_whose_root_waits_for_review_is_seen_only_by_its_author(bob, carol, moderator):
    root = trees.create_tree(author=carol.user, text="How do tides work?", lang="en")
    assert str(root.tree_id) in tree_ids(carol)
    assert visible_ids(carol, root.tree_id) == {str(root.id)}
    assert str(root.tree_id) not in tree_ids(bob)
    assert_error(bob.get(f"/api/v1/trees/{root.tree_id}/"), 404, "not_found")
    assert str(root.tree_id) in tree_ids(moderator)


def test_a_tree_whose_root_was_deleted_is_hidden_from_volunteers(bob, moderator):
    root = accepted_root(deleted=True)
    assert str(root.tree_id) not in tree_ids(bob)
    assert_error(bob.get(f"/api/v1/trees/{root.tree_id}/"), 404, "not_found")
    assert str(root.tree_id) in tree_ids(moderator)


def test_the_tree_list_filters_by_state_and_language(bob):
    growing = accepted_root()
    ranking = accepted_root(State.RANKING)
    german = TreeFactory(state=State.GROWING, lang="de")
    MessageFactory(tree=german, lang="de", author=author(), review_result=True)
    assert tree_ids(bob, state="ranking") == {str(ranking.tree_id)}
    assert tree_ids(bob, lang="de") == {str(german.id)}
    assert tree_ids(bob, state="growing", lang="en") == {str(growing.tree_id)}


# --- Stats, reactions, reports -------------------------------------------------------------


def lease(person, task_type: str) -> dict:  # type: ignore[no-untyped-def]
    response = person.request_task(task_type)
    assert response.status_code == 201, response.json()
    return response.json()


def test_my_stats_count_what_i_did(bob, carol):
    others = author()
    trees.create_tree(author=others, text="Prompt to review.", lang="en")
    parent = accepted_root(State.RANKING)
    for _ in range(2):
        MessageFactory(
            tree=parent.tree, parent=parent, role="assistant", author=author(), review_result=True
        )
    Message.objects.filter(pk=parent.pk).update(children_count=2, accepted_children_count=2)

    prompt = lease(bob, "initial_prompt")
    assert bob.submit(prompt["id"], key="p", text="My first prompt.").status_code == 201
    review = lease(bob, "label_initial_prompt")
    assert bob.submit(review["id"], key="r", labels=GOOD_LABELS).status_code == 201
    rank = lease(bob, "rank_assistant_replies")
    order = [reply["id"] for reply in rank["replies"]]
    assert bob.submit(rank["id"], key="k", ranking=order).status_code == 201
    skipped = lease(bob, "initial_prompt")
    skip = bob.post(f"/api/v1/tasks/{skipped['id']}/skip/", {"reason": "too_long"})
    assert skip.status_code == 200
    late = lease(bob, "initial_prompt")
    Task.objects.filter(pk=late["id"]).update(expires_at=timezone.now() - timedelta(minutes=1))
    assert expire_tasks() == 1
    # Older messages of bob's that were decided, and a deleted one that no longer counts.
    for result in (True, True, False):
        accepted_root(author=bob.user, review_result=result)
    accepted_root(author=bob.user, deleted=True)

    stats = bob.get("/api/v1/me/stats/").json()
    assert stats == {
        "messages_written": 4,
        "messages_accepted": 2,
        "messages_rejected": 1,
        "messages_pending_review": 1,
        "acceptance_rate": pytest.approx(2 / 3),
        "reviews": 1,
        "rankings": 1,
        "tasks_submitted": 3,
        "tasks_skipped": 1,
        "tasks_expired": 1,
    }
    theirs = carol.get("/api/v1/me/stats/").json()
    assert theirs["tasks_submitted"] == theirs["messages_written"] == 0
    assert theirs["acceptance_rate"] is None


def test_reactions_count_once_per_person_and_emoji(bob, carol):
    message = accepted_root()
    path = f"/api/v1/messages/{message.id}/reactions/"

    first = bob.post(path, {"emoji": "+1"})
    assert first.status_code == 201
    assert first.json() == {"message_id": str(message.id), "emojis": {"+1": 1}}
    assert bob.post(path, {"emoji": "+1"}).json()["emojis"] == {"+1": 1}
    assert carol.post(path, {"emoji": "+1"}).json()["emojis"] == {"+1": 2}
    assert bob.post(path, {"emoji": "heart_eyes"}).json()["emojis"] == {"+1": 2, "heart_eyes": 1}
    assert Reaction.objects.filter(message=message).count() == 3
    assert bob.get(f"/api/v1/messages/{message.id}/").json()["emojis"] == {
        "+1": 2,
        "heart_eyes": 1,
    }

    removed = bob.client.delete(f"{path}+1/")
    assert removed.status_code == 200
    assert removed.json()["emojis"] == {"+1": 1, "heart_eyes": 1}
    # Taking back what is not there changes nothing.
    assert bob.client.delete(f"{path}+1/").json()["emojis"] == {"+1": 1, "heart_eyes": 1}
    assert bob.client.delete(f"{path}heart_eyes/").json()["emojis"] == {"+1": 1}
    assert Message.objects.get(pk=message.pk).emojis == {"+1": 1}
    assert list(Reaction.objects.values_list("user", "emoji")) == [(carol.user.id, "+1")]


def test_a_volunteer_cannot_react_to_a_message_they_cannot_see(bob, mixed_tree):
    pending = mixed_tree["others_pending"]
    response = bob.post(f"/api/v1/messages/{pending.id}/reactions/", {"emoji": "+1"})
    assert_error(response, 404, "not_found")
    assert not Reaction.objects.exists()


def test_a_report_puts_the_message_in_front_of_the_moderators(bob):
    message = accepted_root()
    path = f"/api/v1/messages/{message.id}/reports/"
    response = bob.post(path, {"reason": "personal_data", "text": "  It has a phone number. "})
    assert response.status_code == 201, response.json()
    report = Report.objects.get()
    assert response.json()["id"] == report.id
    assert response.json()["message_id"] == str(message.id)
    assert (report.message, report.reporter, report.reason) == (message, bob.user, "personal_data")
    assert report.text == "It has a phone number."
    assert report.resolved_at is None

    # Once a moderator has dealt with it, the same person may report the message again.
    Report.objects.filter(pk=report.pk).update(resolved_at=timezone.now())
    assert bob.post(path, {"reason": "spam"}).status_code == 201
    assert Report.objects.filter(message=message, reporter=bob.user).count() == 2


def test_a_volunteer_cannot_report_a_message_they_cannot_see(bob, mixed_tree):
    response = bob.post(f"/api/v1/messages/{mixed_tree['deleted'].id}/reports/", {"reason": "spam"})
    assert_error(response, 404, "not_found")
    assert not Report.objects.exists()


def test_a_reviewer_reports_the_message_their_task_shows_by_naming_the_task(bob, carol):
    """A prompt waiting for review is not public, but the API client reviewing it must be
    able to report it, as the task page can (found by bench/soak.py)."""
    prompt = trees.create_tree(author=carol.user, text="Some dubious prompt text", lang="en")
    task = bob.request_task("label_initial_prompt").json()
    assert task["message_id"] == str(prompt.id)
    path = f"/api/v1/messages/{prompt.id}/reports/"
    assert_error(bob.post(path, {"reason": "offensive"}), 404, "not_found")
    others = create_user(username="dora", languages=["en"], accepted_terms_version=1)
    not_theirs = Task.objects.create(
        type="label_initial_prompt",
        lang="en",
        user=others,
        tree_id=prompt.tree_id,
        slot=prompt,
        expires_at=timezone.now() + timedelta(minutes=5),
    )
    named = {"reason": "offensive", "task_id": str(not_theirs.id)}
    assert_error(bob.post(path, named), 404, "not_found")
    assert not Report.objects.exists()

    response = bob.post(path, {"reason": "offensive", "task_id": task["id"]})
    assert response.status_code == 201, response.json()
    report = Report.objects.get()
    assert (report.message_id, report.reporter) == (prompt.id, bob.user)
    # A task that shows another message does not open this one.
    other = trees.create_tree(author=carol.user, text="An unrelated second prompt", lang="en")
    response = bob.post(f"/api/v1/messages/{other.id}/reports/", named | {"task_id": task["id"]})
    assert_error(response, 404, "not_found")
