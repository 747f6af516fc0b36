"""Demo data for a local Chorus: a login for every role, an API key, and conversation trees
in every state, so a newcomer who runs `make run` has something to look at and to work on.

`seed_demo()` builds it the way real data comes about, as far as that goes:

- Trees that volunteers are still working on (initial review, growing, halted, aborted) are
  driven through the task services (`request_task` / `submit_task`) by the demo volunteers,
  with the tree limits of the settings; the moderator halts one with `halt_tree`.
- Finished and imported-looking trees (ready_for_export with ranks, backlog_ranking with
  unranked sibling replies, prompts waiting in the lottery) are OpenAssistant JSON lines
  built here and read by `backend.trees.importing.import_oasst`.
- The ranking tree is an imported backlog tree promoted by the tree rules
  (`advance_tree_by_id`) and ranked by a volunteer through a real task.
- ready_for_scoring and scoring_failed last only a moment in real life (scoring runs as
  soon as a tree is ready), so those two trees get their rankings and are then put in
  their state directly, without the scoring job; see `_hold_state`.

Every text is written for this demo. Re-running is safe: when the demo users exist the
command only prints the logins again. `make run` calls it on every start.

The API key: its plaintext is stored nowhere in the database (only its hash), so a copy is
kept in `var/demo-api-key.txt` (git-ignored, readable by its owner only; the folder is
CHORUS_VAR_DIR when set) to be printed again on later runs. Deleting the file loses
nothing but that copy.
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import Count
from django.utils import timezone

from backend.accounts.models import ApiClient, Role, User
from backend.accounts.services import create_api_client, create_user, hash_api_key, split_api_key
from backend.core.errors import ChorusError
from backend.tasks.models import Task, TaskType
from backend.tasks.services import request_task, submit_task
from backend.trees import rules
from backend.trees import services as trees
from backend.trees.importing import import_oasst
from backend.trees.models import Message, MessageTree, StateChange
from backend.trees.rules import State
from backend.trees.selectors import tree_facts

# Demo logins only: printed on every start, so never use them anywhere that matters.
DEMO_PASSWORD = "chorus-demo"  # noqa: S105
API_KEY_FILE = "demo-api-key.txt"
API_KEY_OWNER = "ada"
# Message ids of the imported trees are derived from this and the tree's name, so they are
# the same on every machine and a second import of the same tree is skipped.
ID_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "https://chorus.invalid/demo")


class DemoSeedError(RuntimeError):
    """The demo could not be built as planned (the message says where it went wrong)."""


@dataclass(frozen=True)
class DemoUser:
    username: str
    role: str
    languages: tuple[str, ...]
    display_name: str


DEMO_USERS = (
    DemoUser("ada", Role.VOLUNTEER, ("en",), "Ada"),
    DemoUser("ben", Role.VOLUNTEER, ("en",), "Ben"),
    DemoUser("chloe", Role.VOLUNTEER, ("en", "de"), "Chloé"),
    DemoUser("dieter", Role.VOLUNTEER, ("de", "en"), "Dieter"),
    DemoUser("mia", Role.MODERATOR, ("en", "de"), "Mia"),
    DemoUser("admin", Role.ADMIN, ("en", "de"), "Admin"),
)
DEMO_USERNAMES = tuple(u.username for u in DEMO_USERS)


# --- Handwritten trees for import -----------------------------------------------------------


@dataclass(frozen=True)
class Turn:
    """One message of a handwritten tree with the replies below it. The role follows from
    the depth: the root is a prompt, then assistant and prompter alternate."""

    author: str
    text: str
    replies: tuple[Turn, ...] = ()
    rank: int | None = None
    emojis: Mapping[str, int] = field(default_factory=dict)


def say(
    author: str,
    text: str,
    *replies: Turn,
    rank: int | None = None,
    emojis: Mapping[str, int] | None = None,
) -> Turn:
    return Turn(author, text.strip(), replies, rank, emojis or {})


@dataclass(frozen=True)
class DemoTree:
    name: str  # stable, seeds the message ids
    lang: str
    days_ago: float
    root: Turn
    tree_state: State | None = None  # as an export file would give it


BREAD = DemoTree(
    name="dense-bread",
    lang="en",
    days_ago=9,
    root=say(
        "ben",
        "My homemade bread keeps coming out dense and heavy. I follow the recipe, so what "
        "could I be doing wrong?",
        say(
            "chloe",
            """
Dense bread almost always comes down to one of four things:

1. **Under-proofing.** The dough should roughly double in the first rise, and the shaped loaf should look puffy before it goes into the oven. Recipe times assume a warm kitchen (about 24 °C); in a cool room it can take twice as long. Go by the dough, not the clock: press it with a floured finger, and if the dent springs back slowly and only partly, it is ready.
2. **Too little kneading.** Gluten is what traps the gas. Knead until the dough is smooth and stretches thin enough to let light through without tearing (the "windowpane test"), usually 8-10 minutes by hand.
3. **Too much flour.** Sticky dough tempts you to add flour while kneading, but every extra handful makes the crumb tighter. Use wet hands or a dough scraper instead.
4. **Tired yeast.** Check the date, and make sure the water is lukewarm (around 37 °C), not hot.

If you tell me your recipe and how long each rise takes, I can help narrow it down.
""",  # noqa: E501
            say(
                "ben",
                "Thanks! I use whole wheat flour. Does that change anything?",
                say(
                    "chloe",
                    """
Yes, quite a bit. The bran in whole wheat flour cuts through the gluten strands and soaks up more water, so whole wheat loaves are naturally denser than white ones. A few things help:

- Add a little more water (5-10 % more). The dough should feel softer than a white-flour dough.
- Let the flour soak in the water for 20-30 minutes before adding yeast and salt (an "autolyse"). The bran softens and kneading gets easier.
- Start with half whole wheat and half bread flour; the stronger white flour gives the loaf more lift.

Even when everything goes right, expect a slightly closer crumb. That is part of whole wheat's charm.
""",  # noqa: E501
                ),
            ),
            rank=0,
            emojis={"+1": 3, "heart_eyes": 1},
        ),
        say(
            "mia",
            "The most common cause is not letting the dough rise long enough. Recipes give "
            "times for a warm kitchen, so in a cooler room the dough may need much longer: "
            "wait until it has clearly doubled in size. It also helps to knead a little "
            "longer and not to add extra flour when the dough feels sticky.",
            rank=1,
            emojis={"+1": 1},
        ),
        say(
            "dieter",
            "Try adding more yeast. Twice the amount usually makes bread much lighter.",
            rank=2,
            emojis={"-1": 2},
        ),
    ),
)

PYTHON_LISTS = DemoTree(
    name="python-append-extend",
    lang="en",
    days_ago=7,
    root=say(
        "ada",
        "What's the difference between append() and extend() on a Python list?",
        say(
            "dieter",
            """
`append()` adds its argument as **one** new element; `extend()` takes an iterable and adds **each of its items**.

```python
a = [1, 2]
a.append([3, 4])
print(a)  # [1, 2, [3, 4]]  -> three elements, the last one is a list

b = [1, 2]
b.extend([3, 4])
print(b)  # [1, 2, 3, 4]    -> four elements
```

A common surprise: `extend()` accepts any iterable, strings included, so `b.extend("hi")` adds `'h'` and `'i'` separately. Both methods change the list in place and return `None`, so write `b.extend(x)`, not `b = b.extend(x)`.
""",  # noqa: E501
            say(
                "ada",
                "Makes sense. And how do I add an item at the front instead of the end?",
                say(
                    "dieter",
                    """
Use `insert()` with index 0:

```python
items = ["b", "c"]
items.insert(0, "a")
print(items)  # ['a', 'b', 'c']
```

`insert(i, x)` puts `x` before position `i`. Inserting at the front has to shift every other element along by one, so it gets slow for very long lists. If you add to the front a lot, `collections.deque` is fast at both ends:

```python
from collections import deque

queue = deque(["b", "c"])
queue.appendleft("a")
```
""",  # noqa: E501
                    emojis={"+1": 2},
                ),
            ),
            rank=0,
            emojis={"+1": 4, "100": 1},
        ),
        say(
            "ben",
            "append adds a single item to the end of the list, extend adds all the items of "
            "another list. For example, after x = [1, 2] and x.append(3), x is [1, 2, 3]; "
            "after x = [1, 2] and x.extend([3, 4]), x is [1, 2, 3, 4].",
            rank=1,
        ),
    ),
)

TIDES = DemoTree(
    name="two-tides",
    lang="en",
    days_ago=5,
    root=say(
        "chloe",
        "Why are there two high tides every day instead of one?",
        say(
            "mia",
            """
Because the Moon's gravity stretches the oceans into **two** bulges, on opposite sides of the Earth.

The Moon pulls hardest on the water facing it, a little less on the centre of the Earth, and least on the water on the far side. Seen from the Earth as a whole, the near-side water is pulled towards the Moon while the far-side water is, in effect, left behind. So the oceans bulge out on both sides.

The Earth turns underneath both bulges once a day, so most coasts get two high and two low tides. Because the Moon also moves along its orbit, the whole cycle takes about 24 hours and 50 minutes, which is why high tide comes roughly 50 minutes later each day.
""",  # noqa: E501
            say(
                "chloe",
                "Why are some high tides much higher than others?",
                say(
                    "mia",
                    """
That's the Sun joining in. The Sun raises tides too, a little under half as strong as the Moon's.

- At **new and full moon**, Sun, Moon and Earth line up and their bulges add up: higher high tides and lower low tides, called **spring tides** (nothing to do with the season).
- At **half moon**, the Sun pulls at right angles to the Moon and partly cancels it out: milder **neap tides**.

The pattern repeats about every two weeks. The shape of the coast matters as well: funnel-shaped bays such as the Bay of Fundy in Canada amplify the tide to more than 15 metres.
""",  # noqa: E501
                    emojis={"+1": 2},
                ),
            ),
            rank=0,
            emojis={"+1": 3},
        ),
        say(
            "ben",
            "The Moon's gravity pulls the ocean towards it, which makes a high tide on the side "
            "of the Earth facing the Moon. There is a second bulge on the opposite side "
            "because the Earth and the Moon both swing around their common centre of mass. "
            "As the Earth rotates through both bulges, you get two high tides a day.",
            rank=1,
        ),
        say(
            "dieter",
            "It's because of the Moon and the Sun: the Moon causes one high tide and the Sun "
            "causes the other.",
            rank=2,
            emojis={"-1": 3},
        ),
    ),
)

FRIDGE = DemoTree(
    name="kuehlschrank",
    lang="de",
    days_ago=6,
    root=say(
        "dieter",
        "Wie funktioniert eigentlich ein Kühlschrank?",
        say(
            "mia",
            """
Ein Kühlschrank erzeugt keine Kälte, er **pumpt Wärme** aus dem Innenraum nach draußen. Dafür kreist ein Kältemittel in einem geschlossenen Kreislauf:

1. **Verdampfen:** Im Inneren verdampft das flüssige Kältemittel bei niedrigem Druck. Verdampfen braucht Energie, und die holt es sich als Wärme aus dem Innenraum. Dadurch wird es drinnen kalt.
2. **Verdichten:** Der Kompressor saugt das Gas an und presst es zusammen. Dabei wird es heiß.
3. **Verflüssigen:** In den Rohren an der Rückseite gibt das heiße Gas seine Wärme an die Küchenluft ab und wird wieder flüssig.
4. **Entspannen:** An einer Engstelle (Drossel oder Kapillarrohr) fällt der Druck, das Kältemittel kühlt stark ab, und der Kreislauf beginnt von vorn.

Ein Thermostat schaltet den Kompressor ein und aus, damit die Temperatur ungefähr gleich bleibt.
""",  # noqa: E501
            say(
                "dieter",
                "Warum wird es dann hinter dem Kühlschrank so warm?",
                say(
                    "mia",
                    "Genau dort landet die Wärme, die aus dem Innenraum geholt wurde, und dazu "
                    "die Energie, die der Kompressor verbraucht. Ein Kühlschrank gibt deshalb "
                    "immer mehr Wärme ab, als er innen entzieht. Aus dem gleichen Grund kann "
                    "man eine Küche nicht kühlen, indem man die Kühlschranktür offen lässt: "
                    "Insgesamt wird der Raum dadurch sogar wärmer. Lass hinter dem Gerät ein "
                    "paar Zentimeter Platz, damit die warme Luft abziehen kann, dann arbeitet "
                    "er sparsamer.",
                ),
            ),
            rank=0,
            emojis={"+1": 2},
        ),
        say(
            "chloe",
            "Im Kühlschrank fließt ein Kältemittel durch Rohre. Es nimmt im Inneren Wärme "
            "auf, wenn es verdampft, und gibt sie hinten am Gerät wieder ab. Ein Kompressor "
            "pumpt das Mittel dabei immer weiter im Kreis.",
            rank=1,
        ),
    ),
)

PANCAKES = DemoTree(
    name="pfannkuchen",
    lang="de",
    days_ago=4,
    root=say(
        "chloe",
        "Hast du ein einfaches Rezept für Pfannkuchen, das auch ohne Küchenwaage klappt?",
        say(
            "dieter",
            """
Klar, mit einer normalen Tasse (etwa 250 ml) als Maß:

**Zutaten für etwa 6 Pfannkuchen**
- 1 Tasse Mehl
- 1 Tasse Milch
- 2 Eier
- 1 Prise Salz (für süße Pfannkuchen zusätzlich 1 EL Zucker)
- etwas Butter oder Öl für die Pfanne

**So geht's**
1. Mehl, Milch, Eier und Salz mit dem Schneebesen glatt rühren. Der Teig soll dickflüssig vom Löffel laufen; ist er zu fest, einen Schuss Milch dazugeben.
2. Den Teig 10 Minuten ruhen lassen.
3. Eine Pfanne bei mittlerer Hitze dünn mit Butter auspinseln, eine kleine Kelle Teig hineingeben und durch Schwenken verteilen.
4. Wenden, sobald die Oberseite nicht mehr flüssig ist und der Rand goldbraun wird, dann noch etwa eine Minute backen.

Dazu passen Apfelmus oder Zimt und Zucker, herzhaft auch Käse und Schinken.
""",  # noqa: E501
            rank=0,
            emojis={"+1": 2, "heart_eyes": 1},
        ),
        say(
            "mia",
            "Du brauchst 250 g Mehl, 500 ml Milch, 3 Eier und eine Prise Salz. Alles "
            "verrühren, kurz ruhen lassen und in einer heißen Pfanne mit etwas Fett "
            "portionsweise von beiden Seiten goldbraun backen.",
            rank=1,
        ),
    ),
)

HIKE = DemoTree(
    name="first-hut-hike",
    lang="en",
    days_ago=3,
    root=say(
        "ben",
        "I'm planning my first two-day hike, with a night in a mountain hut. What should I pack?",
        say(
            "chloe",
            """
Nice plan! The hut takes care of the heavy things (tent, stove, cooking), so you can pack light.

**Wear**
- Broken-in hiking boots and good socks (plus a spare pair)
- Layers: a base layer, a fleece or light down jacket, and a waterproof jacket. Mountain weather changes fast, even in summer.

**In the pack (30-40 litres is plenty)**
- 1.5-2 litres of water, and find out where you can refill
- Lunch and snacks for both days: nuts, dried fruit, cheese, bars
- A map or an offline map app, your phone and a power bank
- Headlamp, sunscreen, sunglasses, hat
- A small first-aid kit with blister plasters
- For the hut: a sleeping-bag liner (most huts require one), earplugs, light slippers, a small towel and a toothbrush
- Cash: many huts don't take cards

Book the hut ahead and tell someone your route. Enjoy it!
""",  # noqa: E501
        ),
        say(
            "dieter",
            "Pack as light as you can; every kilo counts on the second day. The essentials: "
            "rain jacket, warm layer, spare socks, water, snacks, map, headlamp, first-aid "
            "kit, sun protection and a sleeping-bag liner for the hut. Check the forecast the "
            "evening before and again in the morning, and turn back if the weather turns.",
        ),
        say(
            "mia",
            "Packing list: boots, rain jacket, fleece, water bottle, food, map, headlamp, "
            "first-aid kit, sleeping-bag liner, cash.",
        ),
    ),
)

VOCABULARY = DemoTree(
    name="vokabeln",
    lang="de",
    days_ago=2.5,
    root=say(
        "dieter",
        "Wie lerne ich am besten Vokabeln, ohne sie gleich wieder zu vergessen?",
        say(
            "chloe",
            """
Am meisten hilft **verteilte Wiederholung**: Du wiederholst ein Wort kurz bevor du es vergessen würdest, erst nach einem Tag, dann nach drei Tagen, nach einer Woche und so weiter. Karteikarten-Apps wie Anki planen das automatisch.

Dazu ein paar Tipps:
- Lerne Wörter im Zusammenhang, also in ganzen Sätzen statt einzeln.
- Sprich die Wörter laut aus und schreib eigene Beispielsätze.
- Lieber täglich 15 Minuten als einmal pro Woche zwei Stunden.
- Frag dich selbst ab, statt die Liste nur durchzulesen: Aktives Erinnern festigt das Gedächtnis.
""",  # noqa: E501
        ),
        say(
            "mia",
            "Schreib die Vokabeln auf Karteikarten und geh sie jeden Tag durch. Karten, die "
            "du sicher kannst, wandern in ein Fach, das du seltener wiederholst, und Karten, "
            "die du vergessen hast, zurück ins erste Fach. Das nennt man Lernkartei oder "
            "Leitner-System.",
        ),
    ),
)

# Imported unranked like the two above; promoted to `ranking` by the tree rules.
PHOTOSYNTHESIS = DemoTree(
    name="photosynthesis-for-kids",
    lang="en",
    days_ago=2,
    root=say(
        "chloe",
        "How would you explain photosynthesis to a seven-year-old?",
        say(
            "ben",
            "Plants are a bit like little kitchens. Their roots drink up water, and their "
            "leaves breathe in a gas from the air called carbon dioxide. Using the energy of "
            "sunlight, the plant mixes the water and the air together to cook its own food, "
            "a kind of sugar. And while it cooks, it breathes out oxygen, the air we need to "
            "breathe. So every green leaf in the sun is busy making lunch, and making air "
            "for us!",
        ),
        say(
            "dieter",
            "Photosynthesis is how plants make their food. They use sunlight, water and "
            "carbon dioxide to make sugar and oxygen. The green stuff in leaves, called "
            "chlorophyll, catches the light.",
        ),
        say(
            "mia",
            "You could say: \"Plants can't go to the shop, so they make their own food. "
            "Sunlight is their power, and water from the ground and air are the "
            "ingredients. The food they make is sugar, and what's left over is fresh air, "
            'oxygen, which is what we breathe." Then look at a leaf together: its green '
            "colour is what catches the sunlight.",
        ),
    ),
)

# Ranked in full here, then held in ready_for_scoring.
HAIKU = DemoTree(
    name="autumn-rain-haiku",
    lang="en",
    days_ago=1.5,
    root=say(
        "dieter",
        "Write a haiku about autumn rain.",
        say(
            "chloe", "Cold rain on the roof,\nthe last red leaves let go and\nride the gutter home"
        ),
        say("ben", "Grey autumn evening,\nrain taps its fingers on glass,\nthe kettle answers"),
        say("mia", "Autumn rain falling,\nleaves are falling from the trees,\neverything is wet"),
    ),
)

# Ranked in full here, then held in scoring_failed.
GUITAR = DemoTree(
    name="first-guitar",
    lang="en",
    days_ago=1.2,
    root=say(
        "ada",
        "I'm 35 and want to learn the guitar. Acoustic or electric, and how should I practise?",
        say(
            "ben",
            """
Either is fine: pick the one that sounds like the music you want to play, because that is what keeps you practising.

- **Electric** guitars have lighter strings and lower action, so they are easier on your fingertips at first. You also need a small amp or headphones.
- **Acoustic** guitars need nothing else and are great for singing along, but the first weeks hurt a bit more. Ask the shop to fit light strings.

For practice, 15-20 minutes every day beats two hours on Sunday. Start with a few open chords (G, C, D, E minor), change between them slowly with a metronome, and learn a simple song you love as soon as you can. Your fingertips toughen up within two or three weeks.
""",  # noqa: E501
        ),
        say(
            "dieter",
            "Start with an acoustic guitar; it's cheaper because you don't need an amplifier. "
            "Practise every day, learn the basic chords first and use free online lessons. "
            "After a few weeks it gets much easier.",
        ),
    ),
)

HOUSEPLANTS = DemoTree(
    name="dark-flat-houseplants",
    lang="en",
    days_ago=0.8,
    tree_state=State.PROMPT_LOTTERY_WAITING,
    root=say(
        "ben",
        "Which houseplants survive in a dark flat with only a north-facing window?",
    ),
)

WEATHER = DemoTree(
    name="wetter-klima",
    lang="de",
    days_ago=0.7,
    tree_state=State.PROMPT_LOTTERY_WAITING,
    root=say("dieter", "Was ist eigentlich der Unterschied zwischen Wetter und Klima?"),
)

IMPORTED_TREES = (
    BREAD,
    PYTHON_LISTS,
    TIDES,
    FRIDGE,
    PANCAKES,
    HIKE,
    VOCABULARY,
    PHOTOSYNTHESIS,
    HAIKU,
    GUITAR,
    HOUSEPLANTS,
    WEATHER,
)


def _message_id(tree: DemoTree, path: str) -> str:
    return str(uuid.uuid5(ID_NAMESPACE, f"{tree.name}/{path}"))


def _labels(role: str, rank: int | None, count: int) -> dict[str, dict[str, float]]:
    """Review means for an imported message: clean, with quality following the rank."""
    quality = {None: 0.75, 0: 0.85, 1: 0.65, 2: 0.4}.get(rank, 0.4)
    values = {"spam": 0.0, "lang_mismatch": 0.0, "pii": 0.0, "quality": quality}
    if role == "assistant":
        values["helpfulness"] = quality
    return {name: {"value": value, "count": count} for name, value in values.items()}


def export_line(tree: DemoTree, users: Mapping[str, User], *, now: datetime) -> str:
    """The tree as one line of an OpenAssistant trees export."""
    reviews = settings.CHORUS_TREE["reviews_per_message"]
    created = now - timedelta(days=tree.days_ago)
    step = iter(range(10_000))

    def node(turn: Turn, path: str, parent_id: str | None, depth: int) -> dict[str, Any]:
        message_id = _message_id(tree, path)
        role = "prompter" if depth % 2 == 0 else "assistant"
        return {
            "message_id": message_id,
            "parent_id": parent_id,
            "user_id": str(users[turn.author].id),
            "created_date": (created + timedelta(minutes=47 * next(step))).isoformat(),
            "text": turn.text,
            "role": role,
            "lang": tree.lang,
            "review_count": reviews,
            "review_result": True,
            "deleted": False,
            "rank": turn.rank,
            "synthetic": False,
            "model_name": None,
            "emojis": dict(turn.emojis),
            "labels": _labels(role, turn.rank, reviews),
            "replies": [
                node(reply, f"{path}.{i}", message_id, depth + 1)
                for i, reply in enumerate(turn.replies)
            ],
        }

    root = node(tree.root, "0", None, 0)
    record: dict[str, Any] = {"message_tree_id": root["message_id"], "prompt": root}
    if tree.tree_state is not None:
        record["tree_state"] = str(tree.tree_state)
    return json.dumps(record, ensure_ascii=False)


# --- Texts for the trees the demo volunteers grow through tasks -----------------------------

FRENCH_PROMPT = "Bonjour ! Quels sont les plus beaux endroits à visiter en Bretagne au printemps ?"

PARKING_PROMPT = (
    "My neighbour Tom Becker at 14 Elm Street keeps parking across my driveway. Write a "
    "note I can leave on his car."
)
PARKING_NOTE = """
Here's a friendly but clear note:

"Hi! I live next door. Your car was parked across my driveway today and I couldn't get out. Could you please leave the driveway free in future? Thanks a lot, and feel free to knock if you'd like to talk about it."
"""  # noqa: E501

COMPOST_PROMPT = "How do I start composting on a small balcony?"
COMPOST_WORMS = """
A balcony is enough for composting; you just need a closed system that doesn't smell. Two good options:

- **Worm bin:** a stackable plastic box with air holes, shredded cardboard as bedding and a few hundred composting worms. They eat fruit and vegetable scraps, coffee grounds and crushed eggshells and turn them into rich compost within a few months. Keep the bin out of direct sun and frost.
- **Bokashi bucket:** an airtight bucket in which scraps ferment with a special bran. It takes cooked food too, and after two weeks you dig the result into a planter or add it to a worm bin.

Either way, balance wet "greens" (scraps) with dry "browns" (cardboard, paper, dry leaves). If it starts to smell, add more browns.
"""  # noqa: E501
COMPOST_FOLLOW_UP = "The worm bin sounds fun. Won't the worms escape, or freeze in winter?"
COMPOST_BIN = (
    "Start small: get a lidded bin of about 40 litres, drill a few air holes and fill it "
    "with alternating layers of kitchen scraps and shredded newspaper or dry leaves. Stir it "
    "once a week so air gets in. On a balcony, keep the lid on so it doesn't attract flies."
)

RECURSION_PROMPT = "Can you explain what a recursive function is, with a simple example in Python?"

SKY_PROMPT = "Warum ist der Himmel blau, und warum ist er beim Sonnenuntergang rot?"
SKY_ANSWER = """
Sonnenlicht enthält alle Farben. Auf seinem Weg durch die Atmosphäre trifft es auf winzige Luftmoleküle, die das Licht in alle Richtungen streuen. Kurzwelliges blaues Licht wird dabei viel stärker gestreut als rotes (Rayleigh-Streuung). Deshalb erreicht uns blaues Licht aus allen Richtungen des Himmels, und er sieht blau aus.

Bei Sonnenuntergang steht die Sonne tief, und ihr Licht legt einen viel längeren Weg durch die Luft zurück. Unterwegs wird das meiste Blau zur Seite weggestreut, bevor es bei uns ankommt. Übrig bleiben vor allem Orange und Rot.
"""  # noqa: E501


# --- Driving the task services ------------------------------------------------------------


class Crowd:
    """The demo users doing tasks through the same services the API calls."""

    def __init__(self, users: Mapping[str, User]) -> None:
        self.users = users

    def prompt(self, author: str, text: str, *, lang: str) -> Message:
        task = request_task(user=self.users[author], task_type=TaskType.INITIAL_PROMPT, lang=lang)
        return self._write(author, task, text)

    def reply(self, author: str, parent: Message, text: str) -> Message:
        kind = TaskType.ASSISTANT_REPLY if parent.role == "prompter" else TaskType.PROMPTER_REPLY
        return self._write(author, self._lease(author, kind, parent), text)

    def review(self, reviewer: str, message: Message, **labels: float) -> None:
        if message.parent_id is None:
            kind = TaskType.LABEL_INITIAL_PROMPT
        elif message.role == "assistant":
            kind = TaskType.LABEL_ASSISTANT_REPLY
        else:
            kind = TaskType.LABEL_PROMPTER_REPLY
        task = self._lease(reviewer, kind, message)
        values = {"spam": 0.0, "lang_mismatch": 0.0, "quality": 0.75, **labels}
        self._submit(reviewer, task, {"labels": values})

    def review_fully(
        self, message: Message, reviewers: Sequence[str], count: int | None = None, **labels: float
    ) -> None:
        """Reviews from the first eligible reviewers until the tree's target (or `count`)."""
        tree = MessageTree.objects.get(pk=message.tree_id)
        needed = tree.reviews_needed if count is None else count
        for reviewer in self._others(message, reviewers, needed):
            self.review(reviewer, message, **labels)

    def rank(self, ranker: str, parent: Message, order: Sequence[Message]) -> None:
        task = self._lease(ranker, TaskType.RANK_ASSISTANT_REPLIES, parent)
        self._submit(ranker, task, {"ranking": [str(m.id) for m in order]})

    def ensure_growing(self, message: Message) -> None:
        """After its prompt is accepted a tree waits in the lottery until it is drawn; the
        draw runs on commit (at once when Celery is eager). Draw now if a worker has not yet."""
        tree = MessageTree.objects.get(pk=message.tree_id)
        if tree.state == State.PROMPT_LOTTERY_WAITING:
            trees.promote_from_lottery(lang=tree.lang)
            tree.refresh_from_db()
        if tree.state != State.GROWING:
            raise DemoSeedError(f"the demo tree {tree.id} is {tree.state}, expected growing")

    def _others(self, message: Message, candidates: Sequence[str], needed: int) -> list[str]:
        chosen = [name for name in candidates if self.users[name].pk != message.author_id]
        if len(chosen) < needed:
            raise DemoSeedError(
                f"{needed} reviews are needed per message but only {len(chosen)} demo users "
                "may review this one; lower CHORUS_REVIEWS_PER_MESSAGE for the demo"
            )
        return chosen[:needed]

    def _lease(self, username: str, kind: str, slot: Message) -> Task:
        task = request_task(user=self.users[username], task_type=kind, lang=slot.lang)
        if task.slot_id != slot.id:
            raise DemoSeedError(
                f"{username} asked for {kind} on message {slot.id} but was handed "
                f"{task.slot_id}; the demo expects a database with no other open trees"
            )
        return task

    def _write(self, author: str, task: Task, text: str) -> Message:
        result = self._submit(author, task, {"text": text.strip()})
        return Message.objects.get(pk=result)

    def _submit(self, username: str, task: Task, payload: dict[str, Any]) -> uuid.UUID:
        return submit_task(
            task_id=task.id, user=self.users[username], key=None, payload=payload
        ).result_id


def _grow_volunteer_trees(crowd: Crowd) -> None:
    """Trees that volunteers are working on, each built to its state before the next starts,
    so every task handed out is the one this script means (a language's open slots are all
    candidates for a task)."""
    en_reviewers = ("ben", "dieter", "mia", "chloe", "admin", "ada")

    # aborted_low_grade: a French prompt in the English queue; reviewers flag the language.
    french = crowd.prompt("chloe", FRENCH_PROMPT, lang="en")
    crowd.review_fully(french, en_reviewers, lang_mismatch=1.0, quality=0.5)

    # halted_by_moderator: the prompt names a real-looking person and address; it passes
    # review (personal data is flagged but is no reason to reject), and a moderator halts the
    # tree to look at it.
    parking = crowd.prompt("ben", PARKING_PROMPT, lang="en")
    crowd.review_fully(parking, ("chloe", "dieter", "mia"), pii=1.0, quality=0.5)
    crowd.ensure_growing(parking)
    note = crowd.reply("chloe", parking, PARKING_NOTE)
    crowd.review_fully(note, ("dieter", "mia", "ben", "admin"), quality=0.75)
    trees.halt_tree(tree_id=parking.tree_id, moderator=crowd.users["mia"])

    # growing: two answers and a follow-up that still waits for reviews; ada (the demo
    # volunteer with the API key) has done nothing here, so every kind of task is open to her.
    compost = crowd.prompt("chloe", COMPOST_PROMPT, lang="en")
    crowd.review_fully(compost, ("ben", "dieter", "mia"), quality=1.0)
    crowd.ensure_growing(compost)
    worms = crowd.reply("ben", compost, COMPOST_WORMS)
    crowd.review_fully(worms, ("chloe", "dieter", "mia"), quality=1.0, helpfulness=1.0)
    follow_up = crowd.reply("chloe", worms, COMPOST_FOLLOW_UP)
    # One review of the follow-up now; the rest are for whoever logs in. While it waits it
    # cannot be answered, so the next answer can only go to the prompt.
    reviews = MessageTree.objects.get(pk=compost.tree_id).reviews_needed
    crowd.review_fully(follow_up, ("dieter",), count=min(1, reviews - 1))
    hot_bin = crowd.reply("dieter", compost, COMPOST_BIN)
    crowd.review_fully(hot_bin, ("ben", "chloe", "mia"), quality=0.5, helpfulness=0.5)

    # initial_prompt_review: a fresh prompt with one of its reviews.
    recursion = crowd.prompt("dieter", RECURSION_PROMPT, lang="en")
    crowd.review_fully(recursion, ("chloe",), count=min(1, reviews - 1), quality=0.75)

    # growing, in German.
    if "de" in settings.CHORUS_LANGUAGES:
        de_reviewers = ("chloe", "mia", "admin", "dieter", "ben")
        sky = crowd.prompt("dieter", SKY_PROMPT, lang="de")
        crowd.review_fully(sky, de_reviewers, quality=1.0)
        crowd.ensure_growing(sky)
        answer = crowd.reply("chloe", sky, SKY_ANSWER)
        crowd.review_fully(answer, ("dieter", "mia", "admin", "ben"), helpfulness=1.0)


def _import_trees(users: Mapping[str, User]) -> None:
    now = timezone.now()
    report = import_oasst(
        lines=[export_line(tree, users, now=now) for tree in IMPORTED_TREES], source="demo data"
    )
    if report.errors:
        raise DemoSeedError("the demo trees did not import: " + "; ".join(report.errors))


def _root(tree: DemoTree) -> Message:
    return Message.objects.get(pk=_message_id(tree, "0"))


def _replies(tree: DemoTree, *indexes: int) -> list[Message]:
    """The root's replies by their position in the handwritten tree."""
    return [Message.objects.get(pk=_message_id(tree, f"0.{i}")) for i in indexes]


def _rank_imported_trees(crowd: Crowd) -> None:
    """One tree at a time in `ranking`, so each rank task goes to the tree meant."""
    # ready_for_scoring and scoring_failed: ranked in full, then held (see `_hold_state`).
    chloe, ben, mia = _replies(HAIKU, 0, 1, 2)
    _rank_fully(
        crowd,
        HAIKU,
        [("ada", [chloe, ben, mia]), ("dieter", [ben, chloe, mia]), ("admin", [chloe, ben, mia])],
    )
    _hold_state(HAIKU, State.READY_FOR_SCORING)

    ben, dieter = _replies(GUITAR, 0, 1)
    _rank_fully(
        crowd,
        GUITAR,
        [("chloe", [ben, dieter]), ("mia", [ben, dieter]), ("admin", [dieter, ben])],
    )
    _hold_state(GUITAR, State.READY_FOR_SCORING)
    # Demo data: a real tree lands here only when the scoring job raises; this one shows
    # what a moderator sees then. The reconcile job retries it, and it would then succeed.
    _hold_state(GUITAR, State.SCORING_FAILED)

    # ranking: the tree rules promote a backlog tree while the language has ranking room;
    # one volunteer has ranked its replies, the others are open (ada may rank them).
    trees.advance_tree_by_id(tree_id=_root(PHOTOSYNTHESIS).tree_id)
    _expect_state(PHOTOSYNTHESIS, State.RANKING)
    ben, dieter, mia = _replies(PHOTOSYNTHESIS, 0, 1, 2)
    crowd.rank("chloe", _root(PHOTOSYNTHESIS), [mia, ben, dieter])


def _rank_fully(
    crowd: Crowd, tree: DemoTree, rankings: Sequence[tuple[str, Sequence[Message]]]
) -> None:
    """Rank the root's replies until the tree's target. All but the last ranking go through
    tasks; the last one would finish ranking and start the scoring job at once, so it is
    recorded with the same service, without a task, and the tree is left in ranking."""
    root = _root(tree)
    trees.advance_tree_by_id(tree_id=root.tree_id)
    _expect_state(tree, State.RANKING)
    needed = MessageTree.objects.get(pk=root.tree_id).rankings_needed
    if len(rankings) < needed:
        raise DemoSeedError(f"{tree.name} needs {needed} rankings, the demo has {len(rankings)}")
    *by_task, (last_ranker, last_order) = rankings[:needed]
    for ranker, order in by_task:
        crowd.rank(ranker, root, order)
    with transaction.atomic():
        trees.lock_tree(root.tree_id)
        trees.record_ranking(
            parent=root,
            user=crowd.users[last_ranker],
            ordered_ids=[m.id for m in last_order],
            not_rankable=False,
            task_id=None,  # type: ignore[arg-type]  # no task: see the docstring
        )


def _expect_state(tree: DemoTree, state: State) -> None:
    actual = MessageTree.objects.get(pk=_root(tree).tree_id).state
    if actual != state:
        raise DemoSeedError(f"the demo tree {tree.name} is {actual}, expected {state}")


@transaction.atomic
def _hold_state(tree: DemoTree, target: State) -> None:
    """Demo data only: move the tree as `services.set_state` would (history included) but
    without starting the scoring job, which would move it on at once. The tree rules must
    allow the step, and for ready_for_scoring they must also choose it from the tree's facts."""
    row = trees.lock_tree(_root(tree).tree_id)
    source = State(row.state)
    if not rules.is_legal_transition(source, target):
        raise DemoSeedError(f"{tree.name}: {source} -> {target} is not a legal transition")
    if target == State.READY_FOR_SCORING and rules.next_state(tree_facts(row)) != target:
        raise DemoSeedError(f"{tree.name}: the rules do not take it to {target} yet")
    row.state = target
    row.state_changed_at = timezone.now()
    row.save(update_fields=["state", "state_changed_at"])
    StateChange.objects.create(
        tree=row, source=source, target=target, created_at=row.state_changed_at
    )


# --- Users and the API key ------------------------------------------------------------------


def var_dir() -> Path:
    """Local, git-ignored files: CHORUS_VAR_DIR, else var/ in the project."""
    return Path(os.environ.get("CHORUS_VAR_DIR") or Path(settings.BASE_DIR) / "var")


def api_key_path() -> Path:
    return var_dir() / API_KEY_FILE


@transaction.atomic
def _create_users() -> tuple[dict[str, User], str]:
    users = {
        spec.username: create_user(
            username=spec.username,
            password=DEMO_PASSWORD,
            display_name=spec.display_name,
            languages=list(spec.languages),
            role=spec.role,
            accepted_terms_version=settings.CHORUS_TERMS_VERSION,
        )
        for spec in DEMO_USERS
    }
    _, key = create_api_client(owner=users[API_KEY_OWNER], name="demo key (seed_demo)")
    return users, key


def _save_key(key: str) -> str | None:
    """Keep a local copy of the key for later runs; returns a note if that failed."""
    path = api_key_path()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "w") as file:
            file.write(key + "\n")
    except OSError as exc:
        return f"could not keep a copy in {path} ({exc.strerror or exc}): note it down now"
    return None


def _saved_key() -> tuple[str | None, str]:
    """The demo key from the local copy if it still works, else None and why not."""
    path = api_key_path()
    try:
        key = path.read_text().strip()
    except OSError:
        return None, (
            f"it was printed when the demo was created; only its hash is stored, and the "
            f"local copy {path} is gone"
        )
    parts = split_api_key(key)
    client = (
        ApiClient.objects.filter(key_prefix=parts[0], revoked_at=None).first() if parts else None
    )
    if (
        client is None
        or client.key_hash != hash_api_key(key)
        or client.owner.username != API_KEY_OWNER
    ):
        return None, f"the key in {path} is not a live key of {API_KEY_OWNER} in this database"
    return key, f"kept in {path}"


# --- The service ------------------------------------------------------------------------------


@dataclass
class DemoReport:
    # "seeded" now, "present" from an earlier run, or "skipped" (a database in use).
    outcome: str
    api_key: str | None = None
    api_key_note: str = ""
    skipped_reason: str = ""
    trees_by_state: dict[str, int] = field(default_factory=dict)


def _database_in_use() -> str:
    """Why this database is not a fresh one (empty when it is). Imported authors don't count."""
    others = User.objects.filter(is_imported=False).exclude(username__in=DEMO_USERNAMES)
    if others.exists():
        return f"it has {others.count()} user account(s) besides the demo users"
    if MessageTree.objects.exists():
        return f"it holds {MessageTree.objects.count()} conversation tree(s) already"
    return ""


def trees_by_state() -> dict[str, int]:
    rows = MessageTree.objects.values("state").annotate(n=Count("id")).order_by()
    counts = {row["state"]: row["n"] for row in rows}
    return {state.value: counts.get(state.value, 0) for state in State}


def seed_demo() -> DemoReport:
    """Create the demo users, key and trees in a fresh database; see the module docstring.

    Safe to call on every start: once the demo users exist it changes nothing. A database
    that has other accounts or trees is left alone (the report says why), so demo logins
    with a published password never land in a database in real use.
    """
    present = set(
        User.objects.filter(username__in=DEMO_USERNAMES).values_list("username", flat=True)
    )
    if present == set(DEMO_USERNAMES):
        key, note = _saved_key()
        return DemoReport("present", key, note, trees_by_state=trees_by_state())
    reason = _database_in_use() or (
        f"some demo user names are taken ({', '.join(sorted(present))})" if present else ""
    )
    if reason:
        return DemoReport("skipped", skipped_reason=reason, trees_by_state=trees_by_state())

    users, key = _create_users()
    note = _save_key(key) or f"kept in {api_key_path()}"
    crowd = Crowd(users)
    try:
        _grow_volunteer_trees(crowd)
        _import_trees(users)
        _rank_imported_trees(crowd)
    except ChorusError as exc:  # a service refused a step of the script
        raise DemoSeedError(f"{type(exc).__name__}: {exc.message}") from exc
    return DemoReport("seeded", key, note, trees_by_state=trees_by_state())


# --- The printout ---------------------------------------------------------------------------


def summary_lines(report: DemoReport, *, base_url: str) -> Iterator[str]:
    base_url = base_url.rstrip("/")
    if report.outcome == "skipped":
        yield f"Demo data: not added, because this database is in use: {report.skipped_reason}."
        yield "(seed_demo only fills a fresh database.)"
    else:
        yield "Demo data: " + (
            "created." if report.outcome == "seeded" else "already there, nothing changed."
        )
        yield ""
        yield f"  Chorus   {base_url}/"
        yield f"  API docs {base_url}/api/docs/"
        yield ""
        yield f"  Demo logins (local demo only; every password is {DEMO_PASSWORD!r}):"
        yield f"    {'username':<10}{'role':<11}{'languages':<11}password"
        for spec in DEMO_USERS:
            languages = ",".join(spec.languages)
            yield f"    {spec.username:<10}{spec.role:<11}{languages:<11}{DEMO_PASSWORD}"
        yield ""
        if report.api_key:
            yield f"  API key of {API_KEY_OWNER} ({report.api_key_note}):"
            yield f"    {report.api_key}"
            yield "  Try it:"
            yield (
                f'    curl -H "Authorization: Bearer {report.api_key}" '
                f'"{base_url}/api/v1/tasks/availability/?lang=en"'
            )
        else:
            yield f"  API key of {API_KEY_OWNER}: not shown ({report.api_key_note})."
    yield ""
    yield "  Trees by state:"
    for state, count in report.trees_by_state.items():
        yield f"    {state:<24}{count:>4}"
    yield f"    {'total':<24}{sum(report.trees_by_state.values()):>4}"
