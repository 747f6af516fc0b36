from __future__ import annotations

from django.db.models import Count, Q

from backend.accounts.models import User
from backend.tasks.models import Task, TaskStatus
from backend.trees.models import Message


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
