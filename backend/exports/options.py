"""What an export includes and how it is cut, as pure code: parsed, checked and turned into
the JSON kept on `DatasetExport.filters`, the manifest and the dataset card.

Filters work on messages, and a message that fails one leaves with all its replies: a
reply means nothing without the conversation above it, and every file (trees, SFT paths,
preference prompts) needs that conversation whole. Tree states and languages are read from
the tree (the language of its root prompt), so they keep or drop whole trees.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, fields
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from backend.core import errors as problems
from backend.core.errors import InvalidInput
from backend.trees.labels import CATALOGUE
from backend.trees.rules import State

BRANCH_POLICIES = ("best", "all")
# "accepted": only messages whose review accepted them; "any": every verdict, pending too.
REVIEW_CHOICES = ("accepted", "any")
# A language as trees record it: a lowercase ISO 639 code, then any subtags, as the
# OpenAssistant data writes them ("en", "pt-BR", "zh-Hant-TW"); at most 16 characters.
_LANG_CODE = re.compile(r"[a-z]{2,3}(-[A-Za-z0-9]{1,8})*")
_LANG_MAX_LENGTH = 16


@dataclass(frozen=True)
class ExportOptions:
    states: tuple[str, ...] = (State.READY_FOR_EXPORT.value,)
    # Empty: every language.
    langs: tuple[str, ...] = ()
    review: str = "accepted"
    include_deleted: bool = False
    include_synthetic: bool = True
    # Sibling sets whose agreement (Kendall's W) is below this give no preference pairs.
    min_agreement: float | None = None
    # (label, highest mean kept), sorted by label: a message above any is left out.
    max_labels: tuple[tuple[str, float], ...] = ()
    # On message created_at: since is inclusive, until exclusive.
    since: datetime | None = None
    until: datetime | None = None
    branch_policy: str = "best"
    validation: float = 0.1
    test: float = 0.0

    @property
    def train(self) -> float:
        return 1.0 - self.validation - self.test

    @classmethod
    def from_json(cls, data: Mapping[str, Any] | None) -> ExportOptions:
        """Options from a JSON object (the API, the command, a stored export); every
        problem is reported at once as InvalidInput with the fields at fault."""
        data = dict(data or {})
        errors: dict[str, list[str]] = {}
        known = {f.name for f in fields(cls)}
        for name in sorted(set(data) - known):
            errors[name] = ["unknown option"]
        values: dict[str, Any] = {}
        for name, parse in _PARSERS.items():
            if name in data and data[name] is not None:
                try:
                    values[name] = parse(data[name])
                except (TypeError, ValueError) as exc:
                    errors[name] = [str(exc)]
        if not errors:
            errors.update(_cross_checks(values))
        if errors:
            raise InvalidInput("The export options are not valid.", fields=errors)
        return cls(**values)

    def to_json(self) -> dict[str, Any]:
        return {
            "states": list(self.states),
            "langs": list(self.langs),
            "review": self.review,
            "include_deleted": self.include_deleted,
            "include_synthetic": self.include_synthetic,
            "min_agreement": self.min_agreement,
            "max_labels": dict(self.max_labels),
            "since": None if self.since is None else self.since.isoformat(),
            "until": None if self.until is None else self.until.isoformat(),
            "branch_policy": self.branch_policy,
            "validation": self.validation,
            "test": self.test,
        }


def _strings(value: Any) -> tuple[str, ...]:
    if isinstance(value, str) or not isinstance(value, Iterable):
        raise ValueError("must be a list of strings")
    items = list(value)
    if not all(isinstance(item, str) and item for item in items):
        raise ValueError("must be a list of non-empty strings")
    return tuple(sorted(set(items)))


def _states(value: Any) -> tuple[str, ...]:
    states = _strings(value)
    unknown = [s for s in states if s not in {state.value for state in State}]
    if unknown or not states:
        raise ValueError(f"unknown or no tree states: {', '.join(unknown)}")
    return states


def _langs(value: Any) -> tuple[str, ...]:
    langs = _strings(value)
    bad = [lang for lang in langs if len(lang) > _LANG_MAX_LENGTH or not _LANG_CODE.fullmatch(lang)]
    if bad:
        raise ValueError(f"not language codes like en or pt-BR: {', '.join(bad)}")
    return langs


def _choice(choices: tuple[str, ...]) -> Any:
    def parse(value: Any) -> str:
        if value not in choices:
            raise ValueError(f"must be one of {', '.join(choices)}")
        return str(value)

    return parse


def _flag(value: Any) -> bool:
    if not isinstance(value, bool):
        raise ValueError("must be true or false")
    return value


def _fraction(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 1:
        raise ValueError("must be a number from 0 to 1")
    return float(value)


def _max_labels(value: Any) -> tuple[tuple[str, float], ...]:
    if not isinstance(value, Mapping):
        raise ValueError("must be an object of label name to highest mean kept")
    unknown = sorted(name for name in value if name not in CATALOGUE)
    if unknown:
        raise ValueError(f"unknown labels: {', '.join(map(str, unknown))}")
    return tuple(sorted((name, _fraction(limit)) for name, limit in value.items()))


def _moment(value: Any, *, end_of_day: bool) -> datetime:
    """An ISO date or datetime, in UTC when it names no zone. A bare date for `until`
    means the end of that day, since "until 2024-01-31" includes the 31st."""
    try:
        return _parse_moment(value, end_of_day=end_of_day)
    except (TypeError, ValueError, OverflowError):
        # Python's own words ("Invalid isoformat string") mean nothing to a moderator, and
        # the day after 9999-12-31 overflows.
        raise ValueError(problems.ISO_DATE) from None


def _parse_moment(value: Any, *, end_of_day: bool) -> datetime:
    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, date):
        day = value + timedelta(days=1) if end_of_day else value
        return datetime.combine(day, time(), tzinfo=UTC)
    elif isinstance(value, str):
        text = value.strip()
        if len(text) == 10:  # YYYY-MM-DD
            return _parse_moment(date.fromisoformat(text), end_of_day=end_of_day)
        moment = datetime.fromisoformat(text)
    else:
        raise TypeError("not a date")
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


_PARSERS: dict[str, Any] = {
    "states": _states,
    "langs": _langs,
    "review": _choice(REVIEW_CHOICES),
    "include_deleted": _flag,
    "include_synthetic": _flag,
    "min_agreement": _fraction,
    "max_labels": _max_labels,
    "since": lambda value: _moment(value, end_of_day=False),
    "until": lambda value: _moment(value, end_of_day=True),
    "branch_policy": _choice(BRANCH_POLICIES),
    "validation": _fraction,
    "test": _fraction,
}


def _cross_checks(values: Mapping[str, Any]) -> dict[str, list[str]]:
    errors: dict[str, list[str]] = {}
    validation = values.get("validation", ExportOptions.validation)
    test = values.get("test", ExportOptions.test)
    if validation + test >= 1:
        errors["validation"] = ["validation and test together must leave some trees to train on"]
    since, until = values.get("since"), values.get("until")
    if since is not None and until is not None and since >= until:
        errors["until"] = ["must be later than since"]
    return errors
