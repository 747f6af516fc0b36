"""Open work of every task type in one language, built through the task services.

Three seed volunteers (ann, bea, cem) write and review so that a newcomer finds, in `lang`:
a first prompt to review, a prompt to answer as the assistant, an assistant reply to
review, an assistant reply to answer as the user, a user reply to review, and, in a second
(imported) tree, assistant replies and user replies to rank. Room for a new prompt exists
too. The settings make trees small and quick to decide (one review accepts a message).
"""

from __future__ import annotations

from dataclasses import dataclass

from django.utils import timezone

from backend.accounts.models import User
from backend.accounts.services import create_user
from backend.core.demo import Crowd, export_line
from backend.core.demo_content import DemoTree, say
from backend.trees import services as trees
from backend.trees.importing import import_oasst
from backend.trees.models import Message, MessageTree
from backend.trees.rules import State

QUICK_TREES = {
    "reviews_per_message": 1,
    "acceptance_threshold": 0.6,
    "max_active_trees": 3,
    "max_prompts_in_review": 10,
    "max_prompts_in_lottery": 20,
    "max_depth": 4,
    "max_children_prompter": 3,
    "max_children_assistant": 2,
    "goal_tree_size": 50,
    "rankings_per_parent": 1,
    "rank_prompter_replies": True,
}

TEXTS = {
    "en": {
        "prompt": "How do I keep basil alive on a windowsill?",
        "answer": "Give it at least six hours of sun, water when the top soil is dry, "
        "and pinch off flower buds so it keeps making leaves.",
        "other_answer": "Basil likes warmth: keep it away from cold glass at night.",
        "follow_up": "What if my window faces north?",
        "second_prompt": "Explain what a prime number is to a ten-year-old.",
        "rank_prompt": "What should I pack for a day hike?",
        "rank_a": "Water, snacks, a rain jacket, sun cream, a map and a charged phone.",
        "rank_b": "Just go, you will be fine.",
        "rank_u1": "Thanks! How much water exactly?",
        "rank_u2": "And for a winter hike?",
    },
    "de": {
        "prompt": "Wie halte ich Basilikum auf der Fensterbank am Leben?",
        "answer": "Gib ihm mindestens sechs Stunden Sonne, gieße, wenn die obere Erde "
        "trocken ist, und knipse Blüten ab, damit es weiter Blätter bildet.",
        "other_answer": "Basilikum mag es warm: nachts nicht an kaltes Glas stellen.",
        "follow_up": "Und wenn mein Fenster nach Norden zeigt?",
        "second_prompt": "Erkläre einem Zehnjährigen, was eine Primzahl ist.",
        "rank_prompt": "Was sollte ich für eine Tageswanderung einpacken?",
        "rank_a": "Wasser, Proviant, eine Regenjacke, Sonnencreme, eine Karte und ein "
        "geladenes Handy.",
        "rank_b": "Geh einfach los, das passt schon.",
        "rank_u1": "Danke! Wie viel Wasser genau?",
        "rank_u2": "Und für eine Winterwanderung?",
    },
}


@dataclass
class OpenWork:
    users: dict[str, User]
    growing_root: Message
    ranking_tree: MessageTree


def build_open_work(lang: str = "en") -> OpenWork:
    t = TEXTS[lang]
    users = {
        name: create_user(username=f"{name}-{lang}", languages=[lang], accepted_terms_version=1)
        for name in ("ann", "bea", "cem")
    }
    crowd = Crowd(users)
    root = crowd.prompt("ann", t["prompt"], lang=lang)
    crowd.review("bea", root)
    crowd.ensure_growing(root)
    answer = crowd.reply("bea", root, t["answer"])
    crowd.review("cem", answer)
    crowd.reply("cem", root, t["other_answer"])  # left for review
    crowd.reply("ann", answer, t["follow_up"])  # left for review
    crowd.prompt("ann", t["second_prompt"], lang=lang)  # a first prompt in review

    tree = DemoTree(
        name=f"rank-{lang}",
        lang=lang,
        days_ago=1,
        root=say(
            "bea",
            t["rank_prompt"],
            say("ann", t["rank_a"], say("bea", t["rank_u1"]), say("cem", t["rank_u2"])),
            say("cem", t["rank_b"]),
        ),
        tree_state=State.BACKLOG_RANKING,
    )
    report = import_oasst(lines=[export_line(tree, users, now=timezone.now())], source="test")
    assert not report.errors, report.errors
    ranking_tree = MessageTree.objects.get(lang=lang, state=State.BACKLOG_RANKING)
    trees.advance_tree_by_id(tree_id=ranking_tree.id)
    ranking_tree.refresh_from_db()
    assert ranking_tree.state == State.RANKING, ranking_tree.state
    return OpenWork(users=users, growing_root=root, ranking_tree=ranking_tree)
