"""The export's column-wise shaping (frames.py) against the one-tree reference (formats.py):
for random forests of trees under random options, every record of every file agrees."""

from __future__ import annotations

import gzip
import json
import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pyarrow.parquet as pq
from hypothesis import given, settings
from hypothesis import strategies as st

from backend.exports import frames
from backend.exports.formats import SPLITS, Anonymiser, MessageRow, format_tree, iso
from backend.exports.options import ExportOptions
from backend.exports.stats import StatsCollector
from backend.exports.writer import PARQUET_FILE, TREES_FILE, DatasetWriter

T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
AUTHORS = [uuid.UUID(int=n) for n in range(1, 5)]
LABELS = ("spam", "quality", "toxicity")


@st.composite
def forests(draw: st.DrawFn) -> list[list[MessageRow]]:
    """Up to four trees of up to 12 messages: ranks, strengths, reviews, flags, labels,
    emojis and extras at random, created at times that often tie."""
    trees = []
    for _ in range(draw(st.integers(1, 4))):
        rows: list[MessageRow] = []
        for index in range(draw(st.integers(1, 12))):
            parent = rows[draw(st.integers(0, index - 1))] if rows else None
            role = "prompter" if parent is None or parent.role == "assistant" else "assistant"
            labels = {
                name: {"value": draw(st.sampled_from([0.0, 0.25, 0.5, 1.0])), "count": 3}
                for name in draw(st.lists(st.sampled_from(LABELS), max_size=2, unique=True))
            }
            if draw(st.integers(0, 9)) == 0:
                labels["imported_label"] = {"value": 0.5, "count": 1}
            extra: dict[str, Any] = {}
            if draw(st.booleans()):
                extra = {"detoxify": {"toxicity": 0.1}, "rank": 99}
            if parent is None and draw(st.booleans()):
                extra["tree"] = {"origin": "import", "tree_state": "x"}
            rows.append(
                MessageRow(
                    id=uuid.uuid4(),
                    parent_id=None if parent is None else parent.id,
                    role=role,
                    text=draw(st.sampled_from(["hi", 'a "quote"\n', "é ✓", ""])) + str(index),
                    lang="en",
                    author_id=draw(st.sampled_from([None, *AUTHORS])),
                    created_at=T0
                    + timedelta(seconds=draw(st.integers(0, 3)), microseconds=index % 2),
                    review_count=3,
                    review_result=draw(st.sampled_from([True, True, True, False, None])),
                    labels=labels,
                    rank=draw(st.none() | st.integers(0, 3)),
                    consensus_strength=draw(st.none() | st.sampled_from([0.1, 0.1005, 0.5, 0.9])),
                    replies_agreement=draw(st.none() | st.sampled_from([0.2, 0.8])),
                    synthetic=draw(st.integers(0, 5)) == 0,
                    model_name=None,
                    deleted=draw(st.integers(0, 9)) == 0,
                    emojis=draw(st.sampled_from([{}, {"+1": 2}, {"-1": 1, "+1": 1}])),
                    extra=extra,
                    is_consent_withdrawn=draw(st.integers(0, 19)) == 0,
                    is_taken_down=draw(st.integers(0, 19)) == 0,
                )
            )
        trees.append(rows)
    return trees


options_strategy = st.builds(
    ExportOptions,
    review=st.sampled_from(["accepted", "any"]),
    include_deleted=st.booleans(),
    include_synthetic=st.booleans(),
    min_agreement=st.none() | st.just(0.5),
    max_labels=st.sampled_from([(), (("spam", 0.3),), (("quality", 0.6), ("spam", 0.6))]),
    since=st.none() | st.just(T0 + timedelta(seconds=1)),
    until=st.none() | st.just(T0 + timedelta(seconds=3)),
    branch_policy=st.sampled_from(["best", "all"]),
    validation=st.sampled_from([0.0, 0.5]),
    test=st.sampled_from([0.0, 0.25]),
)


def frame_of(trees: list[list[MessageRow]]) -> Any:
    """The rows as selectors' query gives them (frames.INPUT_TYPES), trees in id order."""
    modelled = {*frames.NODE_FIELDS, "emojis", "replies", "labels"}
    out = []
    for tree_id, rows in sorted((str(rows[0].id), rows) for rows in trees):
        for r in rows:
            extra = dict(r.extra)
            tree_extra = extra.pop("tree", None) if r.parent_id is None else None
            node_extra = {k: v for k, v in extra.items() if k not in modelled}
            if isinstance(tree_extra, dict):
                tree_extra = {
                    k: v
                    for k, v in tree_extra.items()
                    if k not in ("message_tree_id", "tree_state", "prompt")
                }
            depth, parent = 0, r.parent_id
            by_id = {m.id: m for m in rows}
            while parent is not None:
                depth, parent = depth + 1, by_id[parent].parent_id
            created = r.created_at
            out.append(
                (
                    *(tree_id, "ready_for_export", str(r.id)),
                    None if r.parent_id is None else str(r.parent_id),
                    *(r.role, r.text, r.lang),
                    None if r.author_id is None else str(r.author_id),
                    iso(created),
                    int(created.timestamp()) * 1_000_000 + created.microsecond,
                    *(depth, r.review_count, r.review_result, _json(r.labels), r.rank),
                    *(r.consensus_strength, r.replies_agreement, r.synthetic, r.model_name),
                    *(r.deleted, _json(r.emojis), _json(extra), _json(node_extra)),
                    None if not isinstance(tree_extra, dict) else _json(tree_extra),
                    *(r.is_consent_withdrawn, r.is_taken_down),
                    *(r.labels.get(n, {}).get("value") for n in frames.LABEL_NAMES),
                )
            )
    return frames.frame_from_rows(out)


def _json(value: Any) -> str:
    # Spaced as PostgreSQL prints jsonb.
    return json.dumps(value)


def _lines(lines: frames.Lines) -> list[Any]:
    parsed = [orjson.loads(line) for line in bytes(lines.text).splitlines()]
    assert len(parsed) == lines.count
    return parsed


def _plain(value: Any) -> Any:
    return orjson.loads(orjson.dumps(value))


def _flat_row(row: dict[str, Any]) -> dict[str, Any]:
    # The JSON-text columns compare as what they say, not how they are spaced.
    return {k: orjson.loads(v) if k in ("emojis", "labels", "extra") else v for k, v in row.items()}


@settings(max_examples=120, deadline=None)
@given(trees=forests(), options=options_strategy, seed=st.integers(0, 3))
def test_the_column_wise_shaping_gives_every_record_the_reference_gives(trees, options, seed):
    expected: dict[str, list[Any]] = {"trees": []}
    expected.update({f"{k}/{s}": [] for k in ("messages", "sft", "preference") for s in SPLITS})
    excluded: Counter[str] = Counter()
    trees_out = 0
    for rows in sorted(trees, key=lambda rows: str(rows[0].id)):
        formatted, left_out = format_tree(
            rows,
            tree_id=str(rows[0].id),
            state="ready_for_export",
            options=options,
            seed=seed,
            anonymise=Anonymiser("salt"),
        )
        excluded.update(left_out)
        if formatted is None:
            trees_out += 1
            continue
        expected["trees"].append(_plain(formatted.record))
        expected[f"messages/{formatted.split}"] += [_flat_row(m) for m in formatted.messages]
        expected[f"sft/{formatted.split}"] += _plain(formatted.sft)
        expected[f"preference/{formatted.split}"] += _plain(formatted.preference)

    batch = frames.shape(frame_of(trees), options=options, seed=seed, anonymise=Anonymiser("salt"))

    got: dict[str, list[Any]] = {"trees": _lines(batch.tree_lines)}
    for split in SPLITS:
        got[f"messages/{split}"] = [_flat_row(r) for r in _lines(batch.flat_lines[split])]
        got[f"sft/{split}"] = _lines(batch.sft_lines[split])
        got[f"preference/{split}"] = _lines(batch.preference_lines[split])
    assert got == expected
    assert batch.excluded == excluded
    assert batch.trees_excluded == trees_out
    flat = [_flat_row(r) for r in batch.flat.to_pylist()]
    assert sorted(flat, key=lambda r: r["message_id"]) == sorted(
        (r for s in SPLITS for r in expected[f"messages/{s}"]), key=lambda r: r["message_id"]
    )


def test_a_batch_writes_every_file_and_its_figures(tmp_path):
    rows: list[MessageRow] = []
    for minute, (role, parent) in enumerate(
        [("prompter", None), ("assistant", 0), ("assistant", 0), ("prompter", 1)]
    ):
        rows.append(
            MessageRow(
                id=uuid.uuid4(),
                parent_id=None if parent is None else rows[parent].id,
                role=role,
                text=f"{role} {minute}",
                lang="en",
                author_id=AUTHORS[minute % 2],
                created_at=T0 + timedelta(minutes=minute),
                labels={"quality": {"value": 0.5, "count": 2}},
                rank=None if role == "prompter" else minute - 1,
                consensus_strength=None if role == "prompter" else 1.0 / minute,
                replies_agreement=0.9 if minute == 0 else None,
            )
        )
    rows[3].labels["imported"] = {"value": 0.25, "count": 1}  # not in the catalogue
    options = ExportOptions(validation=0.0)
    batch = frames.shape(frame_of([rows]), options=options, seed=1, anonymise=Anonymiser("x"))
    collector = StatsCollector()
    with DatasetWriter(tmp_path) as writer:
        writer.write_batch(batch)
        collector.add_batch(batch)

    assert writer.rows == {
        TREES_FILE: 1,
        PARQUET_FILE: 4,
        "messages/train.jsonl.gz": 4,
        "sft/train.jsonl": 1,
        "preference/train.jsonl": 1,
    }
    (tree,) = gzip.decompress((tmp_path / TREES_FILE).read_bytes()).splitlines()
    prompt = orjson.loads(tree)["prompt"]
    assert [r["text"] for r in prompt["replies"]] == ["assistant 1", "assistant 2"]
    assert prompt["replies"][0]["replies"][0]["text"] == "prompter 3"
    assert pq.read_table(tmp_path / PARQUET_FILE).num_rows == 4
    figures = collector.to_json()
    assert (figures["trees"], figures["messages"], figures["contributors"]) == (1, 4, 2)
    assert figures["labels"] == {
        "imported": {"mean": 0.25, "messages": 1},
        "quality": {"mean": 0.5, "messages": 4},
    }
    assert figures["mean_ranking_agreement"] == 0.9
    assert figures["splits"] == {"train": {"messages": 4, "preference": 1, "sft": 1, "trees": 1}}


def test_lines_print_their_keys_in_a_fixed_order_and_parquet_holds_the_jsonl_rows(tmp_path):
    # Flat rows, SFT and preference lines with sorted keys; a tree line's messages in the
    # OpenAssistant export's order, extras after them, modelled fields winning.
    prompt = MessageRow(
        id=uuid.uuid4(),
        parent_id=None,
        role="prompter",
        text="q",
        lang="en",
        author_id=None,
        created_at=T0,
        replies_agreement=0.9,
        extra={"tree": {"origin": "import"}, "zeta": {"b": 1, "a": [2, {"y": 0}]}},
    )
    answers = [
        MessageRow(
            id=uuid.uuid4(),
            parent_id=prompt.id,
            role="assistant",
            text=f"a{n}",
            lang="en",
            author_id=None,
            created_at=T0 + timedelta(minutes=n + 1),
            rank=n,
            labels={"spam": {"value": 0.0, "count": 3}, "quality": {"value": 0.75, "count": 1}},
            emojis={"-1": 1, "+1": 2},
            extra={"events": {"z": 1, "a": 2}, "rank": 99},
        )
        for n in range(2)
    ]
    batch = frames.shape(
        frame_of([[prompt, *answers]]),
        options=ExportOptions(validation=0.0),
        seed=1,
        anonymise=Anonymiser("x"),
    )
    with DatasetWriter(tmp_path) as writer:
        writer.write_batch(batch)

    (tree_line,) = gzip.decompress((tmp_path / TREES_FILE).read_bytes()).splitlines()
    tree = orjson.loads(tree_line)
    assert list(tree) == ["origin", "message_tree_id", "tree_state", "prompt"]
    best = tree["prompt"]["replies"][0]
    assert list(best) == [*frames.NODE_FIELDS, "emojis", "replies", "labels", "events"]
    assert (best["rank"], best["events"], best["emojis"]) == (
        0,
        {"a": 2, "z": 1},
        {"+1": 2, "-1": 1},
    )
    assert best["labels"] == answers[0].labels
    assert tree["prompt"]["zeta"] == {"b": 1, "a": [2, {"y": 0}]}
    flat_lines = gzip.decompress((tmp_path / "messages/train.jsonl.gz").read_bytes())
    lines = flat_lines.splitlines()
    lines += (tmp_path / "sft/train.jsonl").read_bytes().splitlines()
    lines += (tmp_path / "preference/train.jsonl").read_bytes().splitlines()
    assert len(lines) == 3 + 1 + 1
    for line in lines:
        assert line == orjson.dumps(orjson.loads(line), option=orjson.OPT_SORT_KEYS)
    flat = [orjson.loads(line) for line in flat_lines.splitlines()]
    assert orjson.loads(flat[0]["extra"]) == {"zeta": {"b": 1, "a": [2, {"y": 0}]}}
    assert pq.read_table(tmp_path / PARQUET_FILE).to_pylist() == flat
