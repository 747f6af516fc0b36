"""The demo's content: handwritten conversation trees and texts, written for Chorus.

`backend.core.demo` turns them into users, tasks and trees; nothing here touches the
database.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from backend.trees.rules import State

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
