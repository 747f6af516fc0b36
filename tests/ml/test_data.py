"""One function turns a conversation into token ids and the mask of the assistant's tokens."""

from __future__ import annotations

import pytest

from ml.base_model import load_tokenizer
from ml.data import dataset_version, encode_conversation, encode_prompt, load_split, tokenize_sft

CONVERSATION = [
    {"role": "user", "content": "How are plants green"},
    {"role": "assistant", "content": "They hold chlorophyll"},
    {"role": "user", "content": "Why is that"},
    {"role": "assistant", "content": "It absorbs red and blue light"},
]


@pytest.fixture(scope="module")
def tokenizer(tiny_model):
    return load_tokenizer(str(tiny_model))


def test_the_loss_mask_covers_exactly_the_assistants_turns(tokenizer):
    encoded = encode_conversation(tokenizer, CONVERSATION, max_length=1000)

    assert len(encoded.input_ids) == len(encoded.loss_mask)
    trained = [t for t, m in zip(encoded.input_ids, encoded.loss_mask, strict=True) if m]
    untrained = [t for t, m in zip(encoded.input_ids, encoded.loss_mask, strict=True) if not m]
    # The assistant's words and its end-of-turn token; never the user's or the headers.
    expected = "They hold chlorophyll <|end|> It absorbs red and blue light <|end|>"
    assert trained == tokenizer(expected, add_special_tokens=False)["input_ids"]
    assert "<|assistant|>" in tokenizer.decode(untrained)
    assert "How" in tokenizer.decode(untrained).split()


def test_the_ids_are_the_rendered_chat_template(tokenizer):
    encoded = encode_conversation(tokenizer, CONVERSATION, max_length=1000)
    text = tokenizer.apply_chat_template(CONVERSATION, tokenize=False)
    assert encoded.input_ids == tokenizer(text, add_special_tokens=False)["input_ids"]


def test_long_conversations_are_cut_to_max_length(tokenizer):
    encoded = encode_conversation(tokenizer, CONVERSATION, max_length=7)
    assert len(encoded.input_ids) == len(encoded.loss_mask) == 7


def test_a_prompt_ends_with_the_assistants_header(tokenizer):
    ids = encode_prompt(tokenizer, CONVERSATION[:1])
    assert tokenizer.decode(ids).split()[-1] == "<|assistant|>"


def test_an_export_reads_as_tokenised_sft_rows_and_its_version(small_export, tokenizer):
    train = load_split(small_export, "sft", "train")
    assert load_split(small_export, "sft", "test") is None

    rows = tokenize_sft(train, tokenizer, max_length=64)

    assert set(rows.column_names) == {"input_ids", "assistant_masks"}
    assert all(any(mask) and len(mask) <= 64 for mask in rows["assistant_masks"])
    assert dataset_version(small_export)["version"] == 7
