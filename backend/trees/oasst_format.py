"""The OpenAssistant export format, read: one JSON line at a time, checked field by field,
assembled into trees, and the tree state the data implies. No database here: the importer
(`backend.trees.importing`) writes what this module parses, and the exporter writes the
same format back.
"""

from __future__ import annotations

import json
import uuid
from collections import defaultdict
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from backend.trees.rules import State

ROLES = ("prompter", "assistant")
SMALLINT_MAX = 32767
# The fields Chorus models; anything else on a message is kept in `source_extra`.
MESSAGE_FIELDS = frozenset(
    {
        "message_id",
        "parent_id",
        "message_tree_id",
        "tree_state",
        "user_id",
        "created_date",
        "text",
        "role",
        "lang",
        "review_count",
        "review_result",
        "deleted",
        "rank",
        "synthetic",
        "model_name",
        "emojis",
        "labels",
        "replies",
    }
)
TREE_FIELDS = frozenset({"message_tree_id", "tree_state", "prompt"})
_STATE_VALUES = frozenset(state.value for state in State)
# States a file may give that are kept when the data does not contradict them.
KEPT_GIVEN_STATES = frozenset(
    {
        State.GROWING,
        State.PROMPT_LOTTERY_WAITING,
        State.HALTED_BY_MODERATOR,
        State.ABORTED_LOW_GRADE,
        State.READY_FOR_SCORING,
    }
)


class InvalidRecord(ValueError):
    """A line or tree that cannot be imported; the message says why, for a person."""


@dataclass
class ParsedTree:
    id: uuid.UUID
    line: int
    lang: str
    given_state: str | None
    # The root message as a cleaned node (see `_clean_message`) with nested "replies".
    root: dict[str, Any]
    # Tree-level fields Chorus does not model; kept on the root's `source_extra["tree"]`.
    extra: dict[str, Any] = field(default_factory=dict)


# --- state -----------------------------------------------------------------------------


def is_live(node: Mapping[str, Any]) -> bool:
    return not node.get("deleted", False) and node.get("review_result") is not False


def state_implied_by(root_node: Mapping[str, Any], *, rank_prompter_replies: bool = False) -> State:
    """The state an OpenAssistant tree's data implies, whatever its file says.

    - root deleted or rejected in review: `aborted_low_grade`;
    - root not yet reviewed: `initial_prompt_review`;
    - some live, accepted message has two or more live accepted replies and none of its
      replies has a rank: `backlog_ranking` (that sibling set still needs ranking);
    - otherwise `ready_for_export`.

    Only sets of assistant replies count as needing ranking unless `rank_prompter_replies`:
    OpenAssistant leaves prompter replies unranked by default, and so does its data. The
    test for a set matches `selectors.tree_facts`, which decides when ranking is over.
    """
    if root_node.get("deleted", False) or root_node.get("review_result") is False:
        return State.ABORTED_LOW_GRADE
    if root_node.get("review_result") is None:
        return State.INITIAL_PROMPT_REVIEW
    stack = [root_node]
    while stack:
        node = stack.pop()
        replies = node.get("replies", ())
        live = [reply for reply in replies if is_live(reply)]
        is_ranked_set = (
            (rank_prompter_replies or node.get("role") == "prompter")
            and node.get("review_result") is True
            and sum(reply.get("review_result") is True for reply in live) >= 2
            and all(reply.get("rank") is None for reply in replies)
        )
        if is_ranked_set:
            return State.BACKLOG_RANKING
        stack.extend(live)
    return State.READY_FOR_EXPORT


def infer_state(
    root_node: Mapping[str, Any], given_state: str | None, *, rank_prompter_replies: bool = False
) -> State:
    """The state an imported tree gets: what its data implies (`state_implied_by`), except
    that a `tree_state` from the file is kept where the data does not contradict it:

    - `aborted_low_grade` is always kept: the source gave up on the tree, and it is terminal;
    - a rejected or deleted root makes any other tree `aborted_low_grade`;
    - `halted_by_moderator` is kept (the importer records the implied state to resume to);
    - `growing` and `prompt_lottery_waiting` are kept once the root is accepted;
    - `ready_for_scoring` is kept while no sibling set lacks ranks.

    Any other given state (`ready_for_export`, `ranking`, unknown names) yields to the data,
    so a tree the file calls ready_for_export with an unranked sibling set goes to
    `backlog_ranking`.
    """
    implied = state_implied_by(root_node, rank_prompter_replies=rank_prompter_replies)
    given = State(given_state) if given_state in _STATE_VALUES else None
    if given not in KEPT_GIVEN_STATES:
        return implied
    if given == State.ABORTED_LOW_GRADE or implied == State.ABORTED_LOW_GRADE:
        return State.ABORTED_LOW_GRADE
    if given == State.HALTED_BY_MODERATOR:
        return given
    if given in (State.GROWING, State.PROMPT_LOTTERY_WAITING):
        return given if implied != State.INITIAL_PROMPT_REVIEW else implied
    # ready_for_scoring: only a fully ranked (or rank-free) tree is ready to be scored.
    return given if implied == State.READY_FOR_EXPORT else implied


def state_before_halt(implied: State) -> State:
    # A halt is never applied to a terminal state (rules.is_legal_transition), so a halted
    # tree whose data looks finished resumes to scoring, the last step before export.
    return State.READY_FOR_SCORING if implied == State.READY_FOR_EXPORT else implied


# --- reading one message ---------------------------------------------------------------


def _uuid(value: Any, name: str) -> uuid.UUID:
    if not isinstance(value, str):
        raise InvalidRecord(f"{name} must be a UUID string, not {value!r}")
    try:
        return uuid.UUID(value)
    except ValueError:
        raise InvalidRecord(f"{name} is not a valid UUID: {value!r}") from None


def _optional_uuid(raw: Mapping[str, Any], name: str) -> uuid.UUID | None:
    value = raw.get(name)
    return None if value is None else _uuid(value, name)


def _bool(raw: Mapping[str, Any], name: str, *, default: bool | None) -> bool | None:
    value = raw.get(name)
    if value is None:
        return default
    if not isinstance(value, bool):
        raise InvalidRecord(f"{name} must be true or false, not {value!r}")
    return value


def _small_int(value: Any, name: str) -> int:
    # Exports written through pandas carry integers as floats (0.0); accept those.
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= SMALLINT_MAX:
        raise InvalidRecord(f"{name} must be a whole number from 0 to {SMALLINT_MAX}: {value!r}")
    return value


def _datetime(value: Any) -> datetime:
    if not isinstance(value, str):
        raise InvalidRecord(f"created_date must be an ISO 8601 string, not {value!r}")
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise InvalidRecord(f"created_date is not an ISO 8601 date: {value!r}") from None
    aware = parsed.tzinfo is not None and parsed.utcoffset() is not None
    return parsed if aware else parsed.replace(tzinfo=UTC)


def _columns(value: Mapping[str, Any], keys: tuple[str, ...]) -> Iterator[tuple[Any, ...]]:
    """Rows of a Hugging Face column-wise mapping ({"name": [...], "count": [...]})."""
    columns = [value[key] for key in keys]
    if not all(isinstance(column, list) for column in columns):
        raise InvalidRecord(f"columns {', '.join(keys)} must all be lists")
    if len({len(column) for column in columns}) > 1:
        raise InvalidRecord(f"columns {', '.join(keys)} differ in length")
    return zip(*columns, strict=True)


def _emojis(value: Any) -> dict[str, int]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise InvalidRecord(f"emojis must be an object of name to count, not {value!r}")
    if set(value) == {"name", "count"} and isinstance(value["name"], list):
        value = dict(_columns(value, ("name", "count")))
    out = {}
    for name, count in value.items():
        if not isinstance(name, str):
            raise InvalidRecord(f"emoji names must be strings, not {name!r}")
        out[name] = _small_int(count, f"emojis.{name}")
    return out


def _label_summary(value: Any) -> dict[str, dict[str, float | int]]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise InvalidRecord(f"labels must be an object of name to {{value, count}}, not {value!r}")
    if set(value) == {"name", "value", "count"} and isinstance(value["name"], list):
        rows = _columns(value, ("name", "value", "count"))
        value = {name: {"value": v, "count": c} for name, v, c in rows}
    out: dict[str, dict[str, float | int]] = {}
    for name, entry in value.items():
        if not isinstance(name, str) or not isinstance(entry, dict):
            raise InvalidRecord(f"labels.{name} must be an object with value and count")
        number = entry.get("value")
        if isinstance(number, bool) or not isinstance(number, int | float):
            raise InvalidRecord(f"labels.{name}.value must be a number, not {number!r}")
        out[name] = {
            "value": float(number),
            "count": _small_int(entry.get("count", 0), f"labels.{name}.count"),
        }
    return out


def _clean_message(raw: Any, *, line: int) -> dict[str, Any]:
    """Check one message object and return it in Chorus's terms (no "replies" yet).

    The keys read by `infer_state` keep their OpenAssistant names (deleted,
    review_result, rank, role), so the cleaned tree can be handed to it as it is.
    """
    if not isinstance(raw, dict):
        raise InvalidRecord(f"a message must be an object, not {type(raw).__name__}")
    message_id = _uuid(raw.get("message_id"), "message_id")
    try:
        role = raw.get("role")
        if role not in ROLES:
            raise InvalidRecord(f"role must be 'prompter' or 'assistant', not {role!r}")
        text = raw.get("text")
        if not isinstance(text, str) or not text.strip():
            raise InvalidRecord("text must be a non-empty string")
        lang = raw.get("lang")
        if lang is not None and (not isinstance(lang, str) or not 0 < len(lang) <= 16):
            raise InvalidRecord(f"lang must be a language code of 1 to 16 characters: {lang!r}")
        model_name = raw.get("model_name")
        if model_name is not None and (not isinstance(model_name, str) or len(model_name) > 200):
            raise InvalidRecord("model_name must be a string of at most 200 characters")
        rank = raw.get("rank")
        created = raw.get("created_date")
        return {
            "message_id": message_id,
            "parent_id": _optional_uuid(raw, "parent_id"),
            "message_tree_id": _optional_uuid(raw, "message_tree_id"),
            "tree_state": raw.get("tree_state"),
            "user_id": _optional_uuid(raw, "user_id"),
            "created_at": None if created is None else _datetime(created),
            "text": text,
            "role": role,
            "lang": lang,
            "review_count": _small_int(raw.get("review_count", 0), "review_count"),
            "review_result": _bool(raw, "review_result", default=None),
            "deleted": _bool(raw, "deleted", default=False),
            "rank": None if rank is None else _small_int(rank, "rank"),
            "synthetic": _bool(raw, "synthetic", default=False),
            "model_name": model_name,
            "emojis": _emojis(raw.get("emojis")),
            "label_summary": _label_summary(raw.get("labels")),
            "source_extra": {k: v for k, v in raw.items() if k not in MESSAGE_FIELDS},
            "line": line,
            "replies": [],
        }
    except InvalidRecord as exc:
        raise InvalidRecord(f"message {message_id}: {exc}") from None


def walk(root: dict[str, Any]) -> Iterator[tuple[dict[str, Any], dict[str, Any] | None, int]]:
    """Every node of a cleaned tree with its parent and depth, parents before children."""
    stack: list[tuple[dict[str, Any], dict[str, Any] | None, int]] = [(root, None, 0)]
    while stack:
        node, parent, depth = stack.pop()
        yield node, parent, depth
        stack.extend((child, node, depth + 1) for child in reversed(node["replies"]))


def _check_tree(tree: ParsedTree) -> None:
    """Rules that span messages: the root is a prompt, roles alternate, ids are unique."""
    seen: set[uuid.UUID] = set()
    for node, parent, _ in walk(tree.root):
        where = f"line {node['line']}: message {node['message_id']}"
        if node["message_id"] in seen:
            raise InvalidRecord(f"{where}: appears twice in tree {tree.id}")
        seen.add(node["message_id"])
        if parent is None:
            if node["role"] != "prompter":
                raise InvalidRecord(f"{where}: the root of a tree must be a prompter message")
            if node["parent_id"] is not None:
                raise InvalidRecord(f"{where}: the root of a tree cannot have a parent_id")
            continue
        if node["parent_id"] not in (None, parent["message_id"]):
            raise InvalidRecord(f"{where}: parent_id does not match the message it replies to")
        if node["role"] == parent["role"]:
            raise InvalidRecord(
                f"{where}: a {node['role']} message cannot reply to a {parent['role']} message"
            )


# --- reading lines ---------------------------------------------------------------------


def read_tree_record(record: dict[str, Any], *, line: int) -> ParsedTree:
    prompt = record.get("prompt")
    if not isinstance(prompt, dict):
        raise InvalidRecord("prompt must be a message object")
    root = _clean_message(prompt, line=line)
    stack = [(root, prompt)]
    while stack:
        node, raw = stack.pop()
        replies = raw.get("replies", [])
        if not isinstance(replies, list):
            raise InvalidRecord(f"message {node['message_id']}: replies must be a list")
        for raw_reply in replies:
            reply = _clean_message(raw_reply, line=line)
            node["replies"].append(reply)
            stack.append((reply, raw_reply))
    tree_id = record.get("message_tree_id")
    tree = ParsedTree(
        id=root["message_id"] if tree_id is None else _uuid(tree_id, "message_tree_id"),
        line=line,
        lang=_tree_lang(root),
        given_state=_given_state(record.get("tree_state")),
        root=root,
        extra={k: v for k, v in record.items() if k not in TREE_FIELDS},
    )
    _check_tree(tree)
    return tree


def _tree_lang(root: Mapping[str, Any]) -> str:
    if root["lang"] is None:
        raise InvalidRecord(f"message {root['message_id']}: the root prompt has no lang")
    return root["lang"]


def _given_state(value: Any) -> str | None:
    if value is not None and not isinstance(value, str):
        raise InvalidRecord(f"tree_state must be a string, not {value!r}")
    return value


class FlatMessages:
    """Flat message lines, held until the input ends and then assembled into trees.

    Unlike tree lines these are kept in memory: a tree is complete only once every line has
    been read, since exports need not keep a tree's messages together.
    """

    def __init__(self) -> None:
        self.nodes: dict[uuid.UUID, dict[str, Any]] = {}
        # Message ids (as written) of rejected lines, and trees that lost a message.
        self.rejected: dict[str, int] = {}
        self.spoiled_trees: dict[uuid.UUID, int] = {}

    def add(self, record: dict[str, Any], *, line: int) -> None:
        try:
            node = _clean_message(record, line=line)
            _given_state(node["tree_state"])
            first = self.nodes.get(node["message_id"])
            if first is not None:
                if {**first, "line": line} == node:
                    return  # the same message twice (say, a file concatenated with itself)
                raise InvalidRecord(
                    f"message {node['message_id']}: differs from the same id on line "
                    f"{first['line']}"
                )
        except InvalidRecord:
            self._remember_rejected(record, line=line)
            raise
        self.nodes[node["message_id"]] = node

    def _remember_rejected(self, record: dict[str, Any], *, line: int) -> None:
        self.rejected.setdefault(str(record.get("message_id")), line)
        try:
            tree_id = _optional_uuid(record, "message_tree_id")
        except InvalidRecord:
            return
        if tree_id is not None:
            self.spoiled_trees.setdefault(tree_id, line)

    def assemble(self, errors: list[str]) -> Iterator[ParsedTree]:
        """Trees whose every message is present and valid; the rest become errors."""
        children: defaultdict[uuid.UUID, list[dict[str, Any]]] = defaultdict(list)
        roots, orphans = [], []
        for node in sorted(self.nodes.values(), key=lambda n: n["line"]):
            if node["parent_id"] is None:
                roots.append(node)
            elif node["parent_id"] in self.nodes:
                children[node["parent_id"]].append(node)
            else:
                orphans.append(node)
        placed: set[uuid.UUID] = set()
        for orphan in orphans:
            errors.append(
                f"line {orphan['line']}: message {orphan['message_id']}: {self._why(orphan)}"
            )
            # The orphan's whole branch is lost, and with it every tree it claims to be in.
            for node in _subtree(orphan, children):
                placed.add(node["message_id"])
                if node["message_tree_id"] is not None:
                    self.spoiled_trees.setdefault(node["message_tree_id"], node["line"])
        trees = []
        for root in roots:
            members = _subtree(root, children)
            placed.update(node["message_id"] for node in members)
            try:
                trees.append(self._tree(root, members))
            except InvalidRecord as exc:
                errors.append(str(exc))
        for node in self.nodes.values():
            if node["message_id"] not in placed:
                errors.append(
                    f"line {node['line']}: message {node['message_id']}: its parent_id chain "
                    "loops and never reaches a root prompt"
                )
        return iter(trees)

    def _why(self, orphan: Mapping[str, Any]) -> str:
        parent = orphan["parent_id"]
        if str(parent) in self.rejected:
            return f"its parent {parent} (line {self.rejected[str(parent)]}) was rejected"
        return f"its parent {parent} never appears in the input"

    def _tree(self, root: dict[str, Any], members: list[dict[str, Any]]) -> ParsedTree:
        tree_id = root["message_tree_id"] or root["message_id"]
        if tree_id in self.spoiled_trees:
            raise InvalidRecord(
                f"line {root['line']}: tree {tree_id} not imported: its message on line "
                f"{self.spoiled_trees[tree_id]} was rejected"
            )
        for node in members:
            if node["message_tree_id"] not in (None, tree_id):
                raise InvalidRecord(
                    f"line {node['line']}: message {node['message_id']}: message_tree_id "
                    f"{node['message_tree_id']} differs from its root's tree {tree_id}"
                )
        try:
            lang = _tree_lang(root)
        except InvalidRecord as exc:
            raise InvalidRecord(f"line {root['line']}: {exc}") from None
        states = [node["tree_state"] for node in members if node["tree_state"] is not None]
        tree = ParsedTree(
            id=tree_id,
            line=root["line"],
            lang=lang,
            given_state=root["tree_state"] or (states[0] if states else None),
            root=root,
        )
        _check_tree(tree)
        return tree


def _subtree(
    top: dict[str, Any], children: Mapping[uuid.UUID, list[dict[str, Any]]]
) -> list[dict[str, Any]]:
    """`top` and everything below it, linking each node's "replies" on the way."""
    members = [top]
    index = 0
    while index < len(members):
        node = members[index]
        node["replies"] = children.get(node["message_id"], [])
        members.extend(node["replies"])
        index += 1
    return members


def parse_line(raw: str | bytes) -> Any:
    if isinstance(raw, str):
        raw = raw.lstrip("\ufeff")
    if not raw.strip():
        return None
    try:
        return json.loads(raw)
    except ValueError as exc:  # JSONDecodeError and UnicodeDecodeError alike
        raise InvalidRecord(f"not valid JSON ({exc})") from None
