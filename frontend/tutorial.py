"""The onboarding tutorial: example tasks with known good answers and feedback.

Each step is a small task like the real ones. A step is passed when the answer shows the
point it teaches; otherwise the feedback says what to look at and the volunteer tries again.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _


@dataclass(frozen=True)
class Turn:
    role: str
    text: Promise


@dataclass(frozen=True)
class Step:
    kind: str  # "label", "rank" or "write"
    title: Promise
    explanation: Promise
    conversation: tuple[Turn, ...]
    # The answer is a mapping of the form's fields; check returns feedback, or "" when right.
    check: Callable[[Mapping[str, str]], str]
    praise: Promise
    replies: tuple[Turn, ...] = field(default_factory=tuple)
    example: Promise | None = None


def _check_spam(answer: Mapping[str, str]) -> str:
    if answer.get("spam") != "1":
        return str(
            _(
                "Look again: the message advertises watches and asks nothing. That is spam, "
                "so the answer to “Is this spam?” is Yes."
            )
        )
    return ""


def _check_ranking(answer: Mapping[str, str]) -> str:
    order = [answer.get(f"position-{i}", "") for i in range(3)]
    if sorted(order) != ["1", "2", "3"]:
        return str(_("Give each reply a different place: 1, 2 and 3."))
    wrong, best, _short = order  # the replies in the order STEPS[1] shows them
    if wrong != "3":
        return str(
            _(
                "One reply is wrong: spiders have eight legs, not six. A wrong answer goes "
                "last, however confident it sounds."
            )
        )
    if best != "1":
        return str(
            _(
                "Both remaining replies are right, but the first one also explains why and "
                "adds something useful. Put the more helpful reply first."
            )
        )
    return ""


def _check_reply(answer: Mapping[str, str]) -> str:
    reply = answer.get("text", "").strip()
    if len(reply) < 60:
        return str(
            _(
                "A good reply answers fully: say what a haiku is, how it is built (three lines "
                "of five, seven and five syllables) and, ideally, give an example."
            )
        )
    if "5" not in reply and "five" not in reply.lower() and "fünf" not in reply.lower():
        return str(_("Almost: mention the pattern of the lines (five, seven, five syllables)."))
    return ""


STEPS: tuple[Step, ...] = (
    Step(
        kind="label",
        title=_("Review a prompt"),
        explanation=_(
            "Reviews decide which messages enter the dataset. Answer the two required "
            "questions honestly: is it spam, and is it in the wrong language?"
        ),
        conversation=(
            Turn("prompter", _("BUY CHEAP WATCHES!!! best prices www.example.com/watches")),
        ),
        check=_check_spam,
        praise=_("Right: this is spam, and your review helps keep it out of the data."),
    ),
    Step(
        kind="rank",
        title=_("Rank replies"),
        explanation=_(
            "Put the replies in order, best first. Correctness comes before style; then "
            "prefer the reply that helps more."
        ),
        conversation=(Turn("prompter", _("How many legs does a spider have?")),),
        replies=(
            Turn("assistant", _("Spiders have six legs, like all insects.")),
            Turn(
                "assistant",
                _(
                    "A spider has eight legs. Spiders are arachnids, not insects (which have "
                    "six), and they also have two small appendages near the mouth called "
                    "pedipalps, which are not legs."
                ),
            ),
            Turn("assistant", _("Eight.")),
        ),
        check=_check_ranking,
        praise=_("Well ranked: the wrong reply last, the most helpful correct one first."),
    ),
    Step(
        kind="write",
        title=_("Reply as the assistant"),
        explanation=_(
            "Write the reply you would want from an excellent assistant: correct, complete, "
            "friendly and to the point. Markdown is allowed."
        ),
        conversation=(Turn("prompter", _("Can you explain what a haiku is?")),),
        check=_check_reply,
        praise=_("Good reply. Compare it with ours below; there are many good answers."),
        example=_(
            "A haiku is a short Japanese poem of three lines with five, seven and five "
            "syllables. It usually captures a moment in nature or a season, for example:\n\n"
            "> An old silent pond  \n> A frog jumps into the pond—  \n> Splash! Silence again."
        ),
    ),
)
