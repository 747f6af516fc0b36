"""Points and leaderboards: awarded as work is submitted, reviewed and scored; boards per
period and language; who is listed; the API; the backfill and the consistency check."""

from __future__ import annotations

import random
from datetime import UTC, date, datetime, timedelta, timezone
from uuid import uuid4

import pytest
from django.core.management import CommandError, call_command
from rest_framework.test import APIClient

from backend.accounts.models import User
from backend.community import points, selectors, services
from backend.community.models import PointAward, PointTotal
from backend.community.points import Kind, Period
from backend.community.services import Award
from backend.tasks.models import Task, TaskStatus
from backend.trees import services as trees
from backend.trees.models import Message, MessageTree, Ranking
from backend.trees.rules import State
from tests.factories import MessageFactory, TreeFactory, UserFactory

GOOD = {"spam": 0, "lang_mismatch": 0, "quality": 0.75}
SPAM = {"spam": 1, "lang_mismatch": 0, "quality": 0.25}


def person(**fields) -> User:  # type: ignore[no-untyped-def]
    return UserFactory(password=None, **fields)


def give(user: User, value: int, at: datetime, *, lang: str = "en", kind: Kind = Kind.REVIEW):
    """One award, stored as the services store every award."""
    return services.store_awards([Award(user.pk, lang, kind, value, uuid4(), at)])


def names(which: selectors.Board) -> dict[str, int]:
    return {entry.name: entry.points for entry in selectors.leaderboard(which)}


def assert_consistent() -> None:
    assert selectors.points_discrepancies() == {"awards": [], "totals": []}


# --- The formula, pure -------------------------------------------------------------------------


def test_periods_start_on_the_utc_day_on_monday_and_on_the_first_of_the_month():
    sunday = date(2024, 6, 2)
    assert points.period_start(Period.DAY, sunday) == sunday
    assert points.period_start(Period.WEEK, sunday) == date(2024, 5, 27)
    assert points.period_start(Period.WEEK, date(2024, 6, 3)) == date(2024, 6, 3)
    assert points.period_start(Period.MONTH, sunday) == date(2024, 6, 1)
    assert points.period_start(Period.ALL, sunday) == points.ALL_TIME_START


def test_a_ranking_earns_more_the_closer_it_is_to_the_consensus():
    assert [points.ranking_agreement_points(t) for t in (1, 0.75, 0.5, 0.25, 0.2, -1)] == [
        2,
        2,
        1,
        1,
        0,
        0,
    ]
    assert points.ranking_agreement_points(None) == 0


def test_a_review_verdict_is_the_acceptance_rule_applied_to_that_review_alone():
    assert points.review_verdict(GOOD, 0.6) is True
    assert points.review_verdict(SPAM, 0.6) is False
    assert points.review_verdict({"spam": 0.5, "lang_mismatch": 0}, 0.6) is False


def test_every_task_type_has_points():
    from backend.tasks.models import TaskType

    assert set(points.TASK_POINTS) == set(TaskType.values)


# --- Awarded as work happens -------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_whole_tree_earns_points_for_every_task_type_and_its_bonuses(volunteer, small_trees):
    small_trees.update(max_children_assistant=2, rank_prompter_replies=True)
    rng = random.Random(11)
    crowd = [volunteer() for _ in range(6)]
    every_type = set(points.TASK_POINTS)
    for _ in range(300):
        for one in crowd:
            one.do_one(rng)
        # Until a tree is finished and every task type was done (which work comes first
        # depends on the order slots are handed out in).
        done_types = set(
            Task.objects.filter(status=TaskStatus.SUBMITTED).values_list("type", flat=True)
        )
        if (
            done_types == every_type
            and MessageTree.objects.filter(state=State.READY_FOR_EXPORT).exists()
        ):
            break
    finished = MessageTree.objects.filter(state=State.READY_FOR_EXPORT).first()
    assert finished is not None

    submitted = list(Task.objects.filter(status=TaskStatus.SUBMITTED))
    assert {t.type for t in submitted} == set(points.TASK_POINTS)
    awards = {(a.kind, a.source_id): a for a in PointAward.objects.all()}
    for task in submitted:
        kind, value = points.task_points(task.type)
        award = awards[(kind.value, task.id)]
        assert (award.user_id, award.lang, award.points) == (task.user_id, "en", value)
        assert award.awarded_at == task.done_at

    accepted = Message.objects.filter(review_result=True)
    assert {m.id for m in accepted} == {s for k, s in awards if k == Kind.ACCEPTED}
    # The scoring bonuses arrived after the tree was scored (the job after the scoring job).
    scored = Ranking.objects.filter(parent__tree=finished, agreement_with_consensus__gte=0.25)
    assert scored.exists()
    assert {r.id for r in scored} <= {s for k, s in awards if k == Kind.AGREEMENT}
    best = Message.objects.filter(tree=finished, rank=0, parent__isnull=False)
    assert {m.id for m in best} & {s for k, s in awards if k == Kind.TOP_REPLY}
    assert_consistent()

    # Everyone's all-time totals equal the sum of their awards, per language and in all.
    for one in crowd:
        mine = sum(a.points for a in awards.values() if a.user_id == one.user.pk)
        which = selectors.board(Period.ALL)
        assert selectors.standing(one.user, which).points == mine
        assert selectors.standing(one.user, selectors.board(Period.ALL, "en")).points == mine

    # An upgrade from a version without points: the backfill gives the same numbers.
    before = dict(
        PointTotal.objects.filter(period="all").values_list("user_id", "points").order_by()
    )
    PointAward.objects.all().delete()
    PointTotal.objects.all().delete()
    call_command("backfill_points")
    after = dict(PointTotal.objects.filter(period="all").values_list("user_id", "points"))
    assert after == before
    assert_consistent()
    call_command("backfill_points", "--check")  # and it says so


@pytest.mark.django_db(transaction=True)  # bonuses are paid by jobs after commit
def test_a_review_that_decides_a_message_pays_its_author_and_the_reviewers_who_agreed(
    volunteer, small_trees
):
    alice, bob, carol, dan, erin = (volunteer() for _ in range(5))

    def review_next_prompt(reviewer, labels):  # type: ignore[no-untyped-def]
        task = reviewer.request_task("label_initial_prompt").json()
        assert reviewer.submit(task["id"], key=uuid4().hex, labels=labels).status_code == 201
        return task["message_id"]

    # Two different prompts: the same one twice would be refused as a near-duplicate.
    prompts = {alice: "How do tides work?", bob: "Why is the sea salty?"}
    for author, (first, second) in ((alice, (GOOD, GOOD)), (bob, (GOOD, SPAM))):
        task = author.request_task("initial_prompt").json()
        author.submit(task["id"], key=uuid4().hex, text=prompts[author])
        review_next_prompt(carol if author is alice else dan, first)
        message_id = review_next_prompt(erin, second)
        message = Message.objects.get(pk=message_id)
        assert message.author == author.user
        assert message.review_result is (author is alice)

    def mine(one) -> dict[str, int]:  # type: ignore[no-untyped-def]
        return selectors.standing(one.user, selectors.board(Period.ALL)).breakdown

    assert (mine(alice)["prompt"], mine(alice)["accepted"]) == (2, 3)
    assert (mine(bob)["prompt"], mine(bob)["accepted"]) == (2, 0)  # rejected
    assert (mine(carol)["review"], mine(carol)["agreement"]) == (1, 1)
    assert mine(dan)["agreement"] == 0  # said "fine" to what was rejected
    assert mine(erin)["review"] == 2
    assert mine(erin)["agreement"] == 2  # agreed both times
    assert_consistent()


def ranked_tree() -> tuple[MessageTree, dict[str, Message], dict[str, User]]:
    """A tree waiting to be scored: a prompt, three accepted replies a, b, c and three
    rankings: two say a > b > c, one says c > b > a."""
    tree = TreeFactory(state=State.READY_FOR_SCORING, goal_size=3)
    root = MessageFactory(tree=tree, author=person(), review_result=True, review_count=3)
    replies = {
        name: MessageFactory(
            tree=tree, parent=root, role="assistant", author=person(), review_result=True
        )
        for name in "abc"
    }
    Message.objects.filter(pk=root.pk).update(children_count=3, accepted_children_count=3)
    rankers = {"agrees": person(), "also_agrees": person(), "disagrees": person()}
    for name, order in zip(rankers, ("abc", "abc", "cba"), strict=True):
        Ranking.objects.create(
            parent=root, user=rankers[name], ordered_ids=[replies[k].id for k in order]
        )
    return tree, replies, rankers


@pytest.mark.django_db
def test_scoring_pays_rankings_that_agree_with_the_consensus_and_the_best_reply():
    tree, replies, rankers = ranked_tree()
    assert services.award_scoring_bonuses(tree_id=tree.id) is None  # not scored yet

    assert trees.score_tree(tree_id=tree.id) == State.READY_FOR_EXPORT
    assert services.award_scoring_bonuses(tree_id=tree.id) == 3
    everyone = selectors.board(Period.ALL)
    assert selectors.standing(rankers["agrees"], everyone).breakdown["agreement"] == 2
    assert selectors.standing(rankers["disagrees"], everyone).points == 0
    assert selectors.standing(replies["a"].author, everyone).breakdown["top_reply"] == 3
    assert selectors.standing(replies["b"].author, everyone).points == 0

    # Given once: a second run (a retried job, the sweep, the backfill) adds nothing.
    assert services.award_scoring_bonuses(tree_id=tree.id) == 0
    assert services.award_recent_scoring_bonuses() == 0
    assert selectors.standing(rankers["agrees"], everyone).points == 2


@pytest.mark.django_db
def test_the_job_waits_for_the_scoring_and_the_sweep_finds_trees_scored_elsewhere():
    from celery.exceptions import Retry

    from backend.community import jobs

    tree, _, _ = ranked_tree()
    with pytest.raises(Retry):  # a worker got it before the scoring job: it tries later
        jobs.award_scoring_bonuses_job.run(str(tree.id))
    trees.score_tree(tree_id=tree.id)  # as the reconcile job would
    assert services.award_recent_scoring_bonuses() == 3
    assert jobs.award_scoring_bonuses_job.run(str(tree.id)) == 0


# --- Boards ------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_each_period_counts_from_its_utc_boundary():
    ann = person(username="ann", display_name="")
    give(ann, 1, datetime(2024, 5, 31, 23, 59, 59, tzinfo=UTC))  # Friday, May
    give(ann, 10, datetime(2024, 6, 1, 0, 0, 0, tzinfo=UTC))  # Saturday, June
    # 01:30 in Berlin on Monday is still Sunday in UTC.
    give(ann, 100, datetime(2024, 6, 3, 1, 30, tzinfo=timezone(timedelta(hours=2))))
    give(ann, 1000, datetime(2024, 6, 3, 0, 0, 1, tzinfo=UTC))  # Monday

    monday, sunday = date(2024, 6, 3), date(2024, 6, 2)
    assert names(selectors.board(Period.DAY, today=monday)) == {"ann": 1000}
    assert names(selectors.board(Period.DAY, today=sunday)) == {"ann": 100}
    assert names(selectors.board(Period.WEEK, today=monday)) == {"ann": 1000}
    assert names(selectors.board(Period.WEEK, today=sunday)) == {"ann": 111}
    assert names(selectors.board(Period.MONTH, today=monday)) == {"ann": 1110}
    assert names(selectors.board(Period.MONTH, today=date(2024, 5, 31))) == {"ann": 1}
    assert names(selectors.board(Period.ALL, today=monday)) == {"ann": 1111}
    assert names(selectors.board(Period.DAY, today=date(2024, 6, 4))) == {}
    assert selectors.points_discrepancies()["totals"] == []


@pytest.mark.django_db
def test_a_language_board_counts_that_language_and_the_board_of_all_counts_every_one():
    now = datetime.now(UTC)
    ann, bea = person(username="ann", display_name=""), person(username="bea", display_name="")
    give(ann, 5, now, lang="en")
    give(ann, 1, now, lang="de")
    give(bea, 4, now, lang="de")
    assert names(selectors.board(Period.WEEK, "en")) == {"ann": 5}
    assert names(selectors.board(Period.WEEK, "de")) == {"bea": 4, "ann": 1}
    assert names(selectors.board(Period.WEEK)) == {"ann": 6, "bea": 4}
    assert selectors.standing(bea, selectors.board(Period.WEEK, "de")).rank == 1
    assert selectors.standing(bea, selectors.board(Period.WEEK)).rank == 2
    assert selectors.standing(bea, selectors.board(Period.WEEK, "fr")).rank is None


@pytest.mark.django_db
def test_equal_points_share_a_rank_and_the_list_is_ordered_by_points():
    now = datetime.now(UTC)
    people = [person(username=f"p{i}", display_name="") for i in range(4)]
    for one, value in zip(people, (3, 7, 7, 1), strict=True):
        give(one, value, now)
    entries = selectors.leaderboard(selectors.board(Period.DAY))
    assert [(e.rank, e.points) for e in entries] == [(1, 7), (1, 7), (3, 3), (4, 1)]
    assert selectors.standing(people[0], selectors.board(Period.DAY)).rank == 3
    assert selectors.standing(people[0], selectors.board(Period.DAY)).volunteers == 4


@pytest.mark.django_db
def test_hidden_banned_imported_and_deleted_people_are_left_off_but_see_their_own_points():
    now = datetime.now(UTC)
    shown = person(username="shown", display_name="")
    hidden = person(username="hidden", display_name="", show_on_leaderboard=False)
    banned = person(username="banned", display_name="", is_banned=True)
    imported = person(username="imported", display_name="", is_imported=True)
    gone = person(username="gone", display_name="", is_active=False)
    for value, one in enumerate((shown, hidden, banned, imported, gone), start=1):
        give(one, value * 10, now)
    which = selectors.board(Period.ALL)
    assert names(which) == {"shown": 10}
    mine = selectors.standing(hidden, which)
    assert (mine.points, mine.is_listed, mine.rank, mine.volunteers) == (20, False, 1, 2)
    assert selectors.standing(shown, which).rank == 1  # hidden people take no place
    assert selectors.standing(shown, which).volunteers == 1


@pytest.mark.django_db
def test_an_imported_author_earns_no_points_even_when_an_award_names_them():
    imported = person(username="imported", is_imported=True)
    assert give(imported, 10, datetime.now(UTC)) == 0
    assert not PointAward.objects.exists()
    assert not PointTotal.objects.exists()


@pytest.mark.django_db
def test_a_rank_counts_only_listed_volunteers_ahead_on_a_big_board():
    now = datetime.now(UTC)
    people = [person(username=f"p{i}", display_name="") for i in range(30)]
    for value, one in enumerate(people, start=1):
        give(one, value, now)
    # The five best leave the board in five ways; the one in the middle keeps their place.
    people[29].show_on_leaderboard = False
    people[28].is_banned = True
    people[27].is_active = False
    for one in people[27:]:
        one.save()
    which = selectors.board(Period.WEEK)
    middle = selectors.standing(people[14], which)
    assert (middle.points, middle.rank, middle.volunteers) == (15, 13, 27)
    top = selectors.standing(people[29], which)  # hidden: where they would stand
    assert (top.rank, top.volunteers, top.is_listed) == (1, 28, False)


@pytest.mark.django_db
def test_an_award_is_given_once_however_often_it_is_stored():
    ann = person()
    award = Award(ann.pk, "en", Kind.ACCEPTED, 3, uuid4(), datetime.now(UTC))
    assert services.store_awards([award]) == 1
    assert services.store_awards([award, award]) == 0
    assert selectors.standing(ann, selectors.board(Period.ALL)).points == 3
    assert PointTotal.objects.filter(user=ann).count() == 4 * 2  # 4 periods, in en and in all


@pytest.mark.django_db
def test_the_consistency_check_finds_totals_and_awards_that_are_off():
    ann = person()
    give(ann, 3, datetime.now(UTC))
    assert selectors.points_discrepancies()["totals"] == []
    # A ledger row no submission explains, and a total that does not add up.
    assert selectors.points_discrepancies()["awards"]
    PointAward.objects.all().delete()
    PointTotal.objects.filter(user=ann, period="week", lang="").update(points=4)
    problems = selectors.points_discrepancies()
    assert len(problems["totals"]) == 8
    with pytest.raises(CommandError):
        call_command("backfill_points", "--check")
    call_command("backfill_points")  # the rebuild drops totals no award explains
    assert_consistent()


# --- The API -----------------------------------------------------------------------------------


@pytest.mark.django_db
def test_the_leaderboard_api_lists_volunteers_with_their_breakdown_and_your_place(bob, carol):
    now = datetime.now(UTC)
    give(carol.user, 5, now, kind=Kind.REPLY)
    give(carol.user, 3, now, kind=Kind.ACCEPTED, lang="de")
    give(bob.user, 1, now)
    response = bob.get("/api/v1/leaderboard/", period="day")
    assert response.status_code == 200, response.json()
    body = response.json()
    assert (body["period"], body["lang"], body["start"]) == ("day", "", now.date().isoformat())
    assert [(r["name"], r["rank"], r["points"]) for r in body["results"]] == [
        (carol.user.public_name, 1, 8),
        (bob.user.public_name, 2, 1),
    ]
    assert body["results"][0]["breakdown"] == {
        "prompt": 0,
        "reply": 5,
        "review": 0,
        "ranking": 0,
        "accepted": 3,
        "agreement": 0,
        "top_reply": 0,
    }
    assert body["me"]["rank"] == 2
    assert body["me"]["is_listed"] is True
    assert body["volunteers"] == 2
    assert {rule["kind"] for rule in body["formula"]} == {k.value for k in Kind}

    german = bob.get("/api/v1/leaderboard/", period="all", lang="de", limit=1).json()
    assert [(r["name"], r["points"]) for r in german["results"]] == [(carol.user.public_name, 3)]
    assert german["me"]["rank"] is None


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"period": "year"}, "period"),
        ({"lang": "xx"}, "lang"),
        ({"limit": "0"}, "limit"),
        ({"limit": "many"}, "limit"),
    ],
)
def test_the_leaderboard_api_refuses_bad_input(bob, params, field):
    response = bob.get("/api/v1/leaderboard/", **params)
    assert response.status_code == 400
    body = response.json()
    assert set(body) == {"error"}
    assert body["error"]["code"] == "invalid_input"
    assert field in body["error"]["fields"]


@pytest.mark.django_db
def test_the_leaderboard_api_is_for_signed_in_people_only():
    response = APIClient().get("/api/v1/leaderboard/")
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "not_authenticated"


@pytest.mark.django_db
def test_the_leaderboard_is_in_the_api_schema_with_its_errors():
    schema = APIClient().get("/api/schema/", HTTP_ACCEPT="application/json").json()
    operation = schema["paths"]["/api/v1/leaderboard/"]["get"]
    assert {"200", "400", "401", "429"} <= set(operation["responses"])
    assert {p["name"] for p in operation["parameters"]} >= {"period", "lang", "limit"}
