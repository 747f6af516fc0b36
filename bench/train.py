"""Training speed of `python -m ml train sft` on the default model: tokens/s, LoRA and full.

    .venv/bin/python bench/train.py [--model smollm2] [--steps 6] [--batch-size 4]
                                    [--max-length 256] [--modes lora full] [--data EXPORT]

Trains `--steps` optimiser steps of SFT with the same pieces `ml train sft` uses (the
model and tokenizer loaders, `tokenize_sft`, the trainer arguments and LoRA settings, TRL's
SFTTrainer) on an export (default: the OpenAssistant sample of ../shared/data written in
the export's layout), and prints the tokens per second of each mode. Tokens are the
non-padding tokens of the batches processed; the first step (warm-up: allocations, lazy
initialisation) is left out of both the tokens and the time. Run on a CUDA device when
there is one, like `ml train`. Note the load average it prints: on a shared machine the
figures are disturbed by whatever else runs.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
SAMPLE = ROOT.parent / "shared" / "data" / "oasst_en_100_trees.jsonl"


@dataclass
class StepClock:
    """Non-padding tokens of each batch as the collator builds it, and each step's end."""

    tokens: list[int] = field(default_factory=list)
    ends: list[float] = field(default_factory=list)
    started: float = 0.0


def sample_export(folder: Path) -> Path:
    from tests.ml.conftest import sample_trees, write_export

    if not SAMPLE.exists():
        raise SystemExit(f"The sample {SAMPLE} is missing: pass --data EXPORT")
    return write_export(sample_trees(SAMPLE, 100), folder / "sample")


def counting(collate: Any, clock: StepClock) -> Any:
    def collate_and_count(rows: list[Any]) -> Any:
        batch = collate(rows)
        mask = batch.get("attention_mask")
        if mask is not None:  # (B, T) 1 on real tokens
            clock.tokens.append(int(mask.sum()))
        else:  # padding-free batches have no padding
            clock.tokens.append(int(batch["input_ids"].numel()))
        return batch

    return collate_and_count


def train_speed(mode: str, data: Path, args: argparse.Namespace, out: Path) -> dict[str, Any]:
    import torch
    import trl
    from transformers import TrainerCallback

    from ml.base_model import load_model, load_tokenizer
    from ml.data import load_split, tokenize_sft
    from ml.sft import SftConfig, lora_config, trainer_arguments

    lora = mode == "lora"
    config = SftConfig(
        data=str(data),
        out=str(out / mode),
        model=args.model,
        lora=lora,
        max_steps=args.steps,
        batch_size=args.batch_size,
        max_length=args.max_length,
        save_steps=10**6,
        logging_steps=10**6,
        eval=False,
    )
    tokenizer = load_tokenizer(config.model)
    model = load_model(config.model, device=torch.device("cpu"), dtype=torch.float32)
    split = load_split(data, "sft", "train")
    assert split is not None
    train_set = tokenize_sft(split, tokenizer, max_length=config.max_length)
    settings = trainer_arguments(config, default_lr=2e-4 if lora else 2e-5)
    settings.update(save_strategy="no", disable_tqdm=True)
    clock = StepClock()

    class Clock(TrainerCallback):  # type: ignore[misc]
        def on_step_end(self, *_: Any, **__: Any) -> None:
            if torch.cuda.is_available():
                torch.cuda.synchronize()
            clock.ends.append(time.perf_counter())

    trainer = trl.SFTTrainer(
        model=model,
        args=trl.SFTConfig(**settings),
        train_dataset=train_set,
        processing_class=tokenizer,
        peft_config=lora_config(config.lora_r, config.lora_alpha, config.lora_dropout)
        if lora
        else None,
        callbacks=[Clock()],
    )
    trainer.data_collator = counting(trainer.data_collator, clock)
    trainer.train()
    steps = len(clock.ends)
    seconds = clock.ends[-1] - clock.ends[0]  # steps 2..N
    tokens = sum(clock.tokens[1:steps])
    trained = trainer.model
    assert trained is not None
    trainable = sum(p.numel() for p in trained.parameters() if p.requires_grad)
    return {
        "mode": mode,
        "steps": steps - 1,
        "tokens": tokens,
        "seconds": seconds,
        "tokens_per_s": tokens / seconds,
        "trainable": trainable,
        "checkpointing": trainer.args.gradient_checkpointing,
        "device": str(trained.device),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="smollm2")
    parser.add_argument("--data", default=None, help="an export folder (default: the sample)")
    parser.add_argument("--steps", type=int, default=6, help="steps (the first unmeasured)")
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--max-length", type=int, default=256)
    parser.add_argument("--modes", nargs="+", default=["lora", "full"], choices=["lora", "full"])
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
    load_before = " ".join(f"{v:.2f}" for v in os.getloadavg())
    with tempfile.TemporaryDirectory(prefix="chorus-bench-train-") as scratch:
        data = Path(args.data) if args.data else sample_export(Path(scratch))
        results = [train_speed(mode, data, args, Path(scratch)) for mode in args.modes]
    import torch

    print(
        f"\nSFT of {args.model} on {results[0]['device']} ({torch.get_num_threads()} torch "
        f"threads), batch {args.batch_size}, max_length {args.max_length}, {args.steps} steps "
        f"(first unmeasured); load average before {load_before}"
    )
    print(
        f"\n{'mode':<6} {'trainable':>12} {'checkpointing':>13} {'steps':>6} {'tokens':>8} "
        f"{'s':>8} {'tokens/s':>9}"
    )
    for r in results:
        print(
            f"{r['mode']:<6} {r['trainable']:>12,} {r['checkpointing']!s:>13} {r['steps']:>6} "
            f"{r['tokens']:>8} {r['seconds']:>8.1f} {r['tokens_per_s']:>9.1f}"
        )
    print("load average after " + " ".join(f"{v:.2f}" for v in os.getloadavg()))


if __name__ == "__main__":
    main()
