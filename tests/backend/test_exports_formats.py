"""The export's pure parts: options, anonymity, splits, filters, the OpenAssistant tree,
SFT conversations, preference pairs and the card. No database here."""

from __future__ import annotations

import gc
import gzip
import itertools
import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pyarrow.parquet as pq
import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from backend.core.errors import InvalidInput
from backend.exports.card import CardInput, configs, render_card
from backend.exports.formats import (
    MARGIN_EPSILON,
    Anonymiser,
    MessageRow,
    Node,
    assign_split,
    build_tree,
    format_tree,
    oasst_tree,
    pair_margin,
    preference_pairs,
    sft_conversations,
)
from backend.exports.options import ExportOptions
from backend.exports.stats import StatsCollector
from backend.exports.writer import BackgroundGzip, DatasetWriter

T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
DEFAULTS = ExportOptions()


def row(parent: MessageRow | None, role: str, minute: int, **fields: Any) -> MessageRow:
    return MessageRow(
        id=uuid.uuid4(),
        parent_id=None if parent is None else parent.id,
        role=role,
        text=fields.pop("text", f"{role} at {minute}"),
        lang="en",
        author_id=fields.pop("author_id", None),
        created_at=T0 + timedelta(minutes=minute),
        **fields,
    )


def ranked_tree() -> dict[str, MessageRow]:
    """A prompt with three ranked answers; the best has a follow-up and an answer to it."""
    rows: dict[str, MessageRow] = {}
    rows["prompt"] = row(None, "prompter", 0, replies_agreement=0.9)
    rows["second"] = row(rows["prompt"], "assistant", 1, rank=1, consensus_strength=0.3)
    rows["best"] = row(rows["prompt"], "assistant", 2, rank=0, consensus_strength=0.6)
    rows["third"] = row(rows["prompt"], "assistant", 3, rank=2, consensus_strength=0.1)
    rows["follow_up"] = row(rows["best"], "prompter", 4)
    rows["answer"] = row(rows["follow_up"], "assistant", 5)
    rows["dangling"] = row(rows["third"], "prompter", 6)
    return rows


def built(rows: dict[str, MessageRow], options: ExportOptions = DEFAULTS) -> Node:
    root, _ = build_tree(list(rows.values()), options)
    assert root is not None
    return root


def texts(conversation: dict[str, Any]) -> list[str]:
    return [turn["content"] for turn in conversation["messages"]]


# --- options -----------------------------------------------------------------------------


def test_default_options_export_accepted_messages_of_finished_trees_with_a_tenth_held_out():
    options = ExportOptions.from_json({})

    assert options == DEFAULTS
    assert (options.states, options.review, options.branch_policy) == (
        ("ready_for_export",),
        "accepted",
        "best",
    )
    assert (options.train, options.validation, options.test) == pytest.approx((0.9, 0.1, 0.0))
    assert ExportOptions.from_json(options.to_json()) == options


def test_bad_options_are_all_reported_at_once_by_field():
    with pytest.raises(InvalidInput) as caught:
        ExportOptions.from_json(
            {
                "states": ["nonsense"],
                "max_labels": {"spamm": 0.5},
                "validation": 2,
                "colour": "red",
            }
        )

    assert set(caught.value.fields) == {"states", "max_labels", "validation", "colour"}


def test_splits_must_leave_trees_to_train_on_and_until_must_follow_since():
    with pytest.raises(InvalidInput) as caught:
        ExportOptions.from_json(
            {"validation": 0.5, "test": 0.5, "since": "2024-02-01", "until": "2024-01-01"}
        )

    assert set(caught.value.fields) == {"validation", "until"}


def test_languages_must_be_language_codes_and_the_refusal_names_the_bad_ones():
    accepted = ExportOptions.from_json({"langs": ["en", "pt-BR", "zh-Hant-TW", "ast"]})
    assert accepted.langs == ("ast", "en", "pt-BR", "zh-Hant-TW")

    with pytest.raises(InvalidInput) as caught:
        ExportOptions.from_json({"langs": ["zz", "<b>x</b>", "EN", "en_US", "e", "en-"]})

    assert caught.value.fields == {
        "langs": ["not language codes like en or pt-BR: <b>x</b>, EN, e, en-, en_US"]
    }


@pytest.mark.parametrize("bad", ["yesterday", "2024-02-30", "2024-13-01T10:00", "", 20240101])
def test_a_date_that_cannot_be_read_is_refused_with_an_example_of_one(bad):
    with pytest.raises(InvalidInput) as caught:
        ExportOptions.from_json({"since": bad, "until": bad})

    assert caught.value.fields == {
        "since": ["An ISO date, e.g. 2026-11-25."],
        "until": ["An ISO date, e.g. 2026-11-25."],
    }


def test_until_the_last_day_of_the_calendar_is_refused_rather_than_overflowing():
    with pytest.raises(InvalidInput) as caught:
        ExportOptions.from_json({"until": "9999-12-31"})

    assert caught.value.fields == {"until": ["An ISO date, e.g. 2026-11-25."]}


def test_a_bare_until_date_includes_that_whole_day():
    options = ExportOptions.from_json({"since": "2024-01-01", "until": "2024-01-31"})

    assert options.since == datetime(2024, 1, 1, tzinfo=UTC)
    assert options.until == datetime(2024, 2, 1, tzinfo=UTC)


# --- anonymity and splits ------------------------------------------------------------------


def test_user_ids_are_salted_hashes_shaped_as_uuids_stable_within_one_salt():
    user = uuid.uuid4()
    first, again, other = Anonymiser("a"), Anonymiser("a"), Anonymiser("b")

    assert first(user) == again(user) == first(user)
    assert first(user) != other(user)
    assert first(user) != str(user)
    assert uuid.UUID(first(user))
    assert first(None) is None


@given(tree_id=st.uuids(), seed=st.integers(0, 2**31), validation=st.floats(0, 0.5))
def test_a_tree_always_gets_the_same_split_from_the_same_seed(tree_id, seed, validation):
    split = assign_split(tree_id, seed=seed, validation=validation, test=0.1)

    assert split == assign_split(tree_id, seed=seed, validation=validation, test=0.1)
    assert split in ("train", "validation", "test")


def test_splits_follow_the_fractions_and_test_trees_stay_put_when_validation_grows():
    ids = [uuid.UUID(int=n * 7919) for n in range(4000)]
    small = Counter(assign_split(i, seed=5, validation=0.1, test=0.05) for i in ids)
    large = {i: assign_split(i, seed=5, validation=0.3, test=0.05) for i in ids}

    assert small["validation"] / len(ids) == pytest.approx(0.1, abs=0.02)
    assert small["test"] / len(ids) == pytest.approx(0.05, abs=0.02)
    assert {i for i in ids if assign_split(i, seed=5, validation=0.1, test=0.05) == "test"} == {
        i for i, split in large.items() if split == "test"
    }
    assert Counter(assign_split(i, seed=6, validation=0.1, test=0.05) for i in ids) != small


# --- filters -----------------------------------------------------------------------------


def test_a_message_that_fails_a_filter_leaves_with_its_whole_subtree():
    rows = ranked_tree()
    rows["best"].labels = {"spam": {"value": 0.9, "count": 3}}
    options = ExportOptions(max_labels=(("spam", 0.5),))

    root, excluded = build_tree(list(rows.values()), options)

    assert root is not None
    kept = {node.row.id for node in _all(root)}
    assert kept == {rows[k].id for k in ("prompt", "second", "third", "dangling")}
    assert excluded == Counter({"label:spam": 3})


def test_a_tree_whose_prompt_is_out_is_left_out_whole():
    rows = ranked_tree()
    rows["prompt"].is_taken_down = True

    root, excluded = build_tree(list(rows.values()), DEFAULTS)

    assert root is None
    assert excluded == Counter({"taken_down": len(rows)})


@pytest.mark.parametrize(
    ("change", "options", "reason"),
    [
        ({"is_consent_withdrawn": True}, DEFAULTS, "consent_withdrawn"),
        ({"deleted": True}, DEFAULTS, "deleted"),
        ({"review_result": None}, DEFAULTS, "not_accepted"),
        ({"synthetic": True}, ExportOptions(include_synthetic=False), "synthetic"),
        ({}, ExportOptions(since=T0 + timedelta(minutes=2)), "before_since"),
        ({}, ExportOptions(until=T0 + timedelta(minutes=1)), "not_before_until"),
    ],
)
def test_each_filter_names_its_reason(change, options, reason):
    rows = ranked_tree()
    for name, value in change.items():
        setattr(rows["second"], name, value)

    _, excluded = build_tree(list(rows.values()), options)

    assert reason in excluded


def test_replies_come_in_creation_order_whatever_order_the_rows_arrive_in():
    rows = ranked_tree()
    shuffled = list(reversed(rows.values()))

    root, _ = build_tree(shuffled, DEFAULTS)

    assert root is not None
    assert [n.row.id for n in root.replies] == [rows[k].id for k in ("second", "best", "third")]


# --- the OpenAssistant tree --------------------------------------------------------------


def test_the_oasst_tree_nests_replies_and_gives_extras_back_where_they_came_from():
    rows = ranked_tree()
    rows["prompt"].extra = {"tree": {"origin": "import"}, "detoxify": {"toxicity": 0.01}}
    rows["best"].extra = {"events": {"pred": 1}}
    anonymise = Anonymiser("salt")

    record = oasst_tree(
        built(rows), tree_id=rows["prompt"].id, state="ready_for_export", anonymise=anonymise
    )

    assert record["origin"] == "import"
    assert record["tree_state"] == "ready_for_export"
    prompt = record["prompt"]
    assert "tree" not in prompt
    assert prompt["detoxify"] == {"toxicity": 0.01}
    assert [r["rank"] for r in prompt["replies"]] == [1, 0, 2]
    best = prompt["replies"][1]
    assert best["events"] == {"pred": 1}
    assert best["parent_id"] == str(rows["prompt"].id)
    assert best["replies"][0]["replies"][0]["text"] == rows["answer"].text
    assert best["created_date"] == "2024-05-01T12:02:00+00:00"


# --- SFT -----------------------------------------------------------------------------------


def test_the_best_branch_follows_the_best_ranked_reply_to_the_last_assistant_turn():
    rows = ranked_tree()

    conversations = sft_conversations(built(rows), policy="best")

    assert [texts(c) for c in conversations] == [
        [rows[k].text for k in ("prompt", "best", "follow_up", "answer")]
    ]
    assert [t["role"] for t in conversations[0]["messages"]] == [
        "user",
        "assistant",
        "user",
        "assistant",
    ]


def test_all_branches_give_each_path_once_cut_after_its_last_assistant_turn():
    rows = ranked_tree()

    conversations = sft_conversations(built(rows), policy="all")

    assert sorted(texts(c)[-1] for c in conversations) == sorted(
        rows[k].text for k in ("second", "answer", "third")
    )


def test_without_ranks_the_earliest_reply_is_the_best_branch():
    rows = ranked_tree()
    for message in rows.values():
        message.rank = None

    (conversation,) = sft_conversations(built(rows), policy="best")

    assert texts(conversation) == [rows["prompt"].text, rows["second"].text]


# --- preference pairs ----------------------------------------------------------------------


def test_every_ranked_pair_of_siblings_gives_a_better_over_worse_row_with_its_margin():
    rows = ranked_tree()

    pairs = preference_pairs(built(rows), min_agreement=None)

    assert [(p["chosen"][0]["content"], p["rejected"][0]["content"]) for p in pairs] == [
        (rows["best"].text, rows["second"].text),
        (rows["best"].text, rows["third"].text),
        (rows["second"].text, rows["third"].text),
    ]
    assert [p["margin"] for p in pairs] == pytest.approx([0.3, 0.5, 0.2])
    assert pairs[0]["prompt"] == [{"role": "user", "content": rows["prompt"].text}]


def test_a_contested_sibling_set_gives_no_pairs_under_a_minimum_agreement():
    rows = ranked_tree()

    assert preference_pairs(built(rows), min_agreement=0.95) == []
    assert len(preference_pairs(built(rows), min_agreement=0.9)) == 3
    rows["prompt"].replies_agreement = None  # imported: not known to be contested
    assert len(preference_pairs(built(rows), min_agreement=0.95)) == 3


def test_pairs_the_consensus_does_not_separate_are_skipped():
    better = row(None, "assistant", 0, rank=0, consensus_strength=0.5)
    tied = row(None, "assistant", 1, rank=1, consensus_strength=0.5 - MARGIN_EPSILON / 2)
    same_rank = row(None, "assistant", 2, rank=0)
    unknown_strength = row(None, "assistant", 3, rank=3)

    assert pair_margin(better, tied) is None
    assert pair_margin(better, same_rank) is None
    assert pair_margin(better, unknown_strength) == 3.0


@st.composite
def random_trees(draw: st.DrawFn) -> list[MessageRow]:
    """A tree of up to 25 messages, roles alternating, ranks and strengths at random
    (ties and gaps included)."""
    size = draw(st.integers(1, 25))
    rows = [row(None, "prompter", 0)]
    for index in range(1, size):
        parent = rows[draw(st.integers(0, index - 1))]
        role = "assistant" if parent.role == "prompter" else "prompter"
        rank = draw(st.none() | st.integers(0, 3))
        strength = draw(st.none() | st.floats(0, 1))
        rows.append(row(parent, role, index, rank=rank, consensus_strength=strength))
    return rows


@settings(max_examples=150, deadline=None)
@given(rows=random_trees())
def test_preference_pairs_always_prefer_the_better_rank_and_never_pair_equal_ranks(rows):
    root, _ = build_tree(rows, DEFAULTS)
    assert root is not None
    by_text = {r.text: r for r in rows}

    for pair in preference_pairs(root, min_agreement=None):
        chosen = by_text[pair["chosen"][0]["content"]]
        rejected = by_text[pair["rejected"][0]["content"]]
        assert chosen.parent_id == rejected.parent_id
        assert chosen.role == rejected.role == "assistant"
        assert chosen.rank is not None
        assert rejected.rank is not None
        assert chosen.rank < rejected.rank
        assert pair["margin"] >= MARGIN_EPSILON
        assert pair["prompt"][-1]["role"] == "user"


@settings(max_examples=150, deadline=None)
@given(rows=random_trees(), policy=st.sampled_from(["best", "all"]))
def test_sft_conversations_alternate_from_the_user_and_end_with_the_assistant(rows, policy):
    root, _ = build_tree(rows, DEFAULTS)
    assert root is not None

    conversations = sft_conversations(root, policy=policy)

    has_assistant = any(r.role == "assistant" for r in rows)
    assert bool(conversations) == has_assistant
    for conversation in conversations:
        roles = [turn["role"] for turn in conversation["messages"]]
        assert roles[0] == "user"
        assert roles[-1] == "assistant"
        assert all(a != b for a, b in itertools.pairwise(roles))
    if policy == "all":
        assistants = {r.text for r in rows if r.role == "assistant"}
        covered = {t["content"] for c in conversations for t in c["messages"]}
        assert assistants <= covered


# --- all together, and the card ------------------------------------------------------------


def test_one_tree_formats_into_every_record_with_its_split():
    rows = ranked_tree()
    tree_id = rows["prompt"].id

    formatted, excluded = format_tree(
        list(rows.values()),
        tree_id=tree_id,
        state="ready_for_export",
        options=DEFAULTS,
        seed=1,
        anonymise=Anonymiser("x"),
    )

    assert formatted is not None
    assert not excluded
    assert formatted.split == assign_split(tree_id, seed=1, validation=0.1, test=0.0)
    assert len(formatted.messages) == len(rows)
    assert {m["split"] for m in formatted.messages} == {formatted.split}
    assert (len(formatted.sft), len(formatted.preference)) == (1, 3)


def test_formatting_and_writing_a_tree_leave_no_reference_cycles(tmp_path):
    # The export streams with the cyclic garbage collector off (selectors.stream_trees):
    # whatever a tree leaves in a cycle would stay in memory until the export ends.
    rows = list(ranked_tree().values())
    rows[0].extra = {"tree": {"origin": "import"}, "detoxify": {"toxicity": 0.1}}
    gc.collect()
    gc.disable()
    try:
        with DatasetWriter(tmp_path) as writer:
            collector = StatsCollector()
            for _ in range(3):
                formatted, _ = format_tree(
                    rows,
                    tree_id=rows[0].id,
                    state="ready_for_export",
                    options=DEFAULTS,
                    seed=1,
                    anonymise=Anonymiser("x"),
                )
                assert formatted is not None
                writer.write(formatted)
                collector.add(formatted)
                del formatted
            unreachable = gc.collect()
    finally:
        gc.enable()

    assert unreachable == 0


def card_input(**changes: Any) -> CardInput:
    stats = {
        "trees": 2,
        "messages": 9,
        "sft": 2,
        "preference": 3,
        "contributors": 4,
        "languages": {"de": 2, "en": 7},
        "roles": {"assistant": 5, "prompter": 4},
        "ranked_messages": 3,
        "synthetic_messages": 0,
        "labels": {"spam": {"mean": 0.1, "messages": 9}},
        "mean_ranking_agreement": 0.75,
        "ranked_sets_with_agreement": 1,
        "excluded": {"deleted": 1},
        "takedowns_since_previous": 2,
    }
    fields: dict[str, Any] = {
        "version": 3,
        "options": DEFAULTS,
        "seed": 7,
        "stats": stats,
        "rows": {
            "trees.jsonl.gz": 2,
            "messages.parquet": 9,
            "messages/train.jsonl.gz": 9,
            "sft/train.jsonl": 2,
            "preference/train.jsonl": 3,
        },
        "license": "apache-2.0",
        "previous_version": 2,
        "previous_stats": {**stats, "messages": 12},
    }
    return CardInput(**{**fields, **changes})


def test_the_card_metadata_is_yaml_that_lists_only_configs_and_splits_with_rows():
    text = render_card(card_input())

    front = yaml.safe_load(text.split("---\n")[1])
    assert front["license"] == "apache-2.0"
    assert front["language"] == ["de", "en"]
    assert [c["config_name"] for c in front["configs"]] == [
        "sft",
        "preference",
        "messages",
        "trees",
    ]
    assert front["configs"][0]["default"] is True
    assert front["configs"][0]["data_files"] == [{"split": "train", "path": "sft/train.jsonl"}]
    assert "validation" not in text.split("---\n")[1]
    assert render_card(card_input()) == text


def test_the_card_states_the_figures_filters_policy_and_changes_since_the_last_version():
    text = render_card(card_input())

    for expected in (
        "Contributors (distinct anonymised authors): 4",
        "Mean ranking agreement",
        "| spam | 0.1 | 9 |",
        "Tree states: ready_for_export",
        "`best`",
        "| messages | 12 | 9 |",
        "Messages taken down since v2: 2",
        "apache-2.0",
    ):
        assert expected in text
    assert "This is the first version." in render_card(
        card_input(previous_version=None, previous_stats=None)
    )


def test_no_config_is_listed_for_an_empty_export():
    assert configs({"trees.jsonl.gz": 0, "messages.parquet": 0}) == []


def test_gzip_streams_hold_what_was_written_with_no_name_or_time_in_the_header(tmp_path):
    path = tmp_path / "lines.jsonl.gz"
    stream = BackgroundGzip(path)
    chunks = [f"line {n}\n".encode() * 1000 for n in range(300)]
    for chunk in chunks:
        stream.write(chunk)
    stream.close()

    raw = path.read_bytes()
    assert gzip.decompress(raw) == b"".join(chunks)
    assert raw[4:8] == b"\0\0\0\0"  # mtime
    assert raw[3] & 0x08 == 0  # FNAME flag: no file name stored


def test_a_compression_failure_surfaces_when_the_stream_closes(tmp_path, monkeypatch):
    stream = BackgroundGzip(tmp_path / "broken.gz")
    monkeypatch.setattr(stream._gzip, "write", _raise_disk_full)

    stream.write(b"x" * (BackgroundGzip.BATCH_BYTES + 1))
    with pytest.raises(OSError, match="disk full"):
        stream.close()


def test_every_written_line_has_sorted_keys_and_parquet_holds_the_jsonl_rows(tmp_path):
    # The writer prints flat rows as they are made and the tree line's emojis and labels
    # as pre-serialised text: a field added out of order, or a Parquet column out of line
    # with the rows' tuples, would change the files.
    rows = ranked_tree()
    rows["prompt"].extra = {"tree": {"origin": "import"}, "zeta": {"b": 1, "a": [2, {"y": 0}]}}
    rows["best"].labels = {"spam": {"value": 0.0, "count": 3}, "quality": {"value": 0.75}}
    rows["best"].emojis = {"-1": 1, "+1": 2}
    rows["best"].extra = {"events": {"z": 1, "a": 2}, "rank": 99}
    formatted, _ = format_tree(
        list(rows.values()),
        tree_id=rows["prompt"].id,
        state="ready_for_export",
        options=DEFAULTS,
        seed=1,
        anonymise=Anonymiser("x"),
    )
    assert formatted is not None
    with DatasetWriter(tmp_path) as writer:
        writer.write(formatted)

    lines = gzip.decompress((tmp_path / "trees.jsonl.gz").read_bytes()).splitlines()
    split = formatted.split
    lines += gzip.decompress((tmp_path / f"messages/{split}.jsonl.gz").read_bytes()).splitlines()
    for name in (f"sft/{split}.jsonl", f"preference/{split}.jsonl"):
        lines += (tmp_path / name).read_bytes().splitlines()
    assert len(lines) == 1 + len(rows) + 1 + 3
    for line in lines:
        assert line == orjson.dumps(orjson.loads(line), option=orjson.OPT_SORT_KEYS)
    (tree,) = [orjson.loads(line) for line in lines[:1]]
    best = tree["prompt"]["replies"][1]
    assert best["labels"] == rows["best"].labels
    assert best["emojis"] == {"+1": 2, "-1": 1}
    assert (best["rank"], best["events"]) == (0, {"a": 2, "z": 1})  # modelled fields win
    flat = [orjson.loads(line) for line in lines[1 : 1 + len(rows)]]
    assert [orjson.loads(r["labels"]) for r in flat][2] == rows["best"].labels
    assert pq.read_table(tmp_path / "messages.parquet").to_pylist() == flat


def _raise_disk_full(data: bytes) -> None:
    raise OSError("disk full")


def _all(root: Node) -> list[Node]:
    found, stack = [], [root]
    while stack:
        node = stack.pop()
        found.append(node)
        stack.extend(node.replies)
    return found
