from __future__ import annotations

from django.db import IntegrityError, transaction

from backend.accounts.models import User
from backend.core.errors import Conflict, InvalidInput
from backend.moderation.models import Report, ReportReason
from backend.trees.models import Message


def report_message(*, message: Message, reporter: User, reason: str, text: str = "") -> Report:
    """Put a message in front of the moderators. One open report per person and message."""
    if reason not in ReportReason.values:
        raise InvalidInput(
            "Say why you report it.",
            fields={"reason": [f"One of: {', '.join(ReportReason.values)}."]},
        )
    try:
        with transaction.atomic():
            return Report.objects.create(
                message=message, reporter=reporter, reason=reason, text=text.strip()[:2000]
            )
    except IntegrityError:
        raise Conflict("You reported this message already; a moderator will look at it.") from None
