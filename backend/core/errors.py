"""Domain errors. Services raise these; `api_errors` maps them to HTTP responses.

Each error carries a stable machine-readable `code`, a sentence for people and, for bad
input, the offending `fields`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any, ClassVar

# --- What is wrong with one field ------------------------------------------------------------
# The API says these in English, in an error's `fields`; the pages put them in the reader's
# language (frontend.access.field_problem), so each is worded here once. The parametrised
# ones come with the pattern that reads their parameters back.
REQUIRED = "Required."
BLANK = "May not be blank."
UNCHANGED = "Unchanged."
WHOLE_NUMBER = "Must be a whole number."
NUMBER = "Must be a number."
ISO_DATE = "An ISO date, e.g. 2026-11-25."
SHARE = "A number from 0 to 1."
ONE_OF = re.compile(r"One of: (.+)\.")
AT_MOST = re.compile(r"At most (\d+) characters\.")
BETWEEN = re.compile(r"Must be between (\S+) and (\S+)\.")


def one_of(choices: Iterable[str]) -> str:
    return f"One of: {', '.join(choices)}."


def at_most(limit: int) -> str:
    return f"At most {limit} characters."


def between(low: float, high: float) -> str:
    return f"Must be between {low:g} and {high:g}."


class ChorusError(Exception):
    code: ClassVar[str] = "error"
    status: ClassVar[int] = 400

    def __init__(
        self, message: str, *, fields: dict[str, list[str]] | None = None, **extra: Any
    ) -> None:
        super().__init__(message)
        self.message = message
        self.fields = fields or {}
        self.extra = extra


class InvalidInput(ChorusError):
    code = "invalid_input"
    status = 400


class NotAllowed(ChorusError):
    code = "permission_denied"
    status = 403


class UserBanned(NotAllowed):
    code = "user_banned"


class NotFound(ChorusError):
    code = "not_found"
    status = 404


class Conflict(ChorusError):
    code = "conflict"
    status = 409


class NoTaskAvailable(ChorusError):
    """No slot of the asked type and language is open for this volunteer; `reasons` says why."""

    code = "no_task_available"
    status = 404


class TaskExpired(Conflict):
    code = "task_expired"


class TaskAlreadyDone(Conflict):
    code = "task_already_done"


class NotYourTask(ChorusError):
    code = "not_your_task"
    status = 403


class TreeMovedOn(Conflict):
    """The tree changed state since the task was handed out (e.g. its size goal was met)."""

    code = "tree_moved_on"


class TreeHalted(Conflict):
    code = "tree_halted"


class PromptQueueFull(Conflict):
    """The language's prompts in review (or in the lottery) are at their limit."""

    code = "prompt_queue_full"


class DuplicatePrompt(Conflict):
    """A new first prompt nearly repeats a live one; `duplicate_of` names it
    ({"message_id", "tree_id"}). Nothing is stored and the task stays open."""

    code = "duplicate_prompt"


class IdempotencyKeyReused(Conflict):
    code = "idempotency_key_reused"


class PublishFailed(ChorusError):
    """The Hugging Face Hub could not be reached or refused a push; local data is untouched."""

    code = "publish_failed"
    status = 502


class InferenceOff(ChorusError):
    """No inference server is configured (INFERENCE_URL is empty)."""

    code = "inference_off"
    status = 503


class InferenceUnavailable(ChorusError):
    """The inference server could not be reached or answered with an error."""

    code = "inference_unavailable"
    status = 503


class InferenceTimeout(InferenceUnavailable):
    """The inference server took longer than INFERENCE_TIMEOUT to answer."""

    code = "inference_timeout"
    status = 504
