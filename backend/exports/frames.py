"""Whole trees, a batch at a time, shaped into every file of an export by column
operations (Polars) instead of a Python loop per message. No Django, no files.

formats.py says what each record is, one tree at a time in plain Python; this module
computes the same records for thousands of trees at once, and
tests/backend/test_exports_frames.py checks the two agree on random trees. An export
spends its time here: per message, Python's loop cost several times what PostgreSQL needs
to send the row (bench/export.py).

How a batch is shaped:
- level by level from the prompts down (a join per depth), each message gets the reason
  that cuts it (its own, or the first of its ancestors': a message leaves with its
  replies), its place among its siblings, a sort key that orders the tree depth first
  (`key`: the siblings' places along its path), and its conversation so far as JSON turns;
- the OpenAssistant lines are pieces of text sorted by that key: each message opens
  (`{...,"replies":[`) at its key and closes (`],"labels":...}`) after its last
  descendant, so one sort and one join print every nested tree of the batch;
- SFT conversations and preference pairs are the conversations so far of the right
  messages; flat rows and statistics are plain column operations.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import polars as pl
import pyarrow as pa

from backend.exports.formats import MARGIN_EPSILON, SFT_ROLES, SPLITS, Id, assign_split
from backend.exports.options import ExportOptions
from backend.trees.labels import CATALOGUE

# The columns of a batch, as the stream reads them (selectors.FRAME_SQL), and their types.
LABEL_NAMES = tuple(CATALOGUE)
INPUT_TYPES: dict[str, pa.DataType] = {
    "tree_id": pa.string(),
    "state": pa.string(),
    "id": pa.string(),
    "parent_id": pa.string(),
    "role": pa.string(),
    "text": pa.string(),
    "lang": pa.string(),
    "author_id": pa.string(),
    "created": pa.string(),  # as the export prints it (formats.iso)
    "created_us": pa.int64(),  # microseconds since the epoch: for order and date filters
    "depth": pa.int32(),
    "review_count": pa.int32(),
    "review_result": pa.bool_(),
    "labels": pa.string(),  # JSON
    "rank": pa.int32(),
    "consensus_strength": pa.float64(),
    "replies_agreement": pa.float64(),
    "synthetic": pa.bool_(),
    "model_name": pa.string(),
    "deleted": pa.bool_(),
    "emojis": pa.string(),  # JSON
    "extra": pa.string(),  # JSON: the flat rows' extras (a prompt's without "tree")
    "node_extra": pa.string(),  # JSON: the extras the tree line adds (no modelled field)
    "tree_extra": pa.string(),  # JSON: a prompt's "tree" extras, for the tree line
    "consent_withdrawn": pa.bool_(),
    "taken_down": pa.bool_(),
    **{f"label_{name}": pa.float64() for name in LABEL_NAMES},
}
INPUT_SCHEMA = pa.schema(list(INPUT_TYPES.items()))
# Fields of a tree line's message in the OpenAssistant export's order, before emojis,
# replies and labels (which the shaping adds as text).
NODE_FIELDS = (
    *("message_id", "parent_id", "user_id", "created_date", "text", "role", "lang"),
    *("review_count", "review_result", "deleted", "rank", "synthetic", "model_name"),
)
# Flat rows: the Parquet columns' order, and the JSONL rows' keys (sorted).
FLAT_COLUMNS = (*NODE_FIELDS, "emojis", "labels", "extra", "message_tree_id", "tree_state")
# A sibling's place in its parent's replies, as fixed-width hex in the sort key.
PLACE_DIGITS = 6
_OPEN, _CLOSE, _TREE_END = "0", "~", "~~"


@dataclass
class Lines:
    """JSON lines for one file: their text, each ending in a newline, and how many."""

    text: bytes | memoryview
    count: int


@dataclass
class Batch:
    """What a batch of trees adds to each file and to the figures."""

    tree_lines: Lines  # one OpenAssistant tree per line, trees in id order
    flat: pa.Table  # FLAT_COLUMNS and split, parents before replies, trees in order
    # By split:
    flat_lines: dict[str, Lines] = field(default_factory=dict)
    sft_lines: dict[str, Lines] = field(default_factory=dict)
    preference_lines: dict[str, Lines] = field(default_factory=dict)
    trees_by_split: Counter[str] = field(default_factory=Counter)
    excluded: Counter[str] = field(default_factory=Counter)
    trees_excluded: int = 0
    kept: pl.DataFrame | None = None  # the kept messages, for the statistics


def empty_frame() -> pl.DataFrame:
    return pl.from_arrow(INPUT_SCHEMA.empty_table())  # type: ignore[return-value]


def frame_from_rows(rows: Iterable[tuple[Any, ...]]) -> pl.DataFrame:
    """A batch from rows in INPUT_TYPES' column order (a database cursor's)."""
    columns = list(zip(*rows, strict=True)) or [()] * len(INPUT_TYPES)
    table = pa.table(
        {
            name: pa.array(values, type=kind)
            for (name, kind), values in zip(INPUT_TYPES.items(), columns, strict=True)
        }
    )
    return pl.from_arrow(table)  # type: ignore[return-value]


def shape(
    frame: pl.DataFrame,
    *,
    options: ExportOptions,
    seed: int,
    anonymise: Callable[[Id | None], Any],
) -> Batch:
    """Every record of the batch's trees (each tree's messages all in the batch).

    The tree structure is worked out on narrow frames (ids, depths, times, reasons); the
    wide columns (texts, JSON) are copied once, by the join that keeps the messages that
    stay, already in their final order."""
    frame = _with_reasons(frame, options)
    placed = _placed(frame.select("tree_id", "id", "parent_id", "depth", "created_us", "reason"))
    excluded = placed.filter(pl.col("cut").is_not_null())
    batch_excluded = Counter(dict(excluded.group_by("cut").len().iter_rows()))
    roots_out = excluded.filter(pl.col("depth") == 0).height
    order = placed.filter(pl.col("cut").is_null()).select("id", "key")
    splits, users = _splits_and_users(frame, order, options=options, seed=seed, anonymise=anonymise)
    # Labels named outside the catalogue (imports) have no column of their own; their
    # figures come from the JSON. Each label prints as `"name": {`: more of those than
    # catalogue labels means another name (a name that itself holds the pattern only
    # sends its message down the slower path).
    present = pl.sum_horizontal(pl.col(f"label_{n}").is_not_null() for n in LABEL_NAMES)
    kept = (
        frame.lazy()
        .drop("reason")
        .join(order.lazy(), on="id", how="inner")
        .join(splits.lazy(), on="tree_id", how="left")
        .join(users.lazy(), on="author_id", how="left")
        .with_columns(
            other_labels=pl.col("labels").str.count_matches('": {', literal=True) > present
        )
        .sort("tree_id", "key")
        .collect()
    )
    del frame, placed, excluded, order
    kept = kept.hstack(_turns(kept).get_columns())
    batch = Batch(
        tree_lines=_tree_lines(kept),
        flat=_flat(kept).to_arrow(),
        excluded=batch_excluded,
        trees_excluded=roots_out,
        kept=kept,
    )
    roots = kept.filter(pl.col("depth") == 0)
    batch.trees_by_split.update(dict(roots.group_by("split").len().iter_rows()))
    sft = _sft(kept, options.branch_policy)
    preference = _preference(kept, options.min_agreement)
    batch.flat_lines = _by_split(_flat_lines(kept))
    batch.sft_lines = _by_split(sft)
    batch.preference_lines = _by_split(preference)
    return batch


def _by_split(frame: pl.DataFrame) -> dict[str, Lines]:
    parts = frame.partition_by("split", as_dict=True, include_key=False)
    return {
        split: _joined(parts[(split,)]["line"]) if (split,) in parts else Lines(b"", 0)
        for split in SPLITS
    }


def _joined(lines: pl.Series, count: int | None = None) -> Lines:
    """The column's strings one after the other, straight from Arrow's buffer (no Python
    string per line)."""
    if not len(lines):
        return Lines(b"", 0)
    array = lines.rechunk().to_arrow(compat_level=pl.CompatLevel.oldest())
    array = array.cast(pa.large_string())  # a no-op for Polars' own strings
    offsets = array.buffers()[1]
    assert offsets is not None
    assert array.null_count == 0
    bounds = memoryview(offsets).cast("q")
    start, end = bounds[array.offset], bounds[array.offset + len(array)]
    data = array.buffers()[2]
    text = b"" if data is None else memoryview(data)[start:end]
    return Lines(text, len(lines) if count is None else count)


# --- filters and the shape of each tree ---------------------------------------------------


def _with_reasons(frame: pl.DataFrame, options: ExportOptions) -> pl.DataFrame:
    """Each message's own reason to leave (formats.exclusion_reason, in the same order)."""
    checks: list[tuple[pl.Expr, str]] = [
        (pl.col("taken_down"), "taken_down"),
        (pl.col("consent_withdrawn"), "consent_withdrawn"),
    ]
    if not options.include_deleted:
        checks.append((pl.col("deleted"), "deleted"))
    if options.review == "accepted":
        checks.append((pl.col("review_result").ne_missing(True), "not_accepted"))
    if not options.include_synthetic:
        checks.append((pl.col("synthetic"), "synthetic"))
    if options.since is not None:
        checks.append((pl.col("created_us") < _micros(options.since), "before_since"))
    if options.until is not None:
        checks.append((pl.col("created_us") >= _micros(options.until), "not_before_until"))
    for name, highest in options.max_labels:
        checks.append((pl.col(f"label_{name}").fill_null(0.0) > highest, f"label:{name}"))
    reason: Any = pl.lit(None, pl.String)
    for check, name in reversed(checks):
        reason = pl.when(check.fill_null(False)).then(pl.lit(name)).otherwise(reason)
    return frame.with_columns(reason=reason)


def _micros(moment: datetime) -> int:
    return (
        int(moment.timestamp() * 1_000_000)
        if moment.microsecond == 0
        else (int(moment.timestamp()) * 1_000_000 + moment.microsecond)
    )


def _placed(frame: pl.DataFrame) -> pl.DataFrame:
    """The messages reachable from each tree's first prompt, level by level, with `cut`
    (the reason of the highest message on their path that leaves, or null), `place`
    among their siblings (by created time, then id) and `key` (depth-first order)."""
    frame = frame.sort("tree_id", "depth", "parent_id", "created_us", "id").with_columns(
        place=pl.int_range(pl.len()).over("tree_id", "depth", "parent_id")
    )
    level = frame.filter((pl.col("depth") == 0) & (pl.col("place") == 0)).with_columns(
        cut=pl.col("reason"), key=pl.lit(_OPEN)
    )
    levels = [level]
    depth = 0
    while level.height:
        depth += 1
        parents = level.select(
            parent_id=pl.col("id"), parent_cut=pl.col("cut"), parent_key=pl.col("key")
        )
        level = (
            frame.filter(pl.col("depth") == depth)
            .join(parents, on="parent_id", how="inner")
            .with_columns(
                cut=pl.coalesce("parent_cut", "reason"),
                key=pl.concat_str(
                    "parent_key", pl.col("place").cast(pl.String).str.zfill(PLACE_DIGITS)
                ),
            )
            .drop("parent_cut", "parent_key")
        )
        if level.height:
            levels.append(level)
    return pl.concat(levels)


def _splits_and_users(
    frame: pl.DataFrame,
    order: pl.DataFrame,
    *,
    options: ExportOptions,
    seed: int,
    anonymise: Callable[[Id | None], Any],
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Each tree's split (formats.assign_split) and each author's anonymous id: hashes
    in Python, once per tree and per author of the batch, to join onto the messages."""
    tree_ids = frame["tree_id"].unique(maintain_order=True).to_list()
    splits = pl.DataFrame(
        {
            "tree_id": tree_ids,
            "split": [
                assign_split(t, seed=seed, validation=options.validation, test=options.test)
                for t in tree_ids
            ],
        },
        schema={"tree_id": pl.String, "split": pl.String},
    )
    authors = (
        frame.select("id", "author_id")
        .join(order.select("id"), on="id", how="semi")["author_id"]
        .drop_nulls()
        .unique(maintain_order=True)
        .to_list()
    )
    users = pl.DataFrame(
        {"author_id": authors, "user_id": [anonymise(a) for a in authors]},
        schema={"author_id": pl.String, "user_id": pl.String},
    )
    return splits, users


def _turns(kept: pl.DataFrame) -> pl.DataFrame:
    """Columns for the kept messages, in their order (tree, key): `turn`, the message as
    an SFT turn's JSON; `history`, the turns from the prompt to it, comma-separated (the
    conversation so far); `best`, on the tree's best branch (formats._preferred at every
    choice); `assistant_below`, an assistant reply somewhere under it. Built level by
    level, as _placed, on the few columns they need."""
    narrow = kept.select(
        "tree_id",
        "key",
        "id",
        "parent_id",
        "depth",
        "role",
        turn=pl.struct(
            content=pl.col("text"), role=pl.col("role").replace_strict(SFT_ROLES, default=None)
        ).struct.json_encode(),
    )
    preferred = (
        kept.select("id", "parent_id", "rank", "review_result", "created_us")
        .sort(
            "parent_id",
            pl.col("rank").is_null(),
            "rank",
            pl.col("review_result").ne_missing(True),
            "created_us",
            "id",
        )
        .group_by("parent_id", maintain_order=True)
        .first()
        .select(id="id", preferred=pl.lit(True))
    )
    narrow = narrow.join(preferred, on="id", how="left")
    levels: list[pl.DataFrame] = []
    level = narrow.filter(pl.col("depth") == 0).with_columns(
        history=pl.col("turn"), best=pl.lit(True)
    )
    while level.height:
        levels.append(level)
        parents = level.select(parent_id="id", parent_history="history", parent_best="best")
        level = (
            narrow.filter(pl.col("depth") == len(levels))
            .join(parents, on="parent_id", how="inner")
            .with_columns(
                history=pl.concat_str("parent_history", pl.lit(","), "turn"),
                best=pl.col("parent_best") & pl.col("preferred").fill_null(False),
            )
            .drop("parent_history", "parent_best")
        )
    # Bottom-up: whether an assistant message lies below each message.
    below: pl.DataFrame | None = None
    marked: list[pl.DataFrame] = []
    for level in reversed(levels):
        if below is None:
            level = level.with_columns(assistant_below=pl.lit(False))
        else:
            level = level.join(below, on="id", how="left").with_columns(
                pl.col("assistant_below").fill_null(False)
            )
        below = (
            level.group_by("parent_id")
            .agg(
                assistant_below=((pl.col("role") == "assistant") | pl.col("assistant_below")).any()
            )
            .rename({"parent_id": "id"})
        )
        marked.append(level)
    columns = ("turn", "history", "best", "assistant_below")
    if not marked:
        return pl.DataFrame(
            schema={
                "turn": pl.String,
                "history": pl.String,
                "best": pl.Boolean,
                "assistant_below": pl.Boolean,
            }
        )
    return pl.concat(marked).sort("tree_id", "key").select(columns)


# --- the files ---------------------------------------------------------------------------


def _tree_lines(kept: pl.DataFrame) -> Lines:
    """One OpenAssistant tree per line, in tree order. Each message is printed as the text
    that opens it and the text that closes it; sorted by key, the pieces of a tree nest."""
    head = (
        pl.struct(
            message_id="id",
            parent_id="parent_id",
            user_id="user_id",
            created_date="created",
            text="text",
            role="role",
            lang="lang",
            review_count="review_count",
            review_result="review_result",
            deleted="deleted",
            rank="rank",
            synthetic="synthetic",
            model_name="model_name",
        )
        .struct.json_encode()
        .str.head(-1)
    )
    opening = pl.concat_str(
        # A comma before every kept reply but its parent's first kept one.
        pl.when(pl.int_range(pl.len()).over("tree_id", "parent_id") > 0)
        .then(pl.lit(","))
        .otherwise(pl.lit("")),
        head,
        pl.lit(',"emojis":'),
        "emojis",
        pl.lit(',"replies":['),
    )
    closing = pl.concat_str(
        pl.lit('],"labels":'), "labels", _inner("node_extra", lead=","), pl.lit("}")
    )
    roots = kept.filter(pl.col("depth") == 0)
    tree_start = pl.concat_str(
        pl.lit("{"),
        _inner("tree_extra", trail=","),
        pl.lit('"message_tree_id":"'),
        "tree_id",
        pl.lit('","tree_state":"'),
        "state",
        pl.lit('","prompt":'),
    )
    pieces = pl.concat(
        [
            roots.select("tree_id", key=pl.lit(""), text=tree_start),
            kept.select("tree_id", "key", text=opening),
            kept.select("tree_id", key=pl.concat_str("key", pl.lit(_CLOSE)), text=closing),
            roots.select("tree_id", key=pl.lit(_TREE_END), text=pl.lit("}\n")),
        ]
    )
    # Sorted, the pieces of all trees are the file's text: one line per prompt.
    return _joined(pieces.sort("tree_id", "key")["text"], count=roots.height)


def _inner(column: str, *, lead: str = "", trail: str = "") -> pl.Expr:
    """A JSON object's members without its braces (for splicing), or "" when it has none."""
    text = pl.col(column)
    members = text.str.slice(1, text.str.len_bytes() - 2)
    return (
        pl.when(text.is_null() | (text.str.len_bytes() <= 2))
        .then(pl.lit(""))
        .otherwise(pl.concat_str(pl.lit(lead), members, pl.lit(trail)))
    )


def _flat(kept: pl.DataFrame) -> pl.DataFrame:
    return kept.select(
        message_id="id",
        parent_id="parent_id",
        user_id="user_id",
        created_date="created",
        text="text",
        role="role",
        lang="lang",
        review_count="review_count",
        review_result="review_result",
        deleted="deleted",
        rank="rank",
        synthetic="synthetic",
        model_name="model_name",
        emojis="emojis",
        labels="labels",
        extra="extra",
        message_tree_id="tree_id",
        tree_state="state",
        split="split",
    )


def _flat_lines(kept: pl.DataFrame) -> pl.DataFrame:
    flat = _flat(kept)
    line = pl.struct(*sorted(flat.columns)).struct.json_encode() + "\n"
    return flat.select("split", line=line)


def _sft(kept: pl.DataFrame, policy: str) -> pl.DataFrame:
    """formats.sft_conversations for every tree of the batch."""
    assistants = kept.filter(pl.col("role") == "assistant")
    if policy == "best":
        # The deepest assistant message on the best branch ends the tree's conversation.
        ends = (
            assistants.filter(pl.col("best"))
            .sort("tree_id", "depth")
            .group_by("tree_id", maintain_order=True)
            .last()
        )
    else:
        ends = assistants.filter(~pl.col("assistant_below"))
    line = pl.concat_str(pl.lit('{"messages":['), "history", pl.lit("]}\n"))
    return ends.sort("tree_id", "key").select("split", line=line)


def _preference(kept: pl.DataFrame, min_agreement: float | None) -> pl.DataFrame:
    """formats.preference_pairs for every tree of the batch."""
    parents = kept.select(
        "tree_id",
        parent_id="id",
        prompt="history",
        parent_key="key",
        agreement="replies_agreement",
    )
    if min_agreement is not None:
        parents = parents.filter(
            pl.col("agreement").is_null() | (pl.col("agreement") >= min_agreement)
        )
    ranked = (
        kept.filter((pl.col("role") == "assistant") & pl.col("rank").is_not_null())
        .select(
            "parent_id",
            "split",
            "turn",
            "rank",
            "consensus_strength",
            "review_result",
            "created_us",
            "id",
        )
        .sort("parent_id", "rank", pl.col("review_result").ne_missing(True), "created_us", "id")
        .with_columns(position=pl.int_range(pl.len()).over("parent_id"))
    )
    worse = ranked.select(
        "parent_id",
        worse_turn="turn",
        worse_rank="rank",
        worse_strength="consensus_strength",
        worse_position="position",
    )
    strengths_known = (
        pl.col("consensus_strength").is_not_null() & pl.col("worse_strength").is_not_null()
    )
    difference = pl.col("consensus_strength") - pl.col("worse_strength")
    margin = (
        pl.when(pl.col("rank") >= pl.col("worse_rank"))
        .then(None)
        .when(strengths_known)
        .then(pl.when(difference >= MARGIN_EPSILON).then(difference))
        .otherwise((pl.col("worse_rank") - pl.col("rank")).cast(pl.Float64))
    )
    pairs = (
        ranked.join(worse, on="parent_id")
        .filter(pl.col("position") < pl.col("worse_position"))
        .with_columns(margin=margin)
        .filter(pl.col("margin").is_not_null())
        .join(parents, on="parent_id", how="inner")
        .sort("tree_id", "parent_key", "position", "worse_position")
    )
    line = pl.concat_str(
        pl.lit('{"chosen":['),
        "turn",
        pl.lit('],"margin":'),
        pl.struct(margin="margin").struct.json_encode().str.slice(10).str.head(-1),
        pl.lit(',"prompt":['),
        "prompt",
        pl.lit('],"rejected":['),
        "worse_turn",
        pl.lit("]}\n"),
    )
    return pairs.select("split", line=line)
