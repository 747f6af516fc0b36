"""Reading a Chorus export and turning conversations into training tensors.

The export folder is the contract with the platform (see backend/exports): a Hugging Face
dataset card (`README.md`) declares the configs `sft` (`{"messages": [...]}`) and
`preference` (`{"prompt", "chosen", "rejected", "margin"}`), each with train/validation
(/test) splits, and `export.json` records the version, seed and filters.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from datasets import Dataset, load_dataset
from transformers import PreTrainedTokenizerBase

Message = dict[str, str]
MANIFEST_FILE = "export.json"
IGNORE_INDEX = -100  # the label that cross-entropy skips


@dataclass(frozen=True)
class Encoded:
    """One conversation as the model sees it."""

    input_ids: list[int]  # (T,)
    loss_mask: list[int]  # (T,) 1 where the token is written by the assistant, else 0


def encode_conversation(
    tokenizer: PreTrainedTokenizerBase, messages: Sequence[Message], *, max_length: int
) -> Encoded:
    """Token ids of a conversation in the tokenizer's chat template, and a mask that is 1
    exactly on the assistant's tokens (its content and the template's end-of-turn tokens,
    so the model learns to stop), 0 on everything else (system prompt, user turns, the
    template's "assistant:" headers).

    The template is rendered for ever longer prefixes of the conversation; each render
    extends the previous one, so the text splits into pieces that are tokenised one by
    one. Truncated to `max_length` tokens from the end on the right.
    """
    ids: list[int] = []
    mask: list[int] = []
    done = ""

    def add(text: str, trained: bool) -> None:
        nonlocal done
        if not text.startswith(done):
            raise ValueError("The chat template does not render conversations prefix by prefix")
        piece = text[len(done) :]
        if piece:
            tokens = tokenizer(piece, add_special_tokens=False)["input_ids"]
            ids.extend(tokens)
            mask.extend([int(trained)] * len(tokens))
        done = text

    for index, message in enumerate(messages):
        if message["role"] == "assistant":
            add(_render(tokenizer, messages[:index], generation_prompt=True), trained=False)
            add(_render(tokenizer, messages[: index + 1]), trained=True)
        else:
            add(_render(tokenizer, messages[: index + 1]), trained=False)
    return Encoded(input_ids=ids[:max_length], loss_mask=mask[:max_length])


def _render(
    tokenizer: PreTrainedTokenizerBase,
    messages: Sequence[Message],
    *,
    generation_prompt: bool = False,
) -> str:
    if not messages:
        return ""
    text = tokenizer.apply_chat_template(
        list(messages), tokenize=False, add_generation_prompt=generation_prompt
    )
    assert isinstance(text, str)
    return text


def encode_prompt(tokenizer: PreTrainedTokenizerBase, messages: Sequence[Message]) -> list[int]:
    """Token ids of a conversation followed by the template's assistant header: the input
    from which the model writes its next reply."""
    text = _render(tokenizer, messages, generation_prompt=True)
    return list(tokenizer(text, add_special_tokens=False)["input_ids"])


def load_split(folder: str | Path, config: str, split: str) -> Dataset | None:
    """One split of one config of an export, or None when the export has no such split."""
    try:
        dataset = load_dataset(str(folder), config, split=split)
    except ValueError as error:  # datasets: 'Unknown split "test". Should be one of [...]'
        if "split" in str(error).lower():
            return None
        raise
    assert isinstance(dataset, Dataset)
    return dataset


def tokenize_sft(
    dataset: Dataset, tokenizer: PreTrainedTokenizerBase, *, max_length: int
) -> Dataset:
    """The `sft` rows as `input_ids` and `assistant_masks`, the pre-tokenised form TRL's
    SFTTrainer trains on (loss where the mask is 1). Rows with no assistant token left
    after truncation are dropped: they would teach nothing."""

    def encode(row: dict[str, Any]) -> dict[str, Any]:
        encoded = encode_conversation(tokenizer, row["messages"], max_length=max_length)
        return {"input_ids": encoded.input_ids, "assistant_masks": encoded.loss_mask}

    tokenized = dataset.map(encode, remove_columns=dataset.column_names)
    return tokenized.filter(lambda row: any(row["assistant_masks"]))


def dataset_version(folder: str | Path) -> dict[str, Any]:
    """What a model card says about its training data: the export's version and figures."""
    folder = Path(folder)
    info: dict[str, Any] = {"path": str(folder.resolve())}
    manifest = folder / MANIFEST_FILE
    if manifest.exists():
        data = json.loads(manifest.read_text(encoding="utf-8"))
        info.update(
            {key: data.get(key) for key in ("format", "version", "seed", "license") if key in data}
        )
        stats = data.get("stats") or {}
        info["stats"] = {
            key: stats[key] for key in ("trees", "messages", "sft", "preference") if key in stats
        }
    return info
