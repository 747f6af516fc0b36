"""Importing OpenAssistant exports (trees and flat messages) with backend.trees.importing."""

from __future__ import annotations

import gzip
import json
import random
import shutil
import uuid
from datetime import UTC, datetime
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from backend.accounts.models import User
from backend.trees.importing import import_oasst
from backend.trees.models import Message, MessageTree, Origin
from backend.trees.oasst_format import infer_state, state_implied_by
from backend.trees.rules import State
from tests.factories import MessageFactory

# The one sample tree whose file says ready_for_export although the three assistant
# replies to its prompt (and two further down) carry no rank.
SAMPLE_UNRANKED_TREE = uuid.UUID("156b36ed-30cf-4d9d-ae65-d0780553f76f")


def node(text: str, role: str = "prompter", *replies: dict[str, Any], **fields: Any) -> dict:
    """A message node in the export format, accepted and in English unless told otherwise."""
    message = {
        "message_id": str(uuid.uuid4()),
        "text": text,
        "role": role,
        "lang": "en",
        "review_count": 3,
        "review_result": True,
        "deleted": False,
        "synthetic": False,
        "replies": list(replies),
        **fields,
    }
    for reply in message["replies"]:
        reply["parent_id"] = message["message_id"]
    return message


def tree_line(prompt: dict, **fields: Any) -> str:
    return json.dumps({"message_tree_id": prompt["message_id"], "prompt": prompt, **fields})


def flat_lines(prompt: dict, *, tree_id: str | None = None) -> list[str]:
    """The tree as one message per line, the way the flat export writes it."""
    lines, stack = [], [(prompt, None)]
    while stack:
        message, parent_id = stack.pop()
        row = {k: v for k, v in message.items() if k != "replies"}
        row["parent_id"] = parent_id
        if tree_id is not None:
            row["message_tree_id"] = tree_id
        lines.append(json.dumps(row))
        stack.extend((reply, message["message_id"]) for reply in message["replies"])
    return lines


def ranked_conversation() -> dict:
    """A prompt with two ranked answers, one of which has a follow-up question."""
    return node(
        "How do plants make food?",
        "prompter",
        node(
            "By photosynthesis.",
            "assistant",
            node("What does chlorophyll do?", "prompter"),
            rank=0,
        ),
        node("From sunlight, water and air.", "assistant", rank=1),
    )


def sample_records(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def walk(message: dict, depth: int = 0, parent: str | None = None):
    yield message, depth, parent
    for reply in message.get("replies", []):
        yield from walk(reply, depth + 1, message["message_id"])


# --- the real sample ---------------------------------------------------------------------


@pytest.mark.django_db
def test_the_real_sample_imports_every_tree_and_message_with_ids_parents_depths_and_ranks_kept(
    oasst_sample_path,
):
    with oasst_sample_path.open("rb") as lines:
        report = import_oasst(lines=lines, source=str(oasst_sample_path))

    assert report.errors == []
    assert (report.trees_imported, report.messages_imported, report.trees_skipped) == (100, 1167, 0)
    records = sample_records(oasst_sample_path)
    expected = {
        uuid.UUID(m["message_id"]): (m, depth, parent, uuid.UUID(record["message_tree_id"]))
        for record in records
        for m, depth, parent in walk(record["prompt"])
    }
    stored = {m.id: m for m in Message.objects.all()}
    assert stored.keys() == expected.keys()
    for message_id, (source, depth, parent, tree_id) in expected.items():
        message = stored[message_id]
        assert message.tree_id == tree_id
        assert message.parent_id == (uuid.UUID(parent) if parent else None)
        assert message.depth == depth
        assert (message.role, message.text, message.lang) == (
            source["role"],
            source["text"],
            source["lang"],
        )
        assert message.rank == source.get("rank")
        assert message.review_result is source["review_result"]
        assert message.synthetic is source["synthetic"]
        assert message.model_name == source.get("model_name")
        assert message.emojis == source.get("emojis", {})
        assert message.author_id is None
    assert sum(m.rank is not None for m in stored.values()) == 641
    trees = MessageTree.objects.all()
    assert {t.id for t in trees} == {uuid.UUID(r["message_tree_id"]) for r in records}
    assert {(t.origin, t.lang) for t in trees} == {(Origin.IMPORT, "en")}


@pytest.mark.django_db
def test_every_sample_tree_is_ready_for_export_except_the_one_with_an_unranked_reply_set(
    oasst_sample_path,
):
    # The file calls all 100 trees ready_for_export, but one of them has three accepted
    # assistant replies to its prompt with no rank at all: that set still needs ranking.
    with oasst_sample_path.open("rb") as lines:
        report = import_oasst(lines=lines)

    assert report.states == {"ready_for_export": 99, "backlog_ranking": 1}
    assert MessageTree.objects.get(state=State.BACKLOG_RANKING).id == SAMPLE_UNRANKED_TREE


@pytest.mark.django_db
def test_an_imported_tree_takes_its_limits_from_the_settings(settings):
    settings.CHORUS_TREE = {
        **settings.CHORUS_TREE,
        "reviews_per_message": 5,
        "acceptance_threshold": 0.7,
        "max_depth": 9,
        "max_children_prompter": 4,
        "max_children_assistant": 2,
        "goal_tree_size": 20,
        "rankings_per_parent": 6,
    }
    prompt = ranked_conversation()

    import_oasst(lines=[tree_line(prompt)])

    tree = MessageTree.objects.get(id=prompt["message_id"])
    assert (tree.reviews_needed, tree.acceptance_threshold, tree.max_depth) == (5, 0.7, 9)
    assert (tree.max_children_prompter, tree.max_children_assistant) == (4, 2)
    assert (tree.goal_size, tree.rankings_needed) == (20, 6)


@pytest.mark.django_db
def test_the_counters_count_live_and_accepted_replies_and_no_rankings():
    prompt = node(
        "Name a prime number.",
        "prompter",
        node("Two.", "assistant", rank=0),
        node("Three.", "assistant", rank=1),
        node("Four.", "assistant", review_result=False),
        node("Five.", "assistant", deleted=True),
        node("Seven.", "assistant", review_result=None, review_count=1),
    )

    import_oasst(lines=[tree_line(prompt)])

    root = Message.objects.get(id=prompt["message_id"])
    assert (root.children_count, root.accepted_children_count, root.ranking_count) == (3, 2, 0)
    assert root.consensus_strength is None
    assert Message.objects.filter(tree_id=root.tree_id).count() == 6


# --- input shapes ------------------------------------------------------------------------


@pytest.mark.django_db
def test_a_gzipped_sample_imports_through_the_command_by_suffix_and_by_magic_bytes(
    oasst_sample_path, tmp_path
):
    gz = tmp_path / "trees.jsonl.gz"
    with oasst_sample_path.open("rb") as source, gzip.open(gz, "wb") as target:
        shutil.copyfileobj(source, target)
    disguised = tmp_path / "trees.jsonl"
    shutil.copy(gz, disguised)
    out = StringIO()

    call_command("import_oasst", str(gz), stdout=out)
    call_command("import_oasst", str(disguised), stdout=out)

    printed = out.getvalue()
    assert f"{gz}: 100 trees imported (1167 messages), 0 already imported, 0 errors" in printed
    assert f"{disguised}: 0 trees imported (0 messages), 100 already imported" in printed
    assert Message.objects.count() == 1167


@pytest.mark.django_db
def test_flat_messages_in_any_order_assemble_into_the_same_trees_as_tree_lines():
    first, second = ranked_conversation(), ranked_conversation()
    lines = flat_lines(first, tree_id=first["message_id"]) + flat_lines(second)
    random.Random(7).shuffle(lines)

    report = import_oasst(lines=lines)

    assert report.errors == []
    assert (report.trees_imported, report.messages_imported) == (2, 8)
    for prompt in (first, second):
        # Without message_tree_id the tree takes its root message's id.
        tree = MessageTree.objects.get(id=prompt["message_id"])
        messages = {m.id: m for m in tree.messages.all()}
        for source, depth, parent in walk(prompt):
            message = messages[uuid.UUID(source["message_id"])]
            assert message.depth == depth
            assert message.parent_id == (uuid.UUID(parent) if parent else None)
            assert message.rank == source.get("rank")
        assert tree.state == State.READY_FOR_EXPORT


@pytest.mark.django_db
def test_the_flat_sample_imports_like_the_tree_sample(oasst_sample_path):
    lines = []
    for record in sample_records(oasst_sample_path):
        lines += flat_lines(record["prompt"], tree_id=record["message_tree_id"])
    random.Random(3).shuffle(lines)

    report = import_oasst(lines=lines)

    assert report.errors == []
    assert (report.trees_imported, report.messages_imported) == (100, 1167)
    assert report.states == {"ready_for_export": 99, "backlog_ranking": 1}


@pytest.mark.django_db
def test_optional_fields_land_on_the_message_and_unknown_ones_in_source_extra():
    author = uuid.uuid4()
    events = {"pred_reply": [{"user_id": str(author), "created_date": "2023-02-01T10:00:00"}]}
    detoxify = {"toxicity": 0.0007, "insult": 0.0002}
    answer = node(
        "By photosynthesis.",
        "assistant",
        user_id=str(author),
        created_date="2023-02-05T14:23:50.983374+00:00",
        labels={"spam": {"value": 0.0, "count": 3}, "quality": {"value": 0.75, "count": 2}},
        emojis={"+1": 3, "_skip_reply": 1},
        events=events,
        detoxify=detoxify,
        origin="web",
        some_future_field=[1, 2],
        rank=0,
        model_name=None,
    )
    prompt = node("How do plants make food?", "prompter", answer, user_id=str(author), lang="de")

    report = import_oasst(lines=[tree_line(prompt, origin="oasst2", tree_state="growing")])

    assert report.errors == []
    message = Message.objects.get(id=answer["message_id"])
    assert message.author_id == author
    assert message.created_at == datetime(2023, 2, 5, 14, 23, 50, 983374, tzinfo=UTC)
    assert message.label_summary == {
        "spam": {"value": 0.0, "count": 3},
        "quality": {"value": 0.75, "count": 2},
    }
    assert message.emojis == {"+1": 3, "_skip_reply": 1}
    assert message.source_extra == {
        "events": events,
        "detoxify": detoxify,
        "origin": "web",
        "some_future_field": [1, 2],
    }
    # Fields of the tree line Chorus does not model are kept on the root.
    root = Message.objects.get(id=prompt["message_id"])
    assert root.source_extra == {"tree": {"origin": "oasst2"}}
    user = User.objects.get(pk=author)
    assert user.is_imported
    assert user.username == f"oasst-{author.hex}"
    assert not user.has_usable_password()
    assert user.languages == ["de"]
    assert User.objects.count() == 1


@pytest.mark.django_db
def test_absent_optional_fields_take_their_defaults_and_replies_inherit_the_tree_lang():
    before = timezone.now()
    prompt = {"message_id": str(uuid.uuid4()), "text": "Hi?", "role": "prompter", "lang": "fr"}
    prompt["replies"] = [
        {"message_id": str(uuid.uuid4()), "text": "Salut.", "role": "assistant"},
    ]

    report = import_oasst(lines=[json.dumps({"prompt": prompt})])

    assert report.errors == []
    tree = MessageTree.objects.get(id=prompt["message_id"])  # the root's id, none given
    assert tree.lang == "fr"
    # Nothing was reviewed, so the prompt still waits for its review.
    assert tree.state == State.INITIAL_PROMPT_REVIEW
    for message in tree.messages.all():
        assert message.lang == "fr"
        assert message.author is None
        assert message.created_at >= before
        assert (message.review_count, message.review_result, message.rank) == (0, None, None)
        assert (message.deleted, message.synthetic, message.model_name) == (False, False, None)
        assert message.label_summary == message.emojis == message.source_extra == {}
    assert not User.objects.exists()


@pytest.mark.django_db
def test_hugging_face_column_wise_labels_and_emojis_are_read_too():
    prompt = node(
        "Hello?",
        emojis={"name": ["+1", "-1"], "count": [4, 1]},
        labels={"name": ["spam", "quality"], "value": [0.0, 0.5], "count": [3, 3]},
    )

    import_oasst(lines=flat_lines(prompt))

    message = Message.objects.get(id=prompt["message_id"])
    assert message.emojis == {"+1": 4, "-1": 1}
    assert message.label_summary == {
        "spam": {"value": 0.0, "count": 3},
        "quality": {"value": 0.5, "count": 3},
    }


# --- malformed input ---------------------------------------------------------------------


@pytest.mark.django_db
def test_malformed_lines_are_reported_by_line_number_while_good_lines_still_import():
    good_tree, good_flat = ranked_conversation(), ranked_conversation()
    wrong_role = node("Question?", "prompter", node("Not a reply.", "prompter"))
    no_text = node("Question?", "prompter", node("", "assistant"))
    bad_id = node("Question?", message_id="not-a-uuid")
    orphan = node("An answer to nothing.", "assistant", parent_id=str(uuid.uuid4()))
    lines = [
        tree_line(good_tree),  # 1
        '{"message_tree_id": "oops", ',  # 2
        tree_line(wrong_role),  # 3
        "",  # 4: blank lines are ignored
        tree_line(no_text),  # 5
        tree_line(bad_id),  # 6
        *flat_lines(good_flat),  # 7-10
        json.dumps({k: v for k, v in orphan.items() if k != "replies"}),  # 11
        json.dumps({"prompt": node("No language.", lang=None)}),  # 12
        json.dumps([1, 2]),  # 13
    ]

    report = import_oasst(lines=lines)

    assert (report.trees_imported, report.messages_imported) == (2, 8)
    errors = "\n".join(report.errors)
    assert len(report.errors) == 7, errors
    assert report.errors[0].startswith("line 2: not valid JSON")
    assert report.errors[1].startswith("line 3: message ")
    assert "a prompter message cannot reply to a prompter message" in report.errors[1]
    assert report.errors[2].startswith("line 5: message ")
    assert report.errors[2].endswith("text must be a non-empty string")
    assert report.errors[3] == "line 6: message_id is not a valid UUID: 'not-a-uuid'"
    assert report.errors[4].startswith("line 12: message ")
    assert report.errors[4].endswith("the root prompt has no lang")
    assert report.errors[5] == "line 13: expected a JSON object, not list"
    assert report.errors[6] == (
        f"line 11: message {orphan['message_id']}: its parent {orphan['parent_id']} "
        "never appears in the input"
    )
    assert {t.id for t in MessageTree.objects.all()} == {
        uuid.UUID(good_tree["message_id"]),
        uuid.UUID(good_flat["message_id"]),
    }


@pytest.mark.django_db
def test_a_flat_tree_with_a_rejected_message_is_left_out_whole():
    prompt = ranked_conversation()
    tree_id = prompt["message_id"]
    lines = flat_lines(prompt, tree_id=tree_id)
    broken = json.loads(lines[1])
    broken["role"] = "moderator"
    lines[1] = json.dumps(broken)

    report = import_oasst(lines=lines)

    assert report.trees_imported == 0
    assert report.errors[0].startswith(f"line 2: message {broken['message_id']}: role must be")
    assert f"line 1: tree {tree_id} not imported: its message on line 2 was rejected" in (
        report.errors
    )
    assert not Message.objects.exists()


@pytest.mark.django_db
def test_a_tree_that_fails_to_write_leaves_nothing_behind_and_the_others_still_import():
    taken = MessageFactory()  # a message id already used by another tree
    clash = ranked_conversation()
    clash["replies"][1]["message_id"] = str(taken.id)
    fine = ranked_conversation()

    report = import_oasst(lines=[tree_line(clash), tree_line(fine)])

    assert report.trees_imported == 1
    assert len(report.errors) == 1
    assert report.errors[0].startswith(f"line 1: tree {clash['message_id']} not imported:")
    assert not MessageTree.objects.filter(id=clash["message_id"]).exists()
    assert not Message.objects.filter(id=clash["message_id"]).exists()
    assert MessageTree.objects.filter(id=fine["message_id"]).exists()


@pytest.mark.django_db
def test_importing_the_same_trees_again_skips_them_as_already_imported(oasst_sample_path):
    with oasst_sample_path.open("rb") as lines:
        import_oasst(lines=lines)
    with oasst_sample_path.open("rb") as lines:
        again = import_oasst(lines=lines)

    assert (again.trees_imported, again.messages_imported, again.trees_skipped) == (0, 0, 100)
    assert again.errors == []
    assert again.notes[0].startswith("line 1: tree 054e1df3-35e0-4bb8-a585-607dbdcd24e0")
    assert again.notes[0].endswith("already imported")
    assert MessageTree.objects.count() == 100
    assert Message.objects.count() == 1167


@pytest.mark.django_db
def test_an_author_seen_in_two_imports_becomes_one_placeholder_user():
    author = str(uuid.uuid4())
    first = node("One?", user_id=author)
    second = node("Two?", user_id=author)

    import_oasst(lines=[tree_line(first)])
    import_oasst(lines=[tree_line(second)])

    assert User.objects.filter(pk=author).count() == 1
    assert Message.objects.filter(author_id=author).count() == 2


# --- the state an import implies ---------------------------------------------------------


def test_a_rejected_or_deleted_root_aborts_the_tree_whatever_the_file_says():
    assert infer_state(node("Spam", review_result=False), "growing") == State.ABORTED_LOW_GRADE
    assert infer_state(node("Gone", deleted=True), "ready_for_export") == State.ABORTED_LOW_GRADE
    assert infer_state(node("Gone", deleted=True), "halted_by_moderator") == (
        State.ABORTED_LOW_GRADE
    )


def test_an_unreviewed_root_waits_for_its_initial_review():
    prompt = node("Hello?", review_result=None, review_count=1)

    assert infer_state(prompt, "ready_for_export") == State.INITIAL_PROMPT_REVIEW
    # Growing needs an accepted prompt, so the file's state contradicts the data.
    assert infer_state(prompt, "growing") == State.INITIAL_PROMPT_REVIEW
    assert infer_state(prompt, None) == State.INITIAL_PROMPT_REVIEW


def test_an_unranked_sibling_set_sends_a_finished_tree_to_backlog_ranking():
    prompt = node("Q?", "prompter", node("A.", "assistant"), node("B.", "assistant"))

    assert infer_state(prompt, "ready_for_export") == State.BACKLOG_RANKING
    assert infer_state(prompt, "ready_for_scoring") == State.BACKLOG_RANKING
    assert infer_state(prompt, "ranking") == State.BACKLOG_RANKING


def test_a_fully_ranked_tree_is_ready_for_export():
    assert infer_state(ranked_conversation(), "ready_for_export") == State.READY_FOR_EXPORT
    assert infer_state(ranked_conversation(), None) == State.READY_FOR_EXPORT
    assert infer_state(ranked_conversation(), "no_such_state") == State.READY_FOR_EXPORT


def test_a_set_with_one_live_accepted_reply_needs_no_ranking():
    prompt = node(
        "Q?",
        "prompter",
        node("A.", "assistant"),
        node("B.", "assistant", review_result=False),
        node("C.", "assistant", deleted=True),
        node("D.", "assistant", review_result=None),
    )

    assert state_implied_by(prompt) == State.READY_FOR_EXPORT


def test_a_set_where_some_replies_carry_ranks_is_already_decided():
    # A reply accepted after the set was ranked has no rank; the set needs no new ranking.
    prompt = node(
        "Q?",
        "prompter",
        node("A.", "assistant", rank=0),
        node("B.", "assistant", rank=1),
        node("Late.", "assistant"),
    )

    assert state_implied_by(prompt) == State.READY_FOR_EXPORT


def test_unranked_prompter_replies_count_only_when_prompter_replies_are_ranked():
    prompt = node(
        "Q?",
        "prompter",
        node("A.", "assistant", node("Why?", "prompter"), node("How?", "prompter")),
    )

    assert state_implied_by(prompt) == State.READY_FOR_EXPORT
    assert state_implied_by(prompt, rank_prompter_replies=True) == State.BACKLOG_RANKING


def test_a_tree_the_file_says_is_still_growing_stays_growing():
    unranked = node("Q?", "prompter", node("A.", "assistant"), node("B.", "assistant"))

    assert infer_state(ranked_conversation(), "growing") == State.GROWING
    assert infer_state(unranked, "growing") == State.GROWING
    assert infer_state(node("Q?"), "prompt_lottery_waiting") == State.PROMPT_LOTTERY_WAITING
    assert infer_state(ranked_conversation(), "ready_for_scoring") == State.READY_FOR_SCORING
    assert infer_state(node("Q?", review_result=None), "aborted_low_grade") == (
        State.ABORTED_LOW_GRADE
    )


@pytest.mark.django_db
def test_a_halted_tree_stays_halted_and_remembers_the_state_its_data_implies():
    unranked = node("Q?", "prompter", node("A.", "assistant"), node("B.", "assistant"))
    finished = ranked_conversation()

    report = import_oasst(
        lines=[
            tree_line(unranked, tree_state="halted_by_moderator"),
            tree_line(finished, tree_state="halted_by_moderator"),
        ]
    )

    assert report.states == {"halted_by_moderator": 2}
    first = MessageTree.objects.get(id=unranked["message_id"])
    assert (first.state, first.state_before_halt) == (
        State.HALTED_BY_MODERATOR,
        State.BACKLOG_RANKING,
    )
    # A halt never hides a terminal state, so a finished tree resumes to scoring.
    second = MessageTree.objects.get(id=finished["message_id"])
    assert second.state_before_halt == State.READY_FOR_SCORING


@pytest.mark.django_db
def test_imported_trees_get_the_states_their_data_implies():
    lines = [
        tree_line(node("Spam", review_result=False), tree_state="ready_for_export"),
        tree_line(node("New?", review_result=None), tree_state="ready_for_export"),
        tree_line(
            node("Q?", "prompter", node("A.", "assistant"), node("B.", "assistant")),
            tree_state="ready_for_export",
        ),
        tree_line(ranked_conversation(), tree_state="growing"),
        tree_line(ranked_conversation(), tree_state="ready_for_export"),
    ]

    report = import_oasst(lines=lines)

    assert report.states == {
        "aborted_low_grade": 1,
        "initial_prompt_review": 1,
        "backlog_ranking": 1,
        "growing": 1,
        "ready_for_export": 1,
    }
    assert set(MessageTree.objects.values_list("state_before_halt", flat=True)) == {""}


# --- the management command --------------------------------------------------------------


@pytest.mark.django_db
def test_the_command_prints_counts_states_and_each_error_line(tmp_path):
    path = tmp_path / "mixed.jsonl"
    good = ranked_conversation()
    path.write_text(f"{tree_line(good)}\nnot json\n")
    out, err = StringIO(), StringIO()

    call_command("import_oasst", str(path), stdout=out, stderr=err)

    printed = out.getvalue().splitlines()
    assert printed[0] == f"{path}: 1 trees imported (4 messages), 0 already imported, 1 errors"
    assert printed[1] == "  states: ready_for_export 1"
    assert printed[2].startswith("  line 2: not valid JSON")
    assert err.getvalue() == ""


@pytest.mark.django_db
def test_the_command_fails_only_when_no_file_can_be_read(tmp_path):
    missing = tmp_path / "missing.jsonl"
    present = tmp_path / "present.jsonl"
    present.write_text(tree_line(ranked_conversation()) + "\n")
    err = StringIO()

    call_command("import_oasst", str(missing), str(present), stdout=StringIO(), stderr=err)

    assert f"{missing}: could not be read: No such file or directory" in err.getvalue()
    assert MessageTree.objects.count() == 1
    with pytest.raises(CommandError, match="no file could be read"):
        call_command("import_oasst", str(missing), stdout=StringIO(), stderr=StringIO())


@pytest.mark.django_db
def test_the_command_keeps_what_it_read_before_a_truncated_gzip_stream(tmp_path):
    trees = [ranked_conversation() for _ in range(3)]
    data = gzip.compress("".join(tree_line(t) + "\n" for t in trees).encode())
    path = tmp_path / "cut.jsonl.gz"
    path.write_bytes(data[:-8])  # lose the gzip trailer (checksum and length)
    out, err = StringIO(), StringIO()

    call_command("import_oasst", str(path), stdout=out, stderr=err)

    assert err.getvalue().startswith(f"{path}: reading stopped after line 3: ")
    assert MessageTree.objects.count() == 3
