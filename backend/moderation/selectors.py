"""What moderators read: the report queue, message search, the audit log."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from uuid import UUID

from django.db.models import Count, Max, Q, QuerySet
from django.db.models.expressions import RawSQL

from backend.core import errors as problems
from backend.core.errors import InvalidInput
from backend.moderation.models import Action, AuditEntry, Report
from backend.trees import labels
from backend.trees.models import Message
from backend.trees.rules import State


@dataclass
class QueueItem:
    message: Message
    reports: list[Report] = field(default_factory=list)
    conversation: list[Message] = field(default_factory=list)


def report_queue(*, limit: int = 50, message_id: UUID | str | None = None) -> list[QueueItem]:
    """Messages with open reports, most reported first, then the most recent; each with
    its reports and the conversation above it. Three queries whatever the length. With
    `message_id`, that message's item alone (none if it has no open report)."""
    open_reports = Report.objects.filter(resolved_at=None)
    if message_id is not None:
        open_reports = open_reports.filter(message_id=message_id)
    # Not filter(reports__resolved_at=None): across a reverse relation that also matches
    # messages with no report at all (the outer join's NULL).
    is_open = Q(reports__resolved_at=None)
    heads = list(
        Message.objects.filter(pk__in=open_reports.values("message_id"))
        .annotate(
            open_reports=Count("reports", filter=is_open),
            last_report=Max("reports__created_at", filter=is_open),
        )
        .select_related("author", "tree")
        .order_by("-open_reports", "-last_report")[:limit]
    )
    items = {message.id: QueueItem(message=message) for message in heads}
    for report in (
        Report.objects.filter(message_id__in=list(items), resolved_at=None)
        .select_related("reporter")
        .order_by("created_at")
    ):
        items[report.message_id].reports.append(report)
    # The conversations: every message on the paths to the reported ones, in one query.
    ancestors = Message.objects.raw(
        """
        WITH RECURSIVE up AS (
            SELECT id, parent_id, id AS leaf FROM trees_message WHERE id = ANY(%s)
            UNION ALL
            SELECT m.id, m.parent_id, up.leaf FROM trees_message m JOIN up ON m.id = up.parent_id
        )
        SELECT m.*, up.leaf FROM up JOIN trees_message m ON m.id = up.id
        ORDER BY m.depth
        """,
        [list(items)],
    )
    for message in ancestors:
        items[getattr(message, "leaf")].conversation.append(message)  # noqa: B009 - raw column
    return list(items.values())


def open_report_count() -> int:
    return Report.objects.filter(resolved_at=None).count()


@dataclass(frozen=True)
class SearchFilters:
    q: str = ""
    author: str = ""  # username
    state: str = ""
    lang: str = ""
    label: str = ""  # a label name, with label_min
    label_min: float | None = None
    since: datetime | None = None
    until: datetime | None = None
    deleted: bool | None = None


def parse_filters(params: Any) -> SearchFilters:
    """Filters from query parameters, with field errors for bad ones."""
    errors: dict[str, list[str]] = {}

    def when(name: str) -> datetime | None:
        raw = params.get(name, "")
        if not raw:
            return None
        try:
            return datetime.fromisoformat(raw)
        except ValueError:
            errors[name] = [problems.ISO_DATE]
            return None

    state = params.get("state", "")
    if state and state not in {s.value for s in State}:
        errors["state"] = [problems.one_of(s.value for s in State)]
    label = params.get("label", "")
    if label and label not in labels.CATALOGUE:
        errors["label"] = [problems.one_of(labels.CATALOGUE)]
    label_min = None
    if params.get("label_min", ""):
        try:
            label_min = float(params["label_min"])
        except ValueError:
            errors["label_min"] = [problems.SHARE]
    deleted = {"": None, "true": True, "false": False}.get(params.get("deleted", ""), "bad")
    if deleted == "bad":
        errors["deleted"] = ["true or false."]
    q = params.get("q", "").strip()
    if len(q) > 200:
        errors["q"] = ["At most 200 characters."]
    filters = SearchFilters(
        q=q,
        author=params.get("author", "").strip(),
        state=state,
        lang=params.get("lang", "").strip(),
        label=label,
        label_min=label_min,
        since=when("since"),
        until=when("until"),
        deleted=deleted if deleted != "bad" else None,  # type: ignore[arg-type]
    )
    if errors:
        raise InvalidInput("Some search filters are not valid.", fields=errors)
    return filters


def search_messages(filters: SearchFilters) -> QuerySet[Message]:
    """Messages matching the filters; with `q`, PostgreSQL full-text search in each
    message's language (stemming: "gardens" finds "garden"), best matches first."""
    messages = Message.objects.select_related("author", "tree")
    if filters.q:
        # The same expression as the index message_text_search (trees migration 0004).
        match = RawSQL(
            "to_tsvector(chorus_ts_config(trees_message.lang), trees_message.text) "
            "@@ websearch_to_tsquery(chorus_ts_config(trees_message.lang), %s)",
            [filters.q],
        )
        rank = RawSQL(
            "ts_rank(to_tsvector(chorus_ts_config(trees_message.lang), trees_message.text), "
            "websearch_to_tsquery(chorus_ts_config(trees_message.lang), %s))",
            [filters.q],
        )
        messages = messages.annotate(match=match, rank_score=rank).filter(match=True)
        messages = messages.order_by("-rank_score", "-created_at")
    else:
        messages = messages.order_by("-created_at")
    if filters.author:
        messages = messages.filter(author__username=filters.author)
    if filters.state:
        messages = messages.filter(tree__state=filters.state)
    if filters.lang:
        messages = messages.filter(lang=filters.lang)
    if filters.label and filters.label_min is not None:
        messages = messages.filter(
            **{f"label_summary__{filters.label}__value__gte": filters.label_min}
        )
    elif filters.label:
        messages = messages.filter(label_summary__has_key=filters.label)
    if filters.since:
        messages = messages.filter(created_at__gte=filters.since)
    if filters.until:
        messages = messages.filter(created_at__lt=filters.until)
    if filters.deleted is not None:
        messages = messages.filter(deleted=filters.deleted)
    return messages


def audit_log(*, action: str = "", actor: str = "", target_id: str = "") -> QuerySet[AuditEntry]:
    entries = AuditEntry.objects.order_by("-created_at", "-id")
    if action:
        if action not in Action.values:
            raise InvalidInput(
                f"Unknown action {action!r}.",
                fields={"action": [problems.one_of(Action.values)]},
            )
        entries = entries.filter(action=action)
    if actor:
        entries = entries.filter(actor_name=actor)
    if target_id:
        entries = entries.filter(target_id=target_id)
    return entries


def message_for_moderator(message_id: UUID) -> Message | None:
    return (
        Message.objects.select_related("author", "tree")
        .prefetch_related("revisions__editor")
        .filter(Q(pk=message_id))
        .first()
    )
