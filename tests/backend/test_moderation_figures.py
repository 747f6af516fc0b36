"""The moderators' figures: trollboard, quality and statistics, on small constructed data
(exact numbers), and their read-only API for moderators only."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from rest_framework.test import APIClient

from backend.accounts.models import Role, User
from backend.moderation import figures
from backend.moderation.models import Report
from backend.tasks.models import Task, TaskStatus
from backend.trees.models import Ranking, Reaction, Review
from backend.trees.rules import State
from tests.factories import MessageFactory, TreeFactory, UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _fast_passwords(settings):  # type: ignore[no-untyped-def]
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def days_ago(days: float):  # type: ignore[no-untyped-def]
    return timezone.now() - timedelta(days=days)


def backdate(model: Any, pk: Any, days: float) -> None:
    # created_at is auto_now_add: moved afterwards, as time would have.
    model.objects.filter(pk=pk).update(created_at=days_ago(days))


@pytest.fixture
def signals() -> dict[str, Any]:
    """A troll whose two messages drew reports, flags, spam verdicts and reactions; bob, a
    reviewer who went against a verdict and ranked against the consensus; alice, honest."""
    troll, alice, bob, mod = (UserFactory(username=n) for n in ("troll", "alice", "bob", "mod"))
    tree = TreeFactory(acceptance_threshold=0.6)
    rejected = MessageFactory(tree=tree, author=troll, review_result=False, review_count=2)
    pending = MessageFactory(tree=tree, parent=rejected, role="assistant", author=troll)
    honest = MessageFactory(author=alice, review_result=True)

    Report.objects.create(message=rejected, reporter=alice, reason="spam")
    Report.objects.create(message=pending, reporter=bob, reason="offensive")
    old = Report.objects.create(message=pending, reporter=mod, reason="spam")
    backdate(Report, old.pk, 10)  # in the month and all time, not in the week

    Review.objects.create(message=rejected, user=alice, values={"spam": 1, "lang_mismatch": 0})
    Review.objects.create(
        message=rejected, user=bob, values={"spam": 0, "lang_mismatch": 0, "hate_speech": 1}
    )
    Review.objects.create(message=honest, user=bob, values={"spam": 0, "lang_mismatch": 0})
    # A stale review (the message was edited since) no longer counts for anything.
    Review.objects.create(message=pending, user=mod, values={"spam": 1}, is_stale=True)

    Reaction.objects.create(message=rejected, user=alice, emoji="-1")
    Reaction.objects.create(message=pending, user=bob, emoji="red_flag")
    Reaction.objects.create(message=honest, user=bob, emoji="+1")

    Ranking.objects.create(parent=rejected, user=bob, ordered_ids=[], agreement_with_consensus=-0.5)
    Ranking.objects.create(
        parent=rejected, user=alice, ordered_ids=[], agreement_with_consensus=1.0
    )
    return {"troll": troll, "alice": alice, "bob": bob, "mod": mod}


def test_the_trollboard_ranks_users_by_the_weighted_signals_against_them(signals):
    board = figures.trollboard(window="week")

    assert [row.username for row in board] == ["troll", "bob"]
    troll, bob = board
    assert (troll.reports, troll.flags, troll.spam, troll.downvotes) == (2, 2, 1, 1)
    # 3 * 2 reports + 2 * 2 flags (hate speech review, red flag) + 2 * 1 spam + 1 down-vote
    assert troll.score == 13
    assert (bob.decided_reviews, bob.disagreeing_reviews, bob.review_disagreement) == (2, 1, 0.5)
    assert (bob.rankings, bob.rankings_against, bob.ranking_agreement) == (1, 1, -0.5)
    assert bob.score == 2


def test_the_trollboard_counts_only_signals_inside_the_time_window(signals):
    assert figures.trollboard(window="all")[0].reports == 3
    assert figures.trollboard(window="month")[0].reports == 3
    assert figures.trollboard(window="week")[0].reports == 2
    Report.objects.update(created_at=days_ago(2))
    Review.objects.update(created_at=days_ago(2))
    Reaction.objects.update(created_at=days_ago(2))
    Ranking.objects.update(created_at=days_ago(2))
    assert figures.trollboard(window="day") == []


def test_the_trollboard_is_one_query_however_many_users_it_lists(signals):
    for n in range(5):
        spammer = UserFactory(username=f"spammer{n}")
        Report.objects.create(
            message=MessageFactory(author=spammer), reporter=signals["alice"], reason="spam"
        )
    with CaptureQueriesContext(connection) as queries:
        board = figures.trollboard(window="all")
    assert len(board) == 7
    assert len(queries) == 1


def test_an_unknown_window_is_refused_with_the_field_at_fault():
    with pytest.raises(figures.InvalidInput) as raised:
        figures.trollboard(window="year")
    assert "window" in raised.value.fields


def test_volunteer_agreement_lists_who_ranks_and_reviews_most_against_the_crowd(signals):
    people = figures.volunteer_agreement(minimum=1)

    assert [(p.username, p.ranking_agreement) for p in people["rankings"]] == [
        ("bob", -0.5),
        ("alice", 1.0),
    ]
    assert [(p.username, p.review_disagreement) for p in people["reviews"]] == [
        ("bob", 0.5),
        ("alice", 0.0),
    ]
    # Below the minimum number of decided reviews or scored rankings, nobody is listed.
    assert figures.volunteer_agreement(minimum=3) == {"rankings": [], "reviews": []}


def test_sibling_set_agreement_is_bucketed_by_tenths_and_the_worst_sets_come_first():
    parents = [
        MessageFactory(replies_agreement=value, ranking_count=3) for value in (0.95, 0.05, 1.0, 0.5)
    ]
    MessageFactory(replies_agreement=None)

    assert figures.agreement_histogram() == [1, 0, 0, 0, 0, 1, 0, 0, 0, 2]
    worst = figures.worst_sibling_sets(limit=2)
    assert [p.pk for p in worst] == [parents[1].pk, parents[3].pk]
    overall = figures.ranking_agreement_overall()
    assert overall["sets"] == 4
    assert overall["mean"] == pytest.approx(0.625)


def test_acceptance_rates_are_per_language_and_role():
    for result in (True, True, False, None):
        MessageFactory(lang="en", review_result=result)
    MessageFactory(lang="en", role="assistant", review_result=False, parent=MessageFactory())
    MessageFactory(lang="de", review_result=True)
    MessageFactory(lang="de", review_result=False, deleted=True)  # deleted: not counted

    rows = {(r["lang"], r["role"]): r for r in figures.acceptance_rates()}

    assert rows["en", "prompter"] == {
        "lang": "en",
        "role": "prompter",
        "accepted": 2,
        "rejected": 1,
        "pending": 2,  # the four above and the assistant reply's parent
        "rate": 2 / 3,
    }
    assert (rows["en", "assistant"]["rejected"], rows["en", "assistant"]["rate"]) == (1, 0.0)
    assert (rows["de", "prompter"]["accepted"], rows["de", "prompter"]["rate"]) == (1, 1.0)


def make_task(user: User, kind: str, status: str, **fields: Any) -> Task:
    slot = None if kind == "initial_prompt" else MessageFactory(author=None)
    return Task.objects.create(
        type=kind,
        lang="en",
        user=user,
        slot=slot,
        status=status,
        expires_at=timezone.now() + timedelta(minutes=30),
        **fields,
    )


def test_skip_rates_are_per_task_type_with_the_count_of_each_reason():
    user = UserFactory()
    label = "label_assistant_reply"
    make_task(user, label, TaskStatus.SUBMITTED)
    make_task(user, label, TaskStatus.EXPIRED)
    make_task(user, label, TaskStatus.SKIPPED, skip_reason="not_knowledgeable")
    make_task(user, label, TaskStatus.SKIPPED, skip_reason="too_long")
    make_task(user, "initial_prompt", TaskStatus.SKIPPED, skip_reason="other")
    make_task(user, "initial_prompt", TaskStatus.LEASED)  # undecided: not counted

    rows = {row["type"]: row for row in figures.skip_rates()}

    assert rows[label]["handed_out"] == 4
    assert (rows[label]["skipped"], rows[label]["rate"]) == (2, 0.5)
    assert rows[label]["reasons"] == {
        "not_knowledgeable": 1,
        "inappropriate": 0,
        "wrong_language": 0,
        "too_long": 1,
        "other": 0,
    }
    assert (rows["initial_prompt"]["handed_out"], rows["initial_prompt"]["rate"]) == (1, 1.0)


def test_trees_and_the_backlog_are_counted_per_state_and_language():
    for state, lang in [
        (State.INITIAL_PROMPT_REVIEW, "en"),
        (State.INITIAL_PROMPT_REVIEW, "en"),
        (State.PROMPT_LOTTERY_WAITING, "en"),
        (State.GROWING, "de"),
        (State.RANKING, "de"),
        (State.BACKLOG_RANKING, "de"),
        (State.READY_FOR_EXPORT, "de"),
    ]:
        TreeFactory(state=state, lang=lang)

    trees = figures.trees_by_state_and_language()

    assert {(r["state"], r["lang"]): r["trees"] for r in trees}[
        State.INITIAL_PROMPT_REVIEW, "en"
    ] == 2
    assert figures.backlog(trees) == [
        {"lang": "de", "in_review": 0, "in_lottery": 0, "growing": 1, "waiting_for_ranking": 2},
        {"lang": "en", "in_review": 2, "in_lottery": 1, "growing": 0, "waiting_for_ranking": 0},
    ]


def test_contributions_are_submitted_tasks_per_day_and_type_and_active_volunteers_per_window():
    ann, ben, cat = UserFactory(), UserFactory(), UserFactory()
    now = timezone.now()
    for user, kind, age in [
        (ann, "initial_prompt", timedelta(hours=1)),
        (ann, "assistant_reply", timedelta(hours=2)),
        (ben, "assistant_reply", timedelta(days=3)),
        (cat, "rank_assistant_replies", timedelta(days=20)),
        (cat, "rank_assistant_replies", timedelta(days=40)),  # beyond 30 days
    ]:
        make_task(user, kind, TaskStatus.SUBMITTED, done_at=now - age)
    make_task(ben, "initial_prompt", TaskStatus.SKIPPED, done_at=now)  # not a contribution

    month = figures.contributions(days=30)
    quarter = figures.contributions(days=90)

    per_day = dict(month["per_day"])
    assert len(per_day) == 30
    assert sum(per_day.values()) == 4
    assert per_day[timezone.localdate(now - timedelta(days=3))] == 1
    assert dict(month["per_type"])["assistant_reply"] == 2
    assert dict(month["per_type"])["rank_assistant_replies"] == 1
    assert dict(quarter["per_type"])["rank_assistant_replies"] == 2
    assert figures.active_volunteers() == {"day": 1, "week": 2, "month": 3}


# --- API -----------------------------------------------------------------------------------

ENDPOINTS = (
    "/api/v1/moderation/trollboard/",
    "/api/v1/moderation/quality/",
    "/api/v1/moderation/statistics/",
    "/api/v1/moderation/exports/",
)


@pytest.mark.parametrize("path", ENDPOINTS)
def test_the_figures_api_is_for_moderators_only(path, volunteer, moderator):
    assert APIClient().get(path).status_code == 401
    refused = volunteer().get(path)
    assert refused.status_code == 403
    assert refused.json()["error"]["code"] == "permission_denied"
    assert moderator.get(path).status_code == 200
    assert volunteer(role=Role.ADMIN).get(path).status_code == 200


def test_the_trollboard_api_lists_the_figures_and_refuses_an_unknown_window(signals, moderator):
    rows = moderator.get("/api/v1/moderation/trollboard/", window="week").json()
    assert [(r["username"], r["score"], r["reports"]) for r in rows] == [
        ("troll", 13, 2),
        ("bob", 2, 0),
    ]
    refused = moderator.get("/api/v1/moderation/trollboard/", window="year")
    assert refused.status_code == 400
    assert "window" in refused.json()["error"]["fields"]


def test_the_quality_api_reports_agreement_acceptance_and_skips(signals, moderator):
    MessageFactory(replies_agreement=0.3, ranking_count=2)
    body = moderator.get("/api/v1/moderation/quality/").json()
    assert body["agreement_histogram"][3] == 1
    assert body["worst_sibling_sets"][0]["kendalls_w"] == 0.3
    assert {(r["lang"], r["role"], r["accepted"]) for r in body["acceptance"]} >= {
        ("en", "prompter", 1)
    }


def test_the_statistics_api_gives_90_days_when_asked_and_refuses_other_spans(moderator):
    TreeFactory(state=State.GROWING, lang="fr")
    body = moderator.get("/api/v1/moderation/statistics/", days="90").json()
    assert len(body["contributions_per_day"]) == 90
    assert body["backlog"] == [
        {"lang": "fr", "in_review": 0, "in_lottery": 0, "growing": 1, "waiting_for_ranking": 0}
    ]
    assert moderator.get("/api/v1/moderation/statistics/", days="7").status_code == 400


def test_each_figures_endpoint_runs_a_bounded_number_of_queries(signals, moderator):
    for path, budget in zip(ENDPOINTS[:3], (1, 5, 3), strict=True):
        with CaptureQueriesContext(connection) as queries:
            assert moderator.get(path).status_code == 200
        # Authentication (the API key with its client and owner) comes on top of the figures.
        figure_queries = [
            q for q in queries.captured_queries if "accounts_apiclient" not in q["sql"]
        ]
        assert len(figure_queries) == budget, [q["sql"][:80] for q in figure_queries]
