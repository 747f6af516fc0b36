"""Tree upkeep: reconcile, lease expiry, the lottery and prompt queue limits, rejections,
scoring and its failure, halts. Transitions schedule jobs on commit, so these tests commit
(`transaction=True`) and run those jobs in process."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable, Iterator
from datetime import timedelta

import pytest
from django.db import connection, transaction
from django.utils import timezone

from backend.accounts.models import Role
from backend.core.errors import Conflict, NotAllowed
from backend.tasks.models import Task, TaskStatus
from backend.tasks.services import expire_tasks
from backend.trees import consensus, rules, services
from backend.trees.models import Message, MessageTree, Ranking
from backend.trees.rules import State
from backend.trees.selectors import tree_facts
from tests.backend.conftest import Volunteer
from tests.factories import MessageFactory

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def jobs_run_in_process() -> Iterator[None]:
    """On-commit jobs (promote, score) run right away, whatever broker the run was given."""
    from backend.celery import app

    before = app.conf.task_always_eager
    app.conf.task_always_eager = True
    yield
    app.conf.task_always_eager = before


@pytest.fixture(autouse=True)
def fast_password_hashing(settings):  # type: ignore[no-untyped-def]
    """The factories give every author a password; the default hasher takes ~0.3 s each."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


# --- Building trees ------------------------------------------------------------------------


def make_tree(*, state: State = State.GROWING, lang: str = "en", **limits: object) -> Message:
    """A tree in `state` with the deployment's limits (overridable) and an accepted root."""
    tree = MessageTree.objects.create(
        state=state, lang=lang, **{**services.tree_limits(), **limits}
    )
    return MessageFactory(
        tree=tree, lang=lang, review_result=True, review_count=tree.reviews_needed
    )


def add_child(parent: Message, *, accepted: bool | None = True) -> Message:
    """A reply under `parent` with the parent's counters kept as the services keep them."""
    child = MessageFactory(
        tree=parent.tree,
        parent=parent,
        lang=parent.lang,
        role=rules.reply_role(parent.role),
        review_result=accepted,
        review_count=parent.tree.reviews_needed if accepted is not None else 0,
    )
    parent.children_count += accepted is not False
    parent.accepted_children_count += accepted is True
    parent.save(update_fields=["children_count", "accepted_children_count"])
    return child


def state_of(tree_id: uuid.UUID) -> State:
    return State(MessageTree.objects.get(pk=tree_id).state)


def count(state: State, lang: str = "en") -> int:
    return MessageTree.objects.filter(state=state, lang=lang).count()


def rank(ranker: Volunteer, order: Callable[[list[str]], list[str]]) -> dict:
    """Lease a ranking task and submit `order(offered ids)`; return the task."""
    response = ranker.request_task("rank_assistant_replies")
    assert response.status_code == 201, response.json()
    task = response.json()
    offered = [reply["id"] for reply in task["replies"]]
    done = ranker.submit(task["id"], key=uuid.uuid4().hex, ranking=order(offered))
    assert done.status_code == 201, done.json()
    return task


def run_concurrently(*targets: Callable[[], object]) -> None:
    """Run each target in its own thread, on its own database connection; re-raise the
    first error any of them raised."""
    errors: list[BaseException] = []

    def run(target: Callable[[], object]) -> None:
        try:
            target()
        except BaseException as error:
            errors.append(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(target,)) for target in targets]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not any(thread.is_alive() for thread in threads), "a thread is stuck"
    if errors:
        raise errors[0]


def error_code(response) -> str:  # type: ignore[no-untyped-def]
    return response.json()["error"]["code"]


# --- Reconcile -----------------------------------------------------------------------------


def test_a_tree_stalled_by_a_lost_event_is_moved_by_reconcile(small_trees):
    root = make_tree(goal_size=3)
    add_child(root)
    add_child(root)
    assert services.advance_tree_by_id(tree_id=root.tree_id) == State.RANKING
    # The event is lost: the tree is back to growing although its facts say ranking.
    MessageTree.objects.filter(pk=root.tree_id).update(state=State.GROWING)
    tree = MessageTree.objects.get(pk=root.tree_id)
    assert rules.next_state(tree_facts(tree)) == State.RANKING

    outcome = services.reconcile_trees()

    assert state_of(root.tree_id) == State.RANKING
    assert outcome["moved"] == 1
    assert outcome["checked"] == 1


def test_reconcile_finishes_every_kind_of_stalled_tree_and_leaves_settled_ones(small_trees):
    # An accepted root whose verdict never moved the tree: it goes through the lottery.
    reviewed = make_tree(state=State.INITIAL_PROMPT_REVIEW)
    # A waiting prompt while the language has room.
    waiting = make_tree(state=State.PROMPT_LOTTERY_WAITING)
    # A ranking tree whose last ranking's event was lost: it is scored and finished.
    ranked = make_tree(state=State.RANKING, rankings_needed=1)
    first, second = add_child(ranked), add_child(ranked)
    Ranking.objects.create(parent=ranked, user=ranked.author, ordered_ids=[second.id, first.id])
    Message.objects.filter(pk=ranked.pk).update(ranking_count=1)
    # Trees with nothing to do stay where they are.
    small = make_tree(state=State.GROWING)

    outcome = services.reconcile_trees()

    assert state_of(reviewed.tree_id) == State.GROWING
    assert state_of(waiting.tree_id) == State.GROWING
    assert state_of(ranked.tree_id) == State.READY_FOR_EXPORT
    assert Message.objects.get(pk=second.pk).rank == 0
    assert state_of(small.tree_id) == State.GROWING
    assert outcome["checked"] == 4
    assert outcome["moved"] == 3


def test_reconcile_leaves_a_prompt_that_waits_for_its_reviews_in_review(small_trees):
    root = write_prompt(Volunteer())
    review(Volunteer(), "label_initial_prompt", spam=0)  # one review of two so far
    tree = MessageTree.objects.get(pk=root.tree_id)
    assert tree_facts(tree).root_review_result is None

    services.reconcile_trees()

    assert state_of(root.tree_id) == State.INITIAL_PROMPT_REVIEW


def test_reconcile_aborts_a_tree_whose_root_prompt_was_deleted(small_trees):
    root = make_tree(state=State.INITIAL_PROMPT_REVIEW)
    Message.objects.filter(pk=root.pk).update(review_result=None, deleted=True)

    services.reconcile_trees()

    assert state_of(root.tree_id) == State.ABORTED_LOW_GRADE


def test_reconcile_never_touches_finished_or_halted_trees(small_trees):
    done = make_tree(state=State.READY_FOR_EXPORT)
    aborted = make_tree(state=State.ABORTED_LOW_GRADE)
    halted = make_tree(state=State.HALTED_BY_MODERATOR, goal_size=1)
    MessageTree.objects.filter(pk=halted.tree_id).update(state_before_halt=State.GROWING)

    outcome = services.reconcile_trees()

    assert state_of(done.tree_id) == State.READY_FOR_EXPORT
    assert state_of(aborted.tree_id) == State.ABORTED_LOW_GRADE
    assert state_of(halted.tree_id) == State.HALTED_BY_MODERATOR
    assert outcome == {"checked": 1, "moved": 0, "promoted": 0}


# --- Expired leases ------------------------------------------------------------------------


def lease_reply(volunteer: Volunteer) -> dict:
    response = volunteer.request_task("assistant_reply")
    assert response.status_code == 201, response.json()
    return response.json()


def let_time_run_out(task_id: str) -> None:
    """What 30 minutes do to a lease: the task and its slot both pass their time."""
    past = timezone.now() - timedelta(seconds=1)
    task = Task.objects.get(pk=task_id)
    Task.objects.filter(pk=task.pk).update(expires_at=past)
    Message.objects.filter(pk=task.slot_id, lease_task_id=task.pk).update(lease_until=past)


def test_an_expired_lease_is_marked_expired_and_its_slot_goes_to_another_volunteer(small_trees):
    root = make_tree()
    alice, bob = Volunteer(), Volunteer()
    task = lease_reply(alice)
    assert task["message_id"] == str(root.id)
    # One lease per slot: while alice writes, bob gets nothing under the root.
    refused = bob.request_task("assistant_reply")
    assert refused.status_code == 404
    assert "all_taken" in [r["code"] for r in refused.json()["error"]["reasons"]]

    let_time_run_out(task["id"])
    assert expire_tasks() == 1

    expired = Task.objects.get(pk=task["id"])
    assert expired.status == TaskStatus.EXPIRED
    assert expired.done_at is not None
    root.refresh_from_db()
    assert root.lease_task_id is None
    assert root.lease_until is None
    again = lease_reply(bob)
    assert again["message_id"] == str(root.id)
    done = bob.submit(again["id"], key="bob-1", text="The tide follows the moon.")
    assert done.status_code == 201, done.json()
    assert expire_tasks() == 0


def test_expiry_leaves_unexpired_leases_alone(small_trees):
    make_tree()
    task = lease_reply(Volunteer())
    prompt = Volunteer().request_task("initial_prompt").json()

    assert expire_tasks() == 0

    assert Task.objects.get(pk=task["id"]).status == TaskStatus.LEASED
    assert Task.objects.get(pk=prompt["id"]).status == TaskStatus.LEASED
    assert Message.objects.get(pk=task["message_id"]).lease_task_id == uuid.UUID(task["id"])


def test_an_expired_first_prompt_task_is_expired_too(small_trees):
    prompt = Volunteer().request_task("initial_prompt").json()
    Task.objects.filter(pk=prompt["id"]).update(expires_at=timezone.now() - timedelta(seconds=1))

    assert expire_tasks() == 1
    assert Task.objects.get(pk=prompt["id"]).status == TaskStatus.EXPIRED


def test_expiry_never_frees_a_slot_someone_else_has_leased_since(small_trees):
    root = make_tree()
    alice, bob = Volunteer(), Volunteer()
    late = lease_reply(alice)
    let_time_run_out(late["id"])
    # Bob takes the free slot before the expiry job has run.
    taken = lease_reply(bob)
    assert taken["message_id"] == str(root.id)

    assert expire_tasks() == 1

    root.refresh_from_db()
    assert root.lease_task_id == uuid.UUID(taken["id"])
    done = bob.submit(taken["id"], key="bob-1", text="Because of the moon.")
    assert done.status_code == 201, done.json()


def test_an_expired_review_of_a_new_prompt_leaves_the_prompt_in_review(small_trees):
    root = write_prompt(Volunteer())
    reviewer = Volunteer()
    task = reviewer.request_task("label_initial_prompt").json()
    assert task["message_id"] == str(root.id)
    let_time_run_out(task["id"])

    assert expire_tasks() == 1

    assert state_of(root.tree_id) == State.INITIAL_PROMPT_REVIEW
    assert Volunteer().request_task("label_initial_prompt").json()["message_id"] == str(root.id)


def test_a_task_submitted_after_its_time_ran_out_is_refused_as_expired(small_trees):
    root = make_tree()
    alice = Volunteer()
    task = lease_reply(alice)
    let_time_run_out(task["id"])

    late = alice.submit(task["id"], key="late", text="Sorry, I was away.")

    assert late.status_code == 409
    assert error_code(late) == "task_expired"
    assert not Message.objects.filter(parent=root).exists()
    assert Task.objects.get(pk=task["id"]).status == TaskStatus.LEASED


def test_a_task_the_expiry_job_closed_is_refused_as_expired(small_trees):
    make_tree()
    alice = Volunteer()
    task = lease_reply(alice)
    let_time_run_out(task["id"])
    assert expire_tasks() == 1

    late = alice.submit(task["id"], key="late", text="Sorry, I was away.")

    assert late.status_code == 409
    assert error_code(late) == "task_expired"


# --- The lottery ---------------------------------------------------------------------------


def test_the_lottery_fills_growing_trees_exactly_up_to_the_limit(small_trees):
    limit = small_trees["max_active_trees"]
    make_tree(state=State.GROWING)
    for _ in range(6):
        make_tree(state=State.PROMPT_LOTTERY_WAITING)
    for _ in range(2):
        make_tree(state=State.PROMPT_LOTTERY_WAITING, lang="de")

    promoted = services.promote_from_lottery(lang="en")

    assert len(promoted) == limit - 1
    assert count(State.GROWING) == limit
    assert count(State.PROMPT_LOTTERY_WAITING) == 6 - (limit - 1)
    growing = MessageTree.objects.filter(state=State.GROWING, lang="en")
    assert set(promoted) <= set(growing.values_list("id", flat=True))
    # Full: a second draw promotes nothing; other languages have their own limit.
    assert services.promote_from_lottery(lang="en") == []
    assert count(State.PROMPT_LOTTERY_WAITING, "de") == 2
    assert len(services.promote_from_lottery(lang="de")) == 2
    assert count(State.GROWING, "en") == limit


def test_when_a_tree_leaves_growing_the_lottery_draws_another(small_trees):
    limit = small_trees["max_active_trees"]
    done = make_tree(goal_size=2)
    add_child(done)
    for _ in range(limit - 1):
        make_tree()
    for _ in range(2):
        make_tree(state=State.PROMPT_LOTTERY_WAITING)

    # The tree reaches its goal; the promote job runs when that commits.
    assert services.advance_tree_by_id(tree_id=done.tree_id) == State.READY_FOR_SCORING

    assert state_of(done.tree_id) == State.READY_FOR_EXPORT  # scored after the commit, too

    assert count(State.GROWING) == limit
    assert count(State.PROMPT_LOTTERY_WAITING) == 1


def test_concurrent_draws_never_overshoot_the_growing_limit(small_trees):
    limit = small_trees["max_active_trees"]
    for _ in range(10):
        make_tree(state=State.PROMPT_LOTTERY_WAITING)
    start = threading.Barrier(6)
    promoted: list[uuid.UUID] = []

    def draw() -> None:
        start.wait()
        promoted.extend(services.promote_from_lottery(lang="en"))

    run_concurrently(*[draw] * 6)

    assert len(promoted) == limit
    assert len(set(promoted)) == limit
    assert count(State.GROWING) == limit


def test_prompts_accepted_at_the_same_time_never_grow_past_the_limit(small_trees):
    limit = small_trees["max_active_trees"]
    for _ in range(limit - 1):
        make_tree()
    # Two prompts whose last review was just recorded: each is advanced under its own lock.
    first = make_tree(state=State.INITIAL_PROMPT_REVIEW)
    second = make_tree(state=State.INITIAL_PROMPT_REVIEW)
    first_moved, second_done = threading.Event(), threading.Event()

    def accept_first() -> None:
        with transaction.atomic():
            services.advance_tree(services.lock_tree(first.tree_id))
            first_moved.set()
            # Commit only after the other prompt was decided (or a fixed lock made it wait).
            second_done.wait(timeout=3)

    def accept_second() -> None:
        first_moved.wait(timeout=10)
        services.advance_tree_by_id(tree_id=second.tree_id)
        second_done.set()

    run_concurrently(accept_first, accept_second)

    assert count(State.GROWING) == limit
    assert count(State.PROMPT_LOTTERY_WAITING) == 1


# --- The prompt queue ----------------------------------------------------------------------


def reason_codes(response) -> list[str]:  # type: ignore[no-untyped-def]
    return [reason["code"] for reason in response.json()["error"]["reasons"]]


def test_first_prompts_are_refused_once_the_review_queue_is_full(small_trees):
    limit = small_trees["max_prompts_in_review"]
    writers = [Volunteer() for _ in range(limit)]
    # Half the queue are prompts in review, the rest are prompts being written.
    for n, writer in enumerate(writers[: limit // 2]):
        task = writer.request_task("initial_prompt").json()
        assert writer.submit(task["id"], key="p", text=f"Prompt {n}?").status_code == 201
    leases = [w.request_task("initial_prompt") for w in writers[limit // 2 :]]
    assert [r.status_code for r in leases] == [201] * (limit - limit // 2)
    assert count(State.INITIAL_PROMPT_REVIEW) == limit // 2

    late = Volunteer()
    refused = late.request_task("initial_prompt")

    assert refused.status_code == 404
    assert error_code(refused) == "no_task_available"
    assert reason_codes(refused) == ["prompt_queue_full"]
    # A lease that ran out no longer holds a place in the queue.
    Task.objects.filter(pk=leases[0].json()["id"]).update(
        expires_at=timezone.now() - timedelta(seconds=1)
    )
    assert late.request_task("initial_prompt").status_code == 201


def test_first_prompts_are_refused_once_the_lottery_is_full(small_trees):
    for _ in range(small_trees["max_prompts_in_lottery"]):
        make_tree(state=State.PROMPT_LOTTERY_WAITING)

    refused = Volunteer().request_task("initial_prompt")

    assert refused.status_code == 404
    assert error_code(refused) == "no_task_available"
    assert "prompt_queue_full" in reason_codes(refused)
    # Another language has its own queue.
    assert Volunteer(languages=["de"]).request_task("initial_prompt", lang="de").status_code == 201


# --- Review verdicts -----------------------------------------------------------------------


def review(reviewer: Volunteer, task_type: str, spam: int) -> dict:
    response = reviewer.request_task(task_type)
    assert response.status_code == 201, response.json()
    task = response.json()
    done = reviewer.submit(
        task["id"], key=uuid.uuid4().hex, labels={"spam": spam, "lang_mismatch": 0}
    )
    assert done.status_code == 201, done.json()
    return task


def write_prompt(author: Volunteer, text: str = "How do tides work?") -> Message:
    task = author.request_task("initial_prompt").json()
    done = author.submit(task["id"], key=uuid.uuid4().hex, text=text)
    assert done.status_code == 201, done.json()
    return Message.objects.get(pk=done.json()["result_id"])


def test_a_prompt_reviewed_as_spam_is_aborted_low_grade(small_trees):
    root = write_prompt(Volunteer(), "Buy cheap watches!!!")
    for _ in range(small_trees["reviews_per_message"]):
        review(Volunteer(), "label_initial_prompt", spam=1)

    root.refresh_from_db()
    assert root.review_result is False
    assert state_of(root.tree_id) == State.ABORTED_LOW_GRADE
    # Nothing about the tree is handed out any more.
    assert Volunteer().request_task("label_initial_prompt").status_code == 404
    assert Volunteer().request_task("assistant_reply").status_code == 404


def test_a_prompt_reviewed_as_good_enters_the_lottery_and_grows_when_there_is_room(
    small_trees,
):
    root = write_prompt(Volunteer())
    for _ in range(small_trees["reviews_per_message"]):
        review(Volunteer(), "label_initial_prompt", spam=0)

    assert Message.objects.get(pk=root.pk).review_result is True
    assert state_of(root.tree_id) == State.GROWING
    assert lease_reply(Volunteer())["message_id"] == str(root.id)


def test_a_rejected_reply_frees_its_place_under_the_parent(small_trees):
    root = make_tree()
    writers = [Volunteer() for _ in range(small_trees["max_children_prompter"])]
    replies = []
    for writer in writers:
        task = lease_reply(writer)
        done = writer.submit(task["id"], key="r", text=f"A reply by {writer.user.username}")
        assert done.status_code == 201, done.json()
        replies.append(done.json()["result_id"])
    root.refresh_from_db()
    assert root.children_count == len(writers)
    assert Volunteer().request_task("assistant_reply").status_code == 404

    # Each reviewer reviews both replies: the first is spam, the second is fine.
    spam_reply = replies[0]
    for reviewer in [Volunteer() for _ in range(small_trees["reviews_per_message"])]:
        for _ in replies:
            response = reviewer.request_task("label_assistant_reply")
            assert response.status_code == 201, response.json()
            task = response.json()
            labels = {"spam": int(task["message_id"] == spam_reply), "lang_mismatch": 0}
            done = reviewer.submit(task["id"], key=uuid.uuid4().hex, labels=labels)
            assert done.status_code == 201, done.json()

    assert Message.objects.get(pk=spam_reply).review_result is False
    assert Message.objects.get(pk=replies[1]).review_result is True
    root.refresh_from_db()
    assert root.children_count == len(writers) - 1
    assert root.accepted_children_count == 1
    assert state_of(root.tree_id) == State.GROWING
    assert lease_reply(Volunteer())["message_id"] == str(root.id)


# --- Scoring -------------------------------------------------------------------------------


def test_scoring_writes_ranks_strengths_and_agreement_and_finishes_the_tree(small_trees):
    root = make_tree(state=State.RANKING, rankings_needed=2, max_depth=3)
    a, b, c = add_child(root), add_child(root), add_child(root)
    follow_up = add_child(a)
    d, e = add_child(follow_up), add_child(follow_up)
    best_first = {str(b.id): 0, str(a.id): 1, str(c.id): 2}
    first, second = Volunteer(), Volunteer()

    # Under the root both rankers agree: b, a, c. Under the follow-up they disagree.
    for ranker, under_follow_up in ((first, [d, e]), (second, [e, d])):
        for _ in range(2):

            def order(offered: list[str], wanted: list[Message] = under_follow_up) -> list[str]:
                if set(offered) == set(best_first):
                    return sorted(offered, key=best_first.__getitem__)
                return [str(m.id) for m in wanted]

            rank(ranker, order)

    assert state_of(root.tree_id) == State.READY_FOR_EXPORT
    siblings = {m.id: m for m in Message.objects.filter(parent=root)}
    assert {str(i): m.rank for i, m in siblings.items()} == best_first
    strengths = [siblings[m.id].consensus_strength for m in (b, a, c)]
    assert all(s is not None for s in strengths)
    assert strengths == sorted(strengths, reverse=True)
    assert sum(strengths) == pytest.approx(1.0)
    assert Message.objects.get(pk=root.pk).replies_agreement == pytest.approx(1.0)

    pair = list(Message.objects.filter(parent=follow_up))
    assert sorted(m.rank for m in pair) == [0, 1]
    assert all(m.consensus_strength is not None for m in pair)
    assert Message.objects.get(pk=follow_up.pk).replies_agreement == pytest.approx(0.0)
    # Messages that were not ranked get no rank.
    assert Message.objects.get(pk=follow_up.pk).rank is None
    assert Message.objects.get(pk=root.pk).rank is None

    agreement = {
        (r.parent_id, r.user_id): r.agreement_with_consensus for r in Ranking.objects.all()
    }
    assert len(agreement) == 4
    assert agreement[root.id, first.user.pk] == pytest.approx(1.0)
    assert agreement[root.id, second.user.pk] == pytest.approx(1.0)
    assert sorted(agreement[follow_up.id, u.user.pk] for u in (first, second)) == [-1.0, 1.0]


def ranked_tree(ranks_needed: int = 1) -> tuple[Message, list[Message]]:
    """A ranking tree whose last ranking is in (its event not yet handled)."""
    root = make_tree(state=State.RANKING, rankings_needed=ranks_needed)
    replies = [add_child(root) for _ in range(3)]
    for _ in range(ranks_needed):
        Ranking.objects.create(
            parent=root,
            user=Volunteer().user,
            ordered_ids=[replies[2].id, replies[0].id, replies[1].id],
        )
    Message.objects.filter(pk=root.pk).update(ranking_count=ranks_needed)
    return root, replies


def test_a_scoring_error_leaves_the_tree_failed_until_reconcile_finishes_it(
    small_trees, monkeypatch
):
    root, replies = ranked_tree()

    def broken(rankings: object) -> consensus.Consensus:
        raise RuntimeError("the aggregation blew up")

    with monkeypatch.context() as patch:
        patch.setattr(consensus, "aggregate", broken)
        services.advance_tree_by_id(tree_id=root.tree_id)
        assert state_of(root.tree_id) == State.SCORING_FAILED
        assert not Message.objects.filter(parent=root, rank__isnull=False).exists()
        # While it still fails, reconcile retries and leaves it failed.
        assert services.reconcile_trees()["moved"] == 0
        assert state_of(root.tree_id) == State.SCORING_FAILED

    outcome = services.reconcile_trees()

    assert outcome["moved"] == 1
    assert state_of(root.tree_id) == State.READY_FOR_EXPORT
    ranks = {m.id: m.rank for m in Message.objects.filter(parent=root)}
    assert ranks == {replies[2].id: 0, replies[0].id: 1, replies[1].id: 2}


def test_scoring_a_tree_that_is_not_ready_changes_nothing(small_trees):
    root, _ = ranked_tree(ranks_needed=2)
    Ranking.objects.filter(parent=root).first().delete()
    Message.objects.filter(pk=root.pk).update(ranking_count=1)

    assert services.score_tree(tree_id=root.tree_id) == State.RANKING
    assert not Message.objects.filter(parent=root, rank__isnull=False).exists()


def test_ranks_ignore_a_reply_deleted_after_it_was_ranked(small_trees):
    root, replies = ranked_tree()
    Message.objects.filter(pk=replies[2].pk).update(deleted=True)
    Message.objects.filter(pk=root.pk).update(accepted_children_count=2)

    services.advance_tree_by_id(tree_id=root.tree_id)

    assert state_of(root.tree_id) == State.READY_FOR_EXPORT
    ranks = {m.id: m.rank for m in Message.objects.filter(parent=root)}
    assert ranks == {replies[0].id: 0, replies[1].id: 1, replies[2].id: None}


# --- Halts ---------------------------------------------------------------------------------


def test_halt_then_resume_returns_the_tree_where_it_was_and_its_tasks_work_again(small_trees):
    root = make_tree()
    moderator, alice, bob = Volunteer(role=Role.MODERATOR), Volunteer(), Volunteer()
    task = lease_reply(alice)

    halted = moderator.post(f"/api/v1/trees/{root.tree_id}/halt/")
    assert halted.status_code == 200, halted.json()
    tree = MessageTree.objects.get(pk=root.tree_id)
    assert tree.state == State.HALTED_BY_MODERATOR
    assert tree.state_before_halt == State.GROWING
    refused = alice.submit(task["id"], key="a1", text="Because of the moon.")
    assert refused.status_code == 409
    assert error_code(refused) == "tree_halted"
    assert bob.request_task("label_initial_prompt").status_code == 404
    services.reconcile_trees()
    assert state_of(root.tree_id) == State.HALTED_BY_MODERATOR

    resumed = moderator.post(f"/api/v1/trees/{root.tree_id}/resume/")
    assert resumed.status_code == 200, resumed.json()
    assert state_of(root.tree_id) == State.GROWING
    assert MessageTree.objects.get(pk=root.tree_id).state_before_halt == ""
    done = alice.submit(task["id"], key="a1", text="Because of the moon.")
    assert done.status_code == 201, done.json()
    reviewing = bob.request_task("label_assistant_reply")
    assert reviewing.status_code == 201, reviewing.json()
    assert reviewing.json()["message_id"] == done.json()["result_id"]


def test_a_tree_halted_in_ranking_resumes_in_ranking(small_trees):
    root = make_tree(state=State.RANKING)
    add_child(root)
    add_child(root)
    moderator = Volunteer(role=Role.MODERATOR)

    services.halt_tree(tree_id=root.tree_id, moderator=moderator.user)
    assert state_of(root.tree_id) == State.HALTED_BY_MODERATOR
    services.resume_tree(tree_id=root.tree_id, moderator=moderator.user)

    assert state_of(root.tree_id) == State.RANKING
    assert Volunteer().request_task("rank_assistant_replies").status_code == 201


def test_a_resumed_tree_moves_on_if_its_facts_changed_while_halted(small_trees):
    root = make_tree(state=State.RANKING, rankings_needed=1)
    first, second = add_child(root), add_child(root)
    moderator = Volunteer(role=Role.MODERATOR).user
    services.halt_tree(tree_id=root.tree_id, moderator=moderator)
    # A ranking arrives (say, an import) while the tree is halted: nothing moves.
    Ranking.objects.create(parent=root, user=root.author, ordered_ids=[first.id, second.id])
    Message.objects.filter(pk=root.pk).update(ranking_count=1)
    assert services.advance_tree_by_id(tree_id=root.tree_id) == State.HALTED_BY_MODERATOR

    services.resume_tree(tree_id=root.tree_id, moderator=moderator)

    assert state_of(root.tree_id) == State.READY_FOR_EXPORT


def test_halting_a_tree_that_does_not_exist_answers_not_found(small_trees):
    moderator = Volunteer(role=Role.MODERATOR)

    response = moderator.post(f"/api/v1/trees/{uuid.uuid4()}/halt/")

    assert response.status_code == 404
    assert error_code(response) == "not_found"


def test_only_moderators_halt_and_only_unfinished_trees_are_halted(small_trees):
    root = make_tree()
    volunteer = Volunteer()
    moderator = Volunteer(role=Role.MODERATOR)

    refused = volunteer.post(f"/api/v1/trees/{root.tree_id}/halt/")
    assert refused.status_code == 403
    with pytest.raises(NotAllowed):
        services.halt_tree(tree_id=root.tree_id, moderator=volunteer.user)
    with pytest.raises(Conflict):
        services.resume_tree(tree_id=root.tree_id, moderator=moderator.user)
    services.halt_tree(tree_id=root.tree_id, moderator=moderator.user)
    with pytest.raises(Conflict):
        services.halt_tree(tree_id=root.tree_id, moderator=moderator.user)
    finished = make_tree(state=State.READY_FOR_EXPORT)
    again = moderator.post(f"/api/v1/trees/{finished.tree_id}/halt/")
    assert again.status_code == 409
    assert state_of(finished.tree_id) == State.READY_FOR_EXPORT
