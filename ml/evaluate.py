"""`python -m ml eval`: how well a model fits an export's held-out conversations.

- loss and perplexity: mean cross-entropy per assistant token of the `sft` split (the
  same tokens training learns from), and its exponential;
- preference accuracy: the share of `preference` pairs where the model gives the chosen
  reply a higher log-likelihood than the rejected one (summed over the reply's tokens),
  and the same with per-token means (which does not favour short replies).

Give `--model` more than once (e.g. the base, then the trained model) to compare them.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from ml.data import Encoded, encode_conversation, load_split

METRICS = (
    ("loss", "held-out loss (assistant tokens)"),
    ("perplexity", "perplexity"),
    ("preference_accuracy", "preference accuracy (sum log-lik.)"),
    ("preference_accuracy_per_token", "preference accuracy (mean log-lik.)"),
    ("sft_rows", "conversations"),
    ("sft_tokens", "assistant tokens"),
    ("preference_pairs", "preference pairs"),
)


@dataclass
class EvalConfig:
    """Settings of `python -m ml eval`."""

    models: list[str] = field(default_factory=list)  # folders or hub ids; empty: the default
    data: str = ""  # an export folder
    split: str = "validation"  # falls back to "test", then "train", when the export lacks it
    limit: int = 200  # at most this many conversations and pairs (the first ones)
    max_length: int = 1024
    batch_size: int = 4
    json_path: str | None = None  # where to write the report


def evaluate_model(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    data: str | Path,
    *,
    split: str = "validation",
    limit: int = 200,
    max_length: int = 1024,
    batch_size: int = 4,
) -> dict[str, Any]:
    """The metrics of one model on one export (None where the export has no rows)."""
    chosen_split = _pick_split(data, split)
    report: dict[str, Any] = {"split": chosen_split}
    sft = load_split(data, "sft", chosen_split)
    rows = [] if sft is None else list(sft.select(range(min(limit, len(sft)))))
    encoded = [encode_conversation(tokenizer, r["messages"], max_length=max_length) for r in rows]
    encoded = [e for e in encoded if any(e.loss_mask)]
    total, count = 0.0, 0
    for start in range(0, len(encoded), batch_size):
        sums, counts = sequence_logprobs(model, tokenizer, encoded[start : start + batch_size])
        total -= float(sums.sum())
        count += int(counts.sum())
    loss = total / count if count else None
    report.update(
        loss=loss,
        perplexity=math.exp(loss) if loss is not None else None,
        sft_rows=len(encoded),
        sft_tokens=count,
    )
    report.update(preference_metrics(model, tokenizer, data, chosen_split, limit, max_length))
    return report


def preference_metrics(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    data: str | Path,
    split: str,
    limit: int,
    max_length: int,
) -> dict[str, Any]:
    pairs = load_split(data, "preference", split)
    rows = [] if pairs is None else list(pairs.select(range(min(limit, len(pairs)))))
    wins = wins_per_token = 0
    for row in rows:
        # The reply's tokens only: `last_turn_only` masks the prompt's earlier assistant turns.
        both = [
            last_turn_only(
                encode_conversation(tokenizer, [*row["prompt"], *reply], max_length=max_length)
            )
            for reply in (row["chosen"], row["rejected"])
        ]
        sums, counts = sequence_logprobs(model, tokenizer, both)  # (2,), (2,)
        wins += int(sums[0] > sums[1])
        means = sums / counts.clamp(min=1)
        wins_per_token += int(means[0] > means[1])
    return {
        "preference_pairs": len(rows),
        "preference_accuracy": wins / len(rows) if rows else None,
        "preference_accuracy_per_token": wins_per_token / len(rows) if rows else None,
    }


def last_turn_only(encoded: Encoded) -> Encoded:
    """The mask kept on the final run of assistant tokens (the last reply) only."""
    mask = list(encoded.loss_mask)
    end = len(mask)
    start = end
    while start > 0 and mask[start - 1]:
        start -= 1
    return Encoded(encoded.input_ids, [0] * start + [1] * (end - start))


@torch.inference_mode()
def sequence_logprobs(
    model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, batch: Sequence[Encoded]
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per row: the summed log-probability of its masked tokens, and how many there are."""
    device = next(model.parameters()).device
    width = max(len(e.input_ids) for e in batch)
    pad = tokenizer.pad_token_id or 0
    ids = torch.tensor(
        [e.input_ids + [pad] * (width - len(e.input_ids)) for e in batch], device=device
    )  # (B, T) right-padded
    attention = torch.tensor(
        [[1] * len(e.input_ids) + [0] * (width - len(e.input_ids)) for e in batch], device=device
    )  # (B, T)
    mask = torch.tensor(
        [e.loss_mask + [0] * (width - len(e.loss_mask)) for e in batch], device=device
    )  # (B, T)
    logits = model(input_ids=ids, attention_mask=attention).logits.float()  # (B, T, V)
    # Token t is predicted from the logits at t - 1.
    logprobs = torch.log_softmax(logits[:, :-1], dim=-1)  # (B, T - 1, V)
    picked = logprobs.gather(-1, ids[:, 1:, None])[..., 0]  # (B, T - 1)
    weights = mask[:, 1:].to(picked.dtype)  # (B, T - 1)
    return (picked * weights).sum(-1).cpu(), weights.sum(-1).cpu()


def _pick_split(data: str | Path, wanted: str) -> str:
    for split in dict.fromkeys((wanted, "validation", "test", "train")):
        if load_split(data, "sft", split) is not None:
            return split
    return wanted


def format_table(reports: dict[str, dict[str, Any]]) -> str:
    """The reports side by side: one row per metric, one column per model."""
    names = list(reports)
    header = ["metric", *names]
    rows = [header]
    for key, label in METRICS:
        rows.append([label, *(_fmt(reports[name].get(key)) for name in names)])
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)) for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def _fmt(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.4f}"
    return str(value)


def run_eval(config: EvalConfig) -> dict[str, dict[str, Any]]:
    from ml.base_model import display_name, load_model, load_tokenizer

    reports: dict[str, dict[str, Any]] = {}
    names: list[str | None] = list(config.models) or [None]
    for name in names:
        tokenizer = load_tokenizer(name)
        model = load_model(name).eval()
        reports[display_name(name)] = evaluate_model(
            model,
            tokenizer,
            config.data,
            split=config.split,
            limit=config.limit,
            max_length=config.max_length,
            batch_size=config.batch_size,
        )
    print(format_table(reports))
    if config.json_path:
        Path(config.json_path).write_text(json.dumps(reports, indent=2) + "\n", encoding="utf-8")
    return reports
