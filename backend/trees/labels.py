"""The label catalogue (after OpenAssistant's) and which labels each review task offers."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from backend.core import errors as problems


class LabelKind(StrEnum):
    YES_NO = "yes_no"  # 0 (no) or 1 (yes)
    FLAG = "flag"  # 0 (absent) or 1 (present)
    SCALE = "scale"  # 0 to 1 on a five-point scale (0, .25, .5, .75, 1)


@dataclass(frozen=True)
class Label:
    name: str
    kind: LabelKind
    question: str


CATALOGUE: dict[str, Label] = {
    label.name: label
    for label in (
        Label("spam", LabelKind.YES_NO, "Is the message spam (not a genuine attempt)?"),
        Label("fails_task", LabelKind.YES_NO, "Does the reply fail to do what was asked?"),
        Label("lang_mismatch", LabelKind.FLAG, "Is it written in a language other than asked?"),
        Label("pii", LabelKind.FLAG, "Does it contain personal data (names, addresses, ...)?"),
        Label("not_appropriate", LabelKind.FLAG, "Is it inappropriate for a customer assistant?"),
        Label("hate_speech", LabelKind.FLAG, "Does it contain hate speech?"),
        Label("sexual_content", LabelKind.FLAG, "Does it contain sexual content?"),
        Label("moral_judgement", LabelKind.FLAG, "Does it pass moral judgement?"),
        Label("political_content", LabelKind.FLAG, "Does it express political views?"),
        Label("quality", LabelKind.SCALE, "Quality, from low to high."),
        Label("toxicity", LabelKind.SCALE, "Toxicity, from polite to rude."),
        Label("humor", LabelKind.SCALE, "Humour, from serious to funny."),
        Label("helpfulness", LabelKind.SCALE, "Helpfulness, from unhelpful to helpful."),
        Label("creativity", LabelKind.SCALE, "Creativity, from ordinary to creative."),
        Label("violence", LabelKind.SCALE, "Violence, from harmless to violent."),
    )
}

# The acceptance rule reads these two, so every review must answer them.
MANDATORY = ("spam", "lang_mismatch")

_COMMON = (
    "spam",
    "lang_mismatch",
    "pii",
    "not_appropriate",
    "hate_speech",
    "sexual_content",
    "moral_judgement",
    "political_content",
    "quality",
    "toxicity",
    "humor",
    "creativity",
    "violence",
)

OFFERED: dict[str, tuple[str, ...]] = {
    "label_initial_prompt": _COMMON,
    "label_prompter_reply": _COMMON,
    "label_assistant_reply": (*_COMMON, "fails_task", "helpfulness"),
}


def validate_values(task_type: str, values: object) -> dict[str, list[str]]:
    """Field errors for a review's label values ({} when they are valid)."""
    if not isinstance(values, dict) or not values:
        return {"labels": ["Give the labels as an object of name: value."]}
    offered = OFFERED[task_type]
    errors: dict[str, list[str]] = {}
    for name, value in values.items():
        field = f"labels.{name}"
        if name not in offered:
            errors[field] = [f"Unknown label for this task; offered: {', '.join(offered)}."]
        elif isinstance(value, bool) or not isinstance(value, int | float):
            errors[field] = [problems.NUMBER]
        elif not 0.0 <= float(value) <= 1.0:
            errors[field] = [problems.between(0, 1)]
        elif CATALOGUE[name].kind != LabelKind.SCALE and float(value) not in (0.0, 1.0):
            errors[field] = ["Must be 0 or 1."]
    for name in MANDATORY:
        if name not in values:
            errors[f"labels.{name}"] = ["This label is required."]
    return errors
