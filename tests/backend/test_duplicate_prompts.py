"""Near-duplicate first prompts: the rule on real examples (no database), then the refusal
through the task API, and the lookup's use of its index."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from hypothesis import given
from hypothesis import strategies as st

from backend.accounts.services import create_user
from backend.tasks.models import Task, TaskStatus
from backend.trees import fingerprint
from backend.trees.models import Message, MessageTree, PromptKey
from backend.trees.rules import State
from backend.trees.selectors import find_duplicate_prompt
from backend.trees.services import create_tree, fingerprint_prompts, store_prompt_keys

NEAR_DUPLICATES = [
    ("How do I bake bread at home?", "how do i bake bread at home"),
    ("How do I bake bread at home?", "How do I bake bread at home???"),
    ("How do I bake bread at home?", "How can I bake bread at home?"),
    ("What is the capital of France?", "What's the capital of France??"),
    ("What is the capital of France?", "what is the capital city of France"),
    (
        "Explain quantum entanglement to a ten year old.",
        "Explain quantum entanglement to a 10 year old child.",
    ),
    ("Can you explain how photosynthesis works?", "Could you explain how photosynthesis works?"),
    (
        "Give me three tips for learning to play the guitar as an adult beginner.",
        "Give me 3 tips for learning to play guitar as an adult beginner!",
    ),
    (
        "Write a Python function that checks whether a string is a palindrome.",
        "Write a python function which checks if a string is a palindrome",
    ),
    (
        "What are the health benefits of green tea?",
        "What are the health benefits of drinking green tea?",
    ),
    ("What are the health benefits of green tea?", "What are the helath benefits of green tea?"),
    ("Wie backe ich ein Brot zu Hause?", "Wie backe ich zu Hause ein Brot?"),
    ("Was ist die Hauptstadt von Frankreich?", "Was ist die Hauptstadt Frankreichs?"),
    (
        "Kannst du mir erklären, wie Photosynthese funktioniert?",
        "Könntest du mir erklären wie die Photosynthese funktioniert",
    ),
]

DIFFERENT = [
    ("How do I bake bread?", "How do I bake a cake?"),
    ("What is the capital of France?", "What is the capital of Germany?"),
    ("What is 2+2?", "What is 3+3?"),
    ("Write a poem about the sea.", "Write a poem about the mountains."),
    ("How do I learn Python?", "How do I learn Rust?"),
    (
        "Explain quantum entanglement to a ten year old.",
        "Explain general relativity to a ten year old.",
    ),
    ("What are the health benefits of green tea?", "What are the health risks of green tea?"),
    (
        "Write a Python function that checks whether a string is a palindrome.",
        "Write a Python function that reverses a string.",
    ),
    ("Translate 'good morning' into French.", "Translate 'good morning' into German."),
    (
        "How do I bake bread?",
        "How do I bake bread without yeast in a cast iron pot over a campfire?",
    ),
    ("Wie backe ich ein Brot?", "Wie backe ich einen Kuchen?"),
    ("Was ist die Hauptstadt von Frankreich?", "Was ist die Hauptstadt von Spanien?"),
]


@pytest.mark.parametrize(("existing", "new"), NEAR_DUPLICATES)
def test_rephrasings_with_small_edits_are_near_duplicates(existing: str, new: str) -> None:
    assert fingerprint.is_near_duplicate(new, existing)
    # ... and their keys share a band, so the indexed lookup finds them.
    assert set(fingerprint.band_keys(new, lang="en")) & set(
        fingerprint.band_keys(existing, lang="en")
    )


@pytest.mark.parametrize(("existing", "new"), DIFFERENT)
def test_different_questions_that_share_words_are_not_near_duplicates(
    existing: str, new: str
) -> None:
    assert not fingerprint.is_near_duplicate(new, existing)


def test_the_keys_differ_by_language_so_a_translation_never_collides() -> None:
    text = "Python list comprehension"
    assert not set(fingerprint.band_keys(text, lang="en")) & set(
        fingerprint.band_keys(text, lang="de")
    )


def test_a_long_prompt_with_one_swapped_name_is_still_a_near_duplicate() -> None:
    story = (
        "Write a short story about a brave dragon named {} who lives in a cave near a small "
        "mountain village, befriends a shy shepherd girl and protects the villagers from a "
        "terrible winter storm."
    )
    assert fingerprint.is_near_duplicate(story.format("Ember"), story.format("Ignis"))


# --- Through the API ---------------------------------------------------------------------

pytestmark_db = pytest.mark.django_db(transaction=True)


def _prompt(person, text: str):  # type: ignore[no-untyped-def]
    task = person.request_task("initial_prompt").json()
    return task, person.submit(task["id"], key=f"k-{task['id']}", text=text)


@pytestmark_db
def test_a_rephrased_prompt_is_refused_with_a_pointer_and_its_task_stays_open(
    volunteer, small_trees
):  # type: ignore[no-untyped-def]
    alice, bob = volunteer(), volunteer()
    _, first = _prompt(alice, "How do I bake bread at home?")
    assert first.status_code == 201
    existing = Message.objects.get(pk=first.json()["result_id"])
    messages_before = Message.objects.count()

    task, refused = _prompt(bob, "how can I bake BREAD at home?!")

    assert refused.status_code == 409
    error = refused.json()["error"]
    assert error["code"] == "duplicate_prompt"
    assert error["duplicate_of"] == {
        "message_id": str(existing.id),
        "tree_id": str(existing.tree_id),
    }
    assert "text" in error["fields"]
    assert Message.objects.count() == messages_before
    assert Task.objects.get(pk=task["id"]).status == TaskStatus.LEASED
    # Bob rewrites it and the same task takes the new prompt.
    again = bob.submit(task["id"], key="rewritten", text="How do I bake a sourdough cake?")
    assert again.status_code == 201, again.json()


@pytestmark_db
def test_prompts_that_share_words_but_ask_something_else_are_accepted(volunteer, small_trees):  # type: ignore[no-untyped-def]
    alice, bob = volunteer(), volunteer()
    assert _prompt(alice, "How do I bake bread?")[1].status_code == 201
    assert _prompt(bob, "How do I bake a cake?")[1].status_code == 201


@pytestmark_db
def test_the_same_prompt_in_another_language_is_not_a_duplicate(volunteer, small_trees):  # type: ignore[no-untyped-def]
    alice = volunteer(languages=["en", "de"])
    assert _prompt(alice, "Was ist Python?")[1].status_code == 201
    task = alice.request_task("initial_prompt", lang="de").json()
    assert alice.submit(task["id"], key="de", text="Was ist Python?").status_code == 201


@pytest.mark.django_db
def test_deleted_and_rejected_prompts_do_not_block_a_new_one() -> None:
    author = create_user(username="ann", accepted_terms_version=1)
    deleted = create_tree(author=author, text="How do tides work?", lang="en")
    Message.objects.filter(pk=deleted.pk).update(deleted=True)
    rejected = create_tree(author=author, text="Why is the sky blue?", lang="en")
    Message.objects.filter(pk=rejected.pk).update(review_result=False)
    MessageTree.objects.filter(pk=rejected.tree_id).update(state=State.ABORTED_LOW_GRADE)
    assert find_duplicate_prompt(text="How do tides work?", lang="en") is None
    assert find_duplicate_prompt(text="why is the sky blue", lang="en") is None
    accepted = create_tree(author=author, text="What makes the sky blue?", lang="en")
    assert find_duplicate_prompt(text="What makes the sky blue", lang="en") == accepted


@pytest.mark.django_db
def test_prompts_written_before_keys_existed_are_found_once_fingerprinted() -> None:
    author = create_user(username="old", accepted_terms_version=1)
    old = create_tree(author=author, text="How do vaccines work?", lang="en")
    PromptKey.objects.filter(message=old).delete()
    assert find_duplicate_prompt(text="How do vaccines work", lang="en") is None
    assert fingerprint_prompts() == 1
    assert find_duplicate_prompt(text="How do vaccines work", lang="en") == old


@pytest.mark.django_db
@pytest.mark.slow
def test_the_lookup_is_one_query_and_finds_the_duplicate_among_thousands() -> None:
    # bench/duplicates.py shows the plan (the promptkey_lookup index) and times it at scale.
    author = create_user(username="many", accepted_terms_version=1)
    topics = ["bread", "tides", "rust", "tea", "chess", "jazz", "moss", "owls", "glass", "rain"]
    tree = MessageTree.objects.create(state=State.GROWING, lang="en")
    texts = [
        f"Question {n}: what about {topics[n % 10]} number {n * 7919 % 10007}?" for n in range(3000)
    ]
    prompts = Message.objects.bulk_create(
        Message(
            tree=tree, role="prompter", text=text, lang="en", author=author, depth=0,
            created_at=tree.created_at,
        )
        for text in texts
    )  # fmt: skip
    store_prompt_keys(prompts)
    with CaptureQueriesContext(connection) as queries:
        assert find_duplicate_prompt(text="How do owls see at night?", lang="en") is None
        found = find_duplicate_prompt(text=texts[1234].upper(), lang="en")
    assert found is not None
    assert found.text == texts[1234]
    assert len(queries) == 2


@given(
    text=st.sampled_from([pair[0] for pair in NEAR_DUPLICATES + DIFFERENT]),
    flips=st.lists(st.booleans(), min_size=80, max_size=80),
    tail=st.sampled_from(["", "?", "!!", " ...", " ?!"]),
)
def test_case_spacing_and_punctuation_never_make_a_prompt_new(
    text: str, flips: list[bool], tail: str
) -> None:
    variant = "".join(
        c.upper() if flip else c.lower() for c, flip in zip(text, flips, strict=False)
    )
    variant = "  " + variant.replace(" ", "   ").replace(",", " , ") + tail
    assert fingerprint.is_near_duplicate(variant, text)
    assert fingerprint.band_keys(variant, lang="en") == fingerprint.band_keys(text, lang="en")
