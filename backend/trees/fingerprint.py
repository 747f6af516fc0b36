"""Near-duplicate prompts: a signature to find candidates with an index, and the rule that
decides. Pure (no Django import).

PostgreSQL's pg_trgm would do the candidate search, but the embedded PostgreSQL
(`pgserver`) ships without contrib extensions, so Chorus computes its own MinHash
signature over character trigrams of the normalised text (lower case, punctuation and
spacing folded) and stores it as LSH band keys: two prompts whose trigram sets have a
Jaccard similarity s share at least one band with probability 1 - (1 - s^4)^20 (0.94 at
s = 0.6, 0.997 at 0.7, 0.002 at 0.1). A GIN index on the keys (an array overlap, core
PostgreSQL) turns "prompts sharing a band" into one indexed lookup; the language is mixed
into every key, so the lookup is per language without a second column.

A candidate is a near-duplicate when `is_near_duplicate` says so:
- the normalised texts are equal, or
- their trigram Jaccard similarity is at least SIMILARITY and no content word of one was
  swapped for a different content word in the other ("bake bread" vs "bake a cake", "health
  benefits" vs "health risks", "2+2" vs "3+3" differ in what is asked). Added or dropped
  words ("the capital city of France"), function words ("can"/"could", "that"/"which"),
  typos and inflections ("Frankreich"/"Frankreichs") do not count as swaps. Long prompts
  (8 content words or more) tolerate one swap per 8 content words.
Synonyms ("film"/"movie") are beyond a lexical rule: such rephrasings are not caught.
"""

from __future__ import annotations

import hashlib
import random
import re
import unicodedata
from difflib import SequenceMatcher

SIMILARITY = 0.6
ROWS_PER_BAND = 4
BANDS = 20
# Changing the scheme changes every key: bump the version and re-run `fingerprint_prompts`.
VERSION = 1

_MASK = (1 << 64) - 1
_rng = random.Random(20261201)  # fixed: the keys are stored, they must never change
_PERMUTATIONS = [
    (_rng.getrandbits(64) | 1, _rng.getrandbits(64)) for _ in range(ROWS_PER_BAND * BANDS)
]

_NUMBER_WORDS = {
    word: str(value)
    for words, value in (
        (("zero", "null"), 0), (("one", "eins", "ein", "eine"), 1), (("two", "zwei"), 2),
        (("three", "drei"), 3), (("four", "vier"), 4), (("five", "fünf"), 5),
        (("six", "sechs"), 6), (("seven", "sieben"), 7), (("eight", "acht"), 8),
        (("nine", "neun"), 9), (("ten", "zehn"), 10), (("eleven", "elf"), 11),
        (("twelve", "zwölf"), 12),
    )
    for word in words
}  # fmt: skip

# Words that carry the grammar, not the question (English, German, Spanish, French).
STOPWORDS = frozenset(
    """
    a an the and or but if whether that which who whom whose what when where why how is are
    was were be been being am do does did done doing have has had can could would should
    shall will may might must i me my mine you your yours we us our he him his she her it its
    they them their this these those to of in on at by for with from about into over under
    as than then so too very just also please some any all more most much many s t
    der die das den dem des ein eine einen einem einer eines und oder aber wenn ob dass
    welche welcher welches wer wen wem wessen was wann wo warum wie ist sind war waren sein
    bin bist seid habe hast hat haben hatte kann kannst können könnte würde würdest sollte
    soll wird werden ich mich mir mein meine du dich dir dein deine wir uns unser er ihn ihm
    sie ihr es man zu von im in an am auf bei mit für aus über unter als dann so sehr auch
    bitte mal doch noch nur etwas alle viele mehr
    el la los las un una unos unas y o pero si que qué cuál quién cómo cuándo dónde por para
    con de del en es son ser está están puedo puedes mi mis tu tus
    le les une des et ou mais si que qui quoi comment quand où pourquoi est sont être je tu
    il elle nous vous ils elles mon ma mes ton ta tes du au aux pour avec dans sur par
    """.split()  # noqa: SIM905 - a word list reads better as text
)


def normalise(text: str) -> str:
    """Case, accents' encodings, punctuation and spacing folded: what a reader compares."""
    text = unicodedata.normalize("NFKC", text).casefold()
    return " ".join(re.sub(r"[\W_]+", " ", text).split())


def _words(normalised: str) -> list[str]:
    return [_NUMBER_WORDS.get(word, word) for word in normalised.split()]


def trigrams(normalised: str) -> set[str]:
    padded = f" {' '.join(_words(normalised))} "
    return {padded[i : i + 3] for i in range(max(1, len(padded) - 2))}


def _stable_hash(value: str) -> int:
    return int.from_bytes(hashlib.blake2b(value.encode(), digest_size=8).digest(), "little")


def band_keys(text: str, *, lang: str) -> list[int]:
    """The LSH band keys of a text in a language: signed 64-bit integers (bigint)."""
    hashes = [_stable_hash(gram) for gram in trigrams(normalise(text))]
    signature = [min(((a * h + b) & _MASK) >> 32 for h in hashes) for a, b in _PERMUTATIONS]
    keys = []
    for band in range(BANDS):
        rows = signature[band * ROWS_PER_BAND : (band + 1) * ROWS_PER_BAND]
        key = _stable_hash(f"{VERSION}:{lang}:{band}:{':'.join(map(str, rows))}")
        keys.append(key - (1 << 64) if key >= 1 << 63 else key)
    return keys


def similarity(a: str, b: str) -> float:
    """Jaccard similarity of the normalised texts' trigram sets, 0 to 1."""
    left, right = trigrams(normalise(a)), trigrams(normalise(b))
    return len(left & right) / len(left | right)


def _alike(a: str, b: str) -> bool:
    """The same word up to a typo or an ending (Frankreich/Frankreichs, recieve/receive)."""
    if a == b:
        return True
    if len(a) < 4 or len(b) < 4 or a.isdigit() or b.isdigit():
        return False
    return SequenceMatcher(None, a, b).ratio() >= 0.8


def _unmatched(words: list[str], others: list[str]) -> list[str]:
    return [w for w in words if w not in STOPWORDS and not any(_alike(w, o) for o in others)]


def is_near_duplicate(a: str, b: str) -> bool:
    """Whether prompt `a` asks what prompt `b` asks, up to small edits (module docstring)."""
    left, right = normalise(a), normalise(b)
    if left == right:
        return True
    if similarity(a, b) < SIMILARITY:
        return False
    left_words, right_words = _words(left), _words(right)
    swaps = min(len(_unmatched(left_words, right_words)), len(_unmatched(right_words, left_words)))
    content = max(
        sum(w not in STOPWORDS for w in left_words), sum(w not in STOPWORDS for w in right_words)
    )
    return swaps <= content // 8
