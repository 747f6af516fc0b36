from __future__ import annotations

from collections.abc import Iterator
from uuid import UUID

import orjson
from django.conf import settings
from django.db.models import Count, F, Q, QuerySet

from backend.accounts.models import ApiClient, User
from backend.core.errors import NotFound
from backend.tasks.models import Task, TaskStatus
from backend.trees.models import Message


def api_clients_of(owner: User) -> QuerySet[ApiClient]:
    """A person's API keys, live ones first, newest first (only prefixes: keys are not kept)."""
    return ApiClient.objects.filter(owner=owner).order_by(
        F("revoked_at").desc(nulls_first=True), "-created_at"
    )


def access_api_client(*, owner: User, client_id: UUID) -> ApiClient:
    """One of the owner's keys; someone else's is as absent as a missing one."""
    client = ApiClient.objects.filter(owner=owner, pk=client_id).first()
    if client is None:
        raise NotFound("No such API key.")
    return client


def working_languages(user: User) -> list[str]:
    """The user's languages that Chorus collects, in the user's order (the first collected
    language if none)."""
    langs = [lang for lang in user.languages if lang in settings.CHORUS_LANGUAGES]
    return langs or [settings.CHORUS_LANGUAGES[0]]


def user_stats(user: User) -> dict[str, int | float | None]:
    """A volunteer's own figures: what they wrote and how it fared, and their tasks."""
    messages = Message.objects.filter(author=user, deleted=False).aggregate(
        written=Count("id"),
        accepted=Count("id", filter=Q(review_result=True)),
        rejected=Count("id", filter=Q(review_result=False)),
        pending=Count("id", filter=Q(review_result=None)),
    )
    tasks = Task.objects.filter(user=user).aggregate(
        submitted=Count("id", filter=Q(status=TaskStatus.SUBMITTED)),
        skipped=Count("id", filter=Q(status=TaskStatus.SKIPPED)),
        expired=Count("id", filter=Q(status=TaskStatus.EXPIRED)),
    )
    decided = messages["accepted"] + messages["rejected"]
    return {
        "messages_written": messages["written"],
        "messages_accepted": messages["accepted"],
        "messages_rejected": messages["rejected"],
        "messages_pending_review": messages["pending"],
        "acceptance_rate": messages["accepted"] / decided if decided else None,
        "reviews": user.reviews.count(),
        "rankings": user.rankings.count(),
        "tasks_submitted": tasks["submitted"],
        "tasks_skipped": tasks["skipped"],
        "tasks_expired": tasks["expired"],
    }


def contributions(user: User) -> Iterator[bytes]:
    """Everything the user contributed, as one JSON document written piece by piece (a
    volunteer with years of work must not need it all in memory)."""
    from backend.moderation.models import Report
    from backend.trees.models import Ranking, Reaction, Review

    yield orjson.dumps(
        {
            "user": {
                "id": user.pk,
                "username": user.username,
                "display_name": user.display_name,
                "email": user.email,
                "languages": user.languages,
                "date_joined": user.date_joined,
                "accepted_terms_version": user.accepted_terms_version,
            }
        }
    )[:-1]
    sections: dict[str, tuple[QuerySet, list[str]]] = {
        "messages": (
            Message.objects.filter(author=user),
            [
                "id",
                "tree_id",
                "parent_id",
                "role",
                "lang",
                "text",
                "created_at",
                "review_result",
                "deleted",
            ],
        ),
        "reviews": (Review.objects.filter(user=user), ["message_id", "values", "created_at"]),
        "rankings": (
            Ranking.objects.filter(user=user),
            ["parent_id", "ordered_ids", "not_rankable", "created_at"],
        ),
        "reactions": (Reaction.objects.filter(user=user), ["message_id", "emoji", "created_at"]),
        "reports": (
            Report.objects.filter(reporter=user),
            ["message_id", "reason", "text", "created_at"],
        ),
    }
    for name, (queryset, fields) in sections.items():
        yield f',"{name}":['.encode()
        rows = queryset.order_by("created_at").values(*fields).iterator(chunk_size=500)
        for index, row in enumerate(rows):
            yield (b"," if index else b"") + orjson.dumps(row)
        yield b"]"
    yield b"}\n"
