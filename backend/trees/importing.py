"""Seed the platform from an OpenAssistant export: trees or flat messages in JSONL.

Two shapes are read, line by line, even mixed in one file:

- trees: ``{"message_tree_id", "tree_state", "prompt": {message node with "replies"}}``;
- flat messages: one message per line with ``message_id``, ``parent_id`` and usually
  ``message_tree_id``; they are assembled into trees once the input ends.

Every line is checked on its own. A bad line is reported as ``line N: <what is wrong>``
and left out while the rest goes on; a tree with any bad message is left out whole,
because a tree is imported once (re-running skips trees that already exist), so a partial
tree could never be completed later. Each tree is written in its own transaction.
"""

from __future__ import annotations

import logging
import uuid
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.contrib.auth.hashers import make_password
from django.db import DatabaseError, transaction
from django.utils import timezone

from backend.accounts.models import User
from backend.trees.models import Message, MessageTree, Origin
from backend.trees.oasst_format import (
    FlatMessages,
    InvalidRecord,
    ParsedTree,
    infer_state,
    is_live,
    parse_line,
    read_tree_record,
    state_before_halt,
    state_implied_by,
    walk,
)
from backend.trees.rules import State
from backend.trees.services import store_prompt_keys, tree_limits

logger = logging.getLogger(__name__)

# Trees are checked against the database and written this many at a time, which bounds
# memory for tree-shaped input and keeps the round trips per tree to a handful.
TREE_BATCH_SIZE = 200
MESSAGE_BATCH_SIZE = 1000


@dataclass
class ImportReport:
    trees_imported: int = 0
    messages_imported: int = 0
    # Trees left out because a tree with the same id already exists (re-runs are no-ops).
    trees_skipped: int = 0
    # `line N: <what is wrong>` for every line or tree that was rejected.
    errors: list[str] = field(default_factory=list)
    # Imported trees by the state they were given.
    states: Counter[str] = field(default_factory=Counter)
    # `line N: tree <id> already imported` for each skipped tree.
    notes: list[str] = field(default_factory=list)


# --- writing ---------------------------------------------------------------------------


def _create_placeholder_users(trees: Iterable[ParsedTree]) -> None:
    """One imported author per OpenAssistant user id, whose primary key is that id."""
    langs: dict[uuid.UUID, str] = {}
    for tree in trees:
        for node, _, _ in walk(tree.root):
            if node["user_id"] is not None:
                langs.setdefault(node["user_id"], node["lang"] or tree.lang)
    if not langs:
        return
    existing = set(User.objects.filter(id__in=langs).values_list("id", flat=True))
    User.objects.bulk_create(
        [
            User(
                id=user_id,
                username=f"oasst-{user_id.hex}",
                password=make_password(None),
                languages=[lang],
                is_imported=True,
            )
            for user_id, lang in langs.items()
            if user_id not in existing
        ],
        ignore_conflicts=True,  # another import may have created the same author meanwhile
    )


def _rows(
    tree: ParsedTree, *, limits: Mapping[str, Any], now: datetime
) -> tuple[MessageTree, list[Message]]:
    rank_prompter_replies = bool(limits["rank_prompter_replies"])
    state = infer_state(tree.root, tree.given_state, rank_prompter_replies=rank_prompter_replies)
    before_halt = ""
    if state == State.HALTED_BY_MODERATOR:
        implied = state_implied_by(tree.root, rank_prompter_replies=rank_prompter_replies)
        before_halt = state_before_halt(implied)
    tree_row = MessageTree(
        id=tree.id,
        state=state,
        state_before_halt=before_halt,
        lang=tree.lang,
        origin=Origin.IMPORT,
        created_at=tree.root["created_at"] or now,
        state_changed_at=now,
        **limits,
    )
    messages = []
    for node, parent, depth in walk(tree.root):
        live = [child for child in node["replies"] if is_live(child)]
        extra = dict(node["source_extra"])
        if parent is None and tree.extra:
            extra["tree"] = tree.extra
        messages.append(
            Message(
                id=node["message_id"],
                tree_id=tree.id,
                parent_id=None if parent is None else parent["message_id"],
                role=node["role"],
                text=node["text"],
                lang=node["lang"] or tree.lang,
                author_id=node["user_id"],
                depth=depth,
                created_at=node["created_at"] or now,
                review_count=node["review_count"],
                review_result=node["review_result"],
                label_summary=node["label_summary"],
                children_count=len(live),
                accepted_children_count=sum(c["review_result"] is True for c in live),
                ranking_count=0,  # no Ranking rows come with an export
                rank=node["rank"],
                consensus_strength=None,
                synthetic=node["synthetic"],
                model_name=node["model_name"],
                deleted=node["deleted"],
                emojis=node["emojis"],
                source_extra=extra,
            )
        )
    return tree_row, messages


def _write_batch(trees: list[ParsedTree], report: ImportReport) -> None:
    limits = tree_limits()
    now = timezone.now()
    existing = set(
        MessageTree.objects.filter(id__in=[t.id for t in trees]).values_list("id", flat=True)
    )
    _create_placeholder_users(t for t in trees if t.id not in existing)
    for tree in trees:
        if tree.id in existing:
            report.trees_skipped += 1
            report.notes.append(f"line {tree.line}: tree {tree.id} already imported")
            continue
        tree_row, messages = _rows(tree, limits=limits, now=now)
        try:
            # One transaction per tree: a failure leaves nothing of it behind.
            with transaction.atomic():
                MessageTree.objects.bulk_create([tree_row])
                Message.objects.bulk_create(messages, batch_size=MESSAGE_BATCH_SIZE)
                store_prompt_keys([m for m in messages if m.parent_id is None])
        except DatabaseError as exc:
            if MessageTree.objects.filter(id=tree.id).exists():  # a concurrent import won
                report.trees_skipped += 1
                report.notes.append(f"line {tree.line}: tree {tree.id} already imported")
            else:
                reason = str(exc).splitlines()[0]
                report.errors.append(f"line {tree.line}: tree {tree.id} not imported: {reason}")
            continue
        existing.add(tree.id)
        report.trees_imported += 1
        report.messages_imported += len(messages)
        report.states[State(tree_row.state).value] += 1


def import_oasst(*, lines: Iterable[str | bytes], source: str = "") -> ImportReport:
    """Import OpenAssistant JSONL (trees or flat messages) and report what happened.

    Lines are read as they come (str or bytes); tree lines are written in batches, flat
    message lines once the input ends. Trees that already exist are skipped, so running
    the same file twice imports it once. `source` names the input in the log.
    """
    report = ImportReport()
    flat = FlatMessages()
    batch: list[ParsedTree] = []
    for number, raw in enumerate(lines, start=1):
        try:
            record = parse_line(raw)
            if record is None:
                continue
            if not isinstance(record, dict):
                raise InvalidRecord(f"expected a JSON object, not {type(record).__name__}")
            if "prompt" in record:
                batch.append(read_tree_record(record, line=number))
            elif "message_id" in record:
                flat.add(record, line=number)
            else:
                raise InvalidRecord("neither a tree (no prompt) nor a message (no message_id)")
        except InvalidRecord as exc:
            text = str(exc)
            report.errors.append(text if text.startswith("line ") else f"line {number}: {text}")
            continue
        if len(batch) >= TREE_BATCH_SIZE:
            _write_batch(batch, report)
            batch = []
    for tree in flat.assemble(report.errors):
        batch.append(tree)
        if len(batch) >= TREE_BATCH_SIZE:
            _write_batch(batch, report)
            batch = []
    if batch:
        _write_batch(batch, report)
    logger.info(
        "imported %s: %d trees, %d messages, %d skipped, %d errors",
        source or "oasst input",
        report.trees_imported,
        report.messages_imported,
        report.trees_skipped,
        len(report.errors),
    )
    return report
