"""One conversation tree, as read from the database, turned into every record an export
writes: the OpenAssistant tree, flat message rows, SFT conversations and preference pairs,
with its split and anonymised authors. Pure code: no Django, no files.

Order is part of the output, so it is fixed everywhere: replies by (created_at, id),
preference pairs by (rank, created_at, id), and the services stream trees by id.
"""

from __future__ import annotations

import hashlib
import uuid
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson

from backend.exports.options import ExportOptions

# Two replies whose consensus strengths differ by less than this are not told apart: the
# Bradley-Terry fit (trees.consensus) is only that precise for lopsided rankings.
MARGIN_EPSILON = 1e-3
SFT_ROLES = {"prompter": "user", "assistant": "assistant"}
SPLITS = ("train", "validation", "test")

# The flat rows' columns, in the order of the Parquet file and of FormattedTree.table.
FLAT_COLUMNS = (
    *("message_id", "parent_id", "user_id", "created_date", "text", "role", "lang"),
    *("review_count", "review_result", "deleted", "rank", "synthetic", "model_name"),
    *("emojis", "labels", "extra", "message_tree_id", "tree_state", "split"),
)

# Ids come from the database as text (the stream's fast path) or as UUIDs (tests, callers
# holding models); both print and sort the same, so the output does not depend on which.
Id = uuid.UUID | str


@dataclass(slots=True)
class MessageRow:
    """One message as the export reads it (the fields of trees.Message it needs)."""

    id: Id
    parent_id: Id | None
    role: str
    text: str
    lang: str
    author_id: Id | None
    created_at: datetime
    review_count: int = 0
    review_result: bool | None = True
    labels: dict[str, dict[str, Any]] = field(default_factory=dict)
    rank: int | None = None
    consensus_strength: float | None = None
    replies_agreement: float | None = None
    synthetic: bool = False
    model_name: str | None = None
    deleted: bool = False
    emojis: dict[str, int] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)
    is_consent_withdrawn: bool = False
    is_taken_down: bool = False
    # iso(created_at) when the reader has it already (the database prints it).
    created_iso: str | None = None


@dataclass(slots=True)
class Node:
    row: MessageRow
    replies: list[Node] = field(default_factory=list)
    turn: orjson.Fragment | None = None  # _turn_json's, once made


@dataclass
class FormattedTree:
    """Everything one tree contributes to an export."""

    split: str
    record: dict[str, Any]  # the OpenAssistant tree line (emojis, labels as JSON fragments)
    messages: list[dict[str, Any]]  # flat rows, parents first, keys in sorted order
    table: list[tuple[Any, ...]]  # the same rows as tuples of FLAT_COLUMNS
    sft: list[dict[str, Any]]  # turns as JSON fragments (_turn_json)
    preference: list[dict[str, Any]]
    root: Node
    rows: list[MessageRow]  # the messages kept, in the order of `messages`


# --- anonymity and splits --------------------------------------------------------------


class Anonymiser:
    """Author ids as sha256(salt + id), cut to a UUID so the OpenAssistant format (and our
    importer) still reads them. The salt is drawn per export and never written, so ids are
    stable within an export but cannot be linked across exports or back to accounts."""

    def __init__(self, salt: str) -> None:
        self.salt = salt
        self._known: dict[Id, str] = {}

    def __call__(self, user_id: Id | None) -> str | None:
        if user_id is None:
            return None
        anonymous = self._known.get(user_id)
        if anonymous is None:
            digest = hashlib.sha256(f"{self.salt}{user_id}".encode()).digest()
            anonymous = self._known[user_id] = str(uuid.UUID(bytes=digest[:16]))
        return anonymous


def assign_split(tree_id: Id, *, seed: int, validation: float, test: float) -> str:
    """The split of a whole tree, from a hash of the export's seed and the tree's id.

    Test takes the lowest slice and validation the next, so raising the validation share
    never moves a tree into or out of test; with the same seed a tree keeps its split in
    every version, so later training data never holds an earlier validation tree.
    """
    digest = hashlib.sha256(f"{seed}:{tree_id}".encode()).digest()
    point = int.from_bytes(digest[:8], "big") / 2**64
    if point < test:
        return "test"
    if point < test + validation:
        return "validation"
    return "train"


# --- filters ---------------------------------------------------------------------------


def exclusion_reason(row: MessageRow, options: ExportOptions) -> str | None:
    """Why this message is left out of the export, or None when it stays."""
    if row.is_taken_down:
        return "taken_down"
    if row.is_consent_withdrawn:
        return "consent_withdrawn"
    if row.deleted and not options.include_deleted:
        return "deleted"
    if options.review == "accepted" and row.review_result is not True:
        return "not_accepted"
    if row.synthetic and not options.include_synthetic:
        return "synthetic"
    if options.since is not None and row.created_at < options.since:
        return "before_since"
    if options.until is not None and row.created_at >= options.until:
        return "not_before_until"
    for name, highest in options.max_labels:
        label = row.labels.get(name)
        if label is not None and label.get("value", 0) > highest:
            return f"label:{name}"
    return None


def build_tree(rows: Sequence[MessageRow], options: ExportOptions) -> tuple[Node | None, Counter]:
    """The tree of the messages that pass the filters, and counts of those that do not.

    Rows may come in any order. A message that fails a filter is left out with everything
    below it, counted under its own reason.
    """
    children: dict[Id | None, list[MessageRow]] = {}
    for row in rows:
        children.setdefault(row.parent_id, []).append(row)
    for siblings in children.values():
        siblings.sort(key=lambda r: (r.created_at, r.id))
    excluded: Counter[str] = Counter()
    roots = children.get(None, [])
    if not roots:
        return None, excluded
    # Kept nodes are linked as they are met; an excluded one takes its subtree along.
    top = Node(roots[0])
    stack: list[tuple[MessageRow, Node | None]] = [(roots[0], None)]
    while stack:
        row, parent = stack.pop()
        reason = exclusion_reason(row, options)
        if reason is not None:
            excluded[reason] += _subtree_size(row, children)
            if parent is None:
                return None, excluded
            continue
        node = top if parent is None else Node(row)
        if parent is not None:
            parent.replies.append(node)
        stack.extend((child, node) for child in reversed(children.get(row.id, [])))
    return top, excluded


def _subtree_size(row: MessageRow, children: dict[Id | None, list[MessageRow]]) -> int:
    size, stack = 0, [row]
    while stack:
        size += 1
        stack.extend(children.get(stack.pop().id, []))
    return size


def walk(root: Node) -> Iterator[tuple[Node, list[Node]]]:
    """Every node with its ancestors (root first), parents before children, in order."""
    stack: list[tuple[Node, list[Node]]] = [(root, [])]
    while stack:
        node, ancestors = stack.pop()
        yield node, ancestors
        path = [*ancestors, node]
        stack.extend((child, path) for child in reversed(node.replies))


# --- the OpenAssistant format and flat rows ----------------------------------------------


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat()


def tree_records(
    root: Node,
    *,
    tree_id: Id,
    state: str,
    split: str,
    anonymise: Callable[[Id | None], Any],
) -> tuple[dict[str, Any], list[dict[str, Any]], list[tuple[Any, ...]], list[MessageRow]]:
    """The OpenAssistant tree line, the flat rows (as dicts, and as tuples of FLAT_COLUMNS)
    and the kept messages (parents first), in one walk: each message's fields are made once
    and shared by the formats.

    The tree line is `{"message_tree_id", "tree_state", "prompt": {..., "replies": [...]}}`;
    tree-level fields an import kept (on the root's extras under "tree") go back to the tree
    level, where they came from. Flat rows, the same for Parquet and JSONL, have fixed
    columns, with the open-ended ones (emojis, labels, extras) as JSON text so every row
    has one schema; their keys come in sorted order. In the tree line emojis and labels are
    that same text as `orjson.Fragment`s: they print as the dicts would, without being
    serialised twice.
    """
    tree_key = str(tree_id)
    root_extra = dict(root.row.extra)
    tree_extra = root_extra.pop("tree", None)
    flat: list[dict[str, Any]] = []
    table: list[tuple[Any, ...]] = []
    kept: list[MessageRow] = []

    # Parents first, each message's replies in order, as walk() gives them. A loop rather
    # than a nested recursive function: that one is a reference cycle holding the tree's
    # rows, which only the garbage collector's full passes would free.
    prompt: dict[str, Any] = {}
    stack: list[tuple[Node, dict[str, Any], list[dict[str, Any]] | None]] = [
        (root, root_extra, None)
    ]
    while stack:
        node, extra, siblings = stack.pop()
        row = node.row
        user_id = anonymise(row.author_id)
        created = row.created_iso or iso(row.created_at)
        message_id = str(row.id)
        parent_id = None if row.parent_id is None else str(row.parent_id)
        emojis = _json_text(row.emojis)
        labels = _json_text(row.labels)
        extra_text = _json_text(extra)
        # The same values as a tuple in FLAT_COLUMNS' order, for the Parquet columns.
        table.append(
            (
                *(message_id, parent_id, user_id, created, row.text, row.role, row.lang),
                *(row.review_count, row.review_result, row.deleted, row.rank, row.synthetic),
                *(row.model_name, emojis, labels, extra_text, tree_key, state, split),
            )
        )
        # Keys in sorted order: the writer prints flat rows as they are (FLAT_KEYS_SORTED).
        flat.append(
            {
                "created_date": created,
                "deleted": row.deleted,
                "emojis": emojis,
                "extra": extra_text,
                "labels": labels,
                "lang": row.lang,
                "message_id": message_id,
                "message_tree_id": tree_key,
                "model_name": row.model_name,
                "parent_id": parent_id,
                "rank": row.rank,
                "review_count": row.review_count,
                "review_result": row.review_result,
                "role": row.role,
                "split": split,
                "synthetic": row.synthetic,
                "text": row.text,
                "tree_state": state,
                "user_id": user_id,
            }
        )
        kept.append(row)
        replies: list[dict[str, Any]] = []
        # Emojis and labels go into the tree line as the JSON text just made for the flat
        # row (the same sorted, compact text orjson would print for the dicts).
        out: dict[str, Any] = {
            "message_id": message_id,
            "parent_id": parent_id,
            "user_id": user_id,
            "created_date": created,
            "text": row.text,
            "role": row.role,
            "lang": row.lang,
            "review_count": row.review_count,
            "review_result": row.review_result,
            "deleted": row.deleted,
            "rank": row.rank,
            "synthetic": row.synthetic,
            "model_name": row.model_name,
            "emojis": orjson.Fragment(emojis),
            "labels": orjson.Fragment(labels),
            "replies": replies,
        }
        if extra:  # modelled fields win over an extra of the same name
            out = {**extra, **out}
        if siblings is None:
            prompt = out
        else:
            siblings.append(out)
        stack.extend((child, child.row.extra, replies) for child in reversed(node.replies))

    tree_fields = tree_extra if isinstance(tree_extra, dict) else {}
    record = {**tree_fields, "message_tree_id": tree_key, "tree_state": state, "prompt": prompt}
    return record, flat, table, kept


def oasst_tree(
    root: Node, *, tree_id: Id, state: str, anonymise: Callable[[Id | None], Any]
) -> dict[str, Any]:
    """The OpenAssistant tree line (see tree_records)."""
    return tree_records(root, tree_id=tree_id, state=state, split="", anonymise=anonymise)[0]


def flat_messages(
    root: Node, *, tree_id: Id, state: str, split: str, anonymise: Callable[[Id | None], Any]
) -> list[dict[str, Any]]:
    """One row per message (see tree_records)."""
    return tree_records(root, tree_id=tree_id, state=state, split=split, anonymise=anonymise)[1]


def _json_text(value: Any) -> str:
    if not value:  # most messages have no emojis and no extras
        return "{}"
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode()


# --- training views --------------------------------------------------------------------


Turn = Callable[[Node], Any]


def _turn(node: Node) -> dict[str, str]:
    return {"role": SFT_ROLES[node.row.role], "content": node.row.text}


def _turn_json(node: Node) -> orjson.Fragment:
    """The node's turn as JSON text, made once per node however many conversations and
    pairs repeat it (a prompt is in every pair of its replies)."""
    if node.turn is None:
        node.turn = orjson.Fragment(
            orjson.dumps({"content": node.row.text, "role": SFT_ROLES[node.row.role]})
        )
    return node.turn


def _preferred(node: Node) -> tuple[Any, ...]:
    """Best first: the best consensus rank, then accepted, then the earliest."""
    row = node.row
    return (row.rank is None, row.rank or 0, row.review_result is not True, row.created_at, row.id)


def _ending_in_assistant(path: Sequence[Node]) -> list[Node]:
    """The path cut after its last assistant message (empty when it has none)."""
    for end in range(len(path), 0, -1):
        if path[end - 1].row.role == "assistant":
            return list(path[:end])
    return []


def sft_conversations(root: Node, *, policy: str, turn: Turn = _turn) -> list[dict[str, Any]]:
    """Conversations `{"messages": [{"role", "content"}, ...]}` that end with the assistant.

    - "best": one per tree, following at every choice the preferred reply (`_preferred`):
      the human-ranked best answer is what a model should imitate;
    - "all": one per assistant message that has no assistant message below it, i.e. every
      root-to-leaf path cut after its last assistant turn, each path once. Every assistant
      message is trained on, none more often than its branches require.
    """
    if policy == "best":
        path, node = [root], root
        while node.replies:
            node = min(node.replies, key=_preferred)
            path.append(node)
        paths = [_ending_in_assistant(path)]
    else:
        paths = [
            [*ancestors, node]
            for node, ancestors in walk(root)
            if node.row.role == "assistant" and not _has_assistant_below(node)
        ]
    return [{"messages": [turn(n) for n in path]} for path in paths if path]


def _has_assistant_below(node: Node) -> bool:
    stack = list(node.replies)
    while stack:
        current = stack.pop()
        if current.row.role == "assistant":
            return True
        stack.extend(current.replies)
    return False


def pair_margin(better: MessageRow, worse: MessageRow) -> float | None:
    """How much better `better` is, or None when the consensus does not separate them:
    the difference of consensus strengths when both are known, else of ranks."""
    if better.rank is None or worse.rank is None or better.rank >= worse.rank:
        return None
    if better.consensus_strength is not None and worse.consensus_strength is not None:
        margin = better.consensus_strength - worse.consensus_strength
        return margin if margin >= MARGIN_EPSILON else None
    return float(worse.rank - better.rank)


def preference_pairs(
    root: Node, *, min_agreement: float | None, turn: Turn = _turn
) -> list[dict[str, Any]]:
    """TRL's conversational preference rows from every ranked pair of assistant siblings:
    {"prompt": [turns up to the parent], "chosen": [reply], "rejected": [reply], "margin"}.

    A sibling set with a known agreement below `min_agreement` gives none; a set with no
    agreement recorded (imported rankings) is kept, since nothing says it is contested.
    """
    pairs = []
    for parent, ancestors in walk(root):
        agreement = parent.row.replies_agreement
        if min_agreement is not None and agreement is not None and agreement < min_agreement:
            continue
        ranked = sorted(
            (c for c in parent.replies if c.row.role == "assistant" and c.row.rank is not None),
            key=_preferred,
        )
        if len(ranked) < 2:
            continue
        prompt = [turn(n) for n in (*ancestors, parent)]
        for index, better in enumerate(ranked):
            for worse in ranked[index + 1 :]:
                margin = pair_margin(better.row, worse.row)
                if margin is not None:
                    pairs.append(
                        {
                            "prompt": prompt,
                            "chosen": [turn(better)],
                            "rejected": [turn(worse)],
                            "margin": margin,
                        }
                    )
    return pairs


# --- all together ----------------------------------------------------------------------


def format_tree(
    rows: Sequence[MessageRow],
    *,
    tree_id: Id,
    state: str,
    options: ExportOptions,
    seed: int,
    anonymise: Callable[[Id | None], Any],
) -> tuple[FormattedTree | None, Counter]:
    """Every record of one tree, or None (with the exclusion counts) when its root is out."""
    root, excluded = build_tree(rows, options)
    if root is None:
        return None, excluded
    split = assign_split(tree_id, seed=seed, validation=options.validation, test=options.test)
    record, messages, table, kept = tree_records(
        root, tree_id=tree_id, state=state, split=split, anonymise=anonymise
    )
    formatted = FormattedTree(
        split=split,
        record=record,
        messages=messages,
        table=table,
        sft=sft_conversations(root, policy=options.branch_policy, turn=_turn_json),
        preference=preference_pairs(root, min_agreement=options.min_agreement, turn=_turn_json),
        root=root,
        rows=kept,
    )
    return formatted, excluded
