"""The model in the loop: the served model's candidate replies fill a share of the open
assistant-reply slots in growing trees, within every tree limit, and go to review like any
volunteer's reply; while the inference server is down the job backs off."""

from __future__ import annotations

import random
import time

import pytest

from backend.accounts.services import create_user
from backend.assistant import candidates
from backend.assistant.jobs import write_candidate_replies_job
from backend.core.demo import Crowd
from backend.tasks import services as tasks
from backend.trees import services as trees
from backend.trees.models import Message
from tests.inference import MODEL_ID

pytestmark = pytest.mark.django_db

TREES = {
    "reviews_per_message": 1,
    "acceptance_threshold": 0.6,
    "max_active_trees": 5,
    "max_prompts_in_review": 10,
    "max_prompts_in_lottery": 20,
    "max_depth": 3,
    "max_children_prompter": 2,
    "max_children_assistant": 1,
    "goal_tree_size": 50,
    "rankings_per_parent": 1,
    "rank_prompter_replies": False,
}
PROMPTS = ["Why is the sky blue?", "How do bees make honey?", "What is a leap year?"]


@pytest.fixture
def crowd(settings) -> Crowd:  # type: ignore[no-untyped-def]
    settings.CHORUS_TREE = dict(TREES)
    settings.CHORUS_LANGUAGES = ["en"]
    settings.CHORUS_CANDIDATE_SHARE = 1.0
    users = {
        name: create_user(username=name, languages=["en"], accepted_terms_version=1)
        for name in ("ann", "bea", "cem")
    }
    return Crowd(users)


def growing_roots(crowd: Crowd, texts: list[str]) -> list[Message]:
    roots = []
    for text in texts:
        root = crowd.prompt("ann", text, lang="en")
        crowd.review("bea", root)
        crowd.ensure_growing(root)
        roots.append(root)
    return roots


def synthetic_under(parent: Message) -> list[Message]:
    return list(Message.objects.filter(parent=parent, synthetic=True))


def test_the_model_answers_each_open_prompt_once_as_a_synthetic_reply(crowd, inference) -> None:  # type: ignore[no-untyped-def]
    roots = growing_roots(crowd, PROMPTS)

    result = write_candidate_replies_job.delay().get()

    assert result["status"] == "ok"
    assert len(result["written"]) == len(roots)
    for root in roots:
        (reply,) = synthetic_under(root)
        assert (reply.role, reply.model_name, reply.author_id) == ("assistant", MODEL_ID, None)
        assert reply.review_result is None  # waiting for review like any reply
        assert reply.text
        root.refresh_from_db()
        assert root.children_count == 1
        assert root.lease_task_id is None
    # A second run leaves prompts the model answered already to the volunteers.
    again = write_candidate_replies_job.delay().get()
    assert again["written"] == []
    assert Message.objects.filter(synthetic=True).count() == len(roots)


def test_model_replies_become_review_tasks_for_volunteers(crowd, inference) -> None:  # type: ignore[no-untyped-def]
    (root,) = growing_roots(crowd, PROMPTS[:1])
    candidates.write_candidate_replies()
    (reply,) = synthetic_under(root)

    task = tasks.request_task(user=crowd.users["cem"], task_type="label_assistant_reply", lang="en")
    assert task.slot_id == reply.id
    tasks.submit_task(
        task_id=task.id,
        user=crowd.users["cem"],
        key="review-model-reply",
        payload={"labels": {"spam": 0, "lang_mismatch": 0, "quality": 0.5}},
    )
    reply.refresh_from_db()
    assert reply.review_result is True
    root.refresh_from_db()
    assert root.accepted_children_count == 1


def test_the_model_never_overshoots_a_tree_limit(crowd, inference, settings) -> None:  # type: ignore[no-untyped-def]
    # The crowd is handed whichever open slot of a kind comes first, so each tree is built
    # while its slots are the only ones of their kind: the deep one first.
    (deep,) = growing_roots(crowd, PROMPTS[1:2])
    answer = crowd.reply("bea", deep, "They turn nectar into honey.")
    crowd.review("cem", answer)
    follow_up = crowd.reply("ann", answer, "And how long does it take?")
    crowd.review("cem", follow_up)
    deep.tree.max_depth = 2  # the follow-up sits at the tree's maximum depth now
    deep.tree.save(update_fields=["max_depth"])
    (full,) = growing_roots(crowd, PROMPTS[:1])
    # Its two assistant replies (the most it takes), written straight into the tree: a
    # volunteer asking for a reply slot could be handed the deep tree's root instead.
    for author, text in (("bea", "Because of Rayleigh scattering."), ("cem", "Blue light.")):
        trees.add_reply(tree=full.tree, parent=full, author=crowd.users[author], text=text)
    (open_,) = growing_roots(crowd, PROMPTS[2:])

    candidates.write_candidate_replies()

    assert synthetic_under(full) == []
    assert synthetic_under(follow_up) == []
    assert len(synthetic_under(deep)) == 1  # the root still had room for a second reply
    assert len(synthetic_under(open_)) == 1
    full.refresh_from_db()
    assert full.children_count == 2


def test_the_model_stops_where_a_tree_reached_its_size_goal(crowd, inference) -> None:  # type: ignore[no-untyped-def]
    (root,) = growing_roots(crowd, PROMPTS[:1])
    tree = root.tree
    tree.goal_size = 1  # the accepted root alone meets it
    tree.save(update_fields=["goal_size"])
    run = candidates.write_candidate_replies()
    assert run.written == []
    assert synthetic_under(root) == []


def test_a_slot_leased_to_a_volunteer_is_left_alone(crowd, inference) -> None:  # type: ignore[no-untyped-def]
    taken, free = growing_roots(crowd, PROMPTS[:2])
    task = tasks.request_task(user=crowd.users["cem"], task_type="assistant_reply", lang="en")
    leased = Message.objects.get(pk=task.slot_id)
    other = free if leased.id == taken.id else taken

    candidates.write_candidate_replies()

    assert synthetic_under(leased) == []
    assert len(synthetic_under(other)) == 1
    # The volunteer's submission still goes through.
    tasks.submit_task(
        task_id=task.id, user=crowd.users["cem"], key="k1", payload={"text": "My answer."}
    )
    assert Message.objects.filter(parent=leased, synthetic=False).count() == 1


def test_a_lease_that_ran_out_drops_the_late_reply(crowd, inference) -> None:  # type: ignore[no-untyped-def]
    (root,) = growing_roots(crowd, PROMPTS[:1])
    lease = tasks.lease_slot_for_model(slot_id=root.id, tree_id=root.tree_id, seconds=60)
    assert lease is not None
    assert tasks.lease_slot_for_model(slot_id=root.id, tree_id=root.tree_id, seconds=60) is None
    Message.objects.filter(pk=root.id).update(lease_until=root.created_at)  # it expired
    assert tasks.submit_model_reply(lease=lease, text="Too late.", model_name="m") is None
    assert synthetic_under(root) == []
    root.refresh_from_db()
    assert root.lease_task_id is None


def test_the_share_decides_how_many_open_slots_the_model_fills(crowd, inference, settings) -> None:  # type: ignore[no-untyped-def]
    growing_roots(crowd, [*PROMPTS, "What is rain?"])
    settings.CHORUS_CANDIDATE_SHARE = 0.5
    run = candidates.write_candidate_replies(rng=random.Random(1))
    assert len(run.written) == 2  # half of four
    settings.CHORUS_CANDIDATE_SHARE = 0.0
    assert candidates.write_candidate_replies().status == "off"


def test_rounding_the_share_at_random_keeps_its_expected_value() -> None:
    rng = random.Random(7)
    assert candidates.how_many(4, 0.5, rng) == 2
    assert candidates.how_many(0, 0.5, rng) == 0
    assert candidates.how_many(3, 1.0, rng) == 3
    mean = sum(candidates.how_many(3, 0.2, rng) for _ in range(4000)) / 4000
    assert mean == pytest.approx(0.6, abs=0.05)


def test_without_an_inference_server_the_job_does_nothing(crowd, settings) -> None:  # type: ignore[no-untyped-def]
    settings.INFERENCE_URL = ""
    growing_roots(crowd, PROMPTS[:1])
    assert write_candidate_replies_job.delay().get()["status"] == "off"
    assert not Message.objects.filter(synthetic=True).exists()


def test_the_job_backs_off_while_the_server_is_down_and_frees_its_slots(  # type: ignore[no-untyped-def]
    crowd, inference_down, settings, caplog
) -> None:
    (root,) = growing_roots(crowd, PROMPTS[:1])

    first = write_candidate_replies_job.delay().get()  # the model list cannot be read

    assert first["status"] == "unavailable"
    assert first["resume_at"] > time.time() + 50
    assert "candidate replies paused for 60 s" in caplog.text
    # While paused, runs do not even try.
    assert write_candidate_replies_job.delay().get()["status"] == "backing_off"

    # The server fails in the middle of a reply: the slot goes back to the volunteers, and
    # the pause doubles.
    from django.core.cache import cache

    cache.set(candidates.BACKOFF_KEY, {"until": 0, "failures": 1}, timeout=None)
    settings.INFERENCE_MODEL = "named-so-the-listing-is-skipped"
    second = candidates.write_candidate_replies()
    assert second.status == "unavailable"
    assert second.resume_at is not None
    assert second.resume_at > time.time() + 110
    root.refresh_from_db()
    assert (root.lease_task_id, root.lease_until) == (None, None)
    assert not Message.objects.filter(synthetic=True).exists()
    assert tasks.request_task(user=crowd.users["cem"], task_type="assistant_reply", lang="en")


def test_after_the_pause_the_job_writes_again_once_the_server_is_back(  # type: ignore[no-untyped-def]
    crowd, inference
) -> None:
    from django.core.cache import cache

    growing_roots(crowd, PROMPTS[:1])
    cache.set(candidates.BACKOFF_KEY, {"until": time.time() + 600, "failures": 3}, timeout=None)
    assert candidates.write_candidate_replies().status == "backing_off"
    cache.set(candidates.BACKOFF_KEY, {"until": time.time() - 1, "failures": 3}, timeout=None)
    run = candidates.write_candidate_replies()
    assert (run.status, len(run.written)) == ("ok", 1)
    assert cache.get(candidates.BACKOFF_KEY) is None


@pytest.mark.django_db(transaction=True)
def test_concurrent_leases_of_one_slot_give_it_to_one_taker_only(crowd) -> None:  # type: ignore[no-untyped-def]
    import threading

    from django.db import connection

    (root,) = growing_roots(crowd, PROMPTS[:1])
    start = threading.Barrier(4)
    leases: list[object] = []

    def take() -> None:
        try:
            start.wait()
            leases.append(
                tasks.lease_slot_for_model(slot_id=root.id, tree_id=root.tree_id, seconds=60)
            )
        finally:
            connection.close()

    threads = [threading.Thread(target=take) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(leases) == 4
    assert sum(lease is not None for lease in leases) == 1


def test_model_replies_reach_exports_marked_synthetic_with_their_model(settings, tmp_path) -> None:  # type: ignore[no-untyped-def]
    from pathlib import Path

    from tests.backend.test_exports import conversation, export, nodes, read_jsonl

    settings.CHORUS_EXPORT_DIR = str(tmp_path / "exports")
    tree = conversation()
    Message.objects.filter(pk=tree["other"].pk).update(
        synthetic=True, model_name=MODEL_ID, author=None
    )

    done = export()
    (line,) = read_jsonl(Path(done.path) / "trees.jsonl.gz")
    by_id = {node["message_id"]: node for node in nodes(line)}
    model_reply = by_id[str(tree["other"].id)]
    assert (model_reply["synthetic"], model_reply["model_name"]) == (True, MODEL_ID)
    assert model_reply["user_id"] is None
    assert by_id[str(tree["best"].id)]["synthetic"] is False
    without = export({"include_synthetic": False})
    (line,) = read_jsonl(Path(without.path) / "trees.jsonl.gz")
    assert str(tree["other"].id) not in {node["message_id"] for node in nodes(line)}
