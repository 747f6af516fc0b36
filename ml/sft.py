"""`python -m ml train sft`: supervised fine-tuning on an export's `sft` config.

TRL's SFTTrainer on pre-tokenised conversations (`ml.data.encode_conversation`), so the
loss falls on the assistant's tokens only; LoRA through PEFT or full fine-tuning;
checkpoints every `save_steps` under `OUT/checkpoints`, `--resume` continues from the
latest. `accelerate launch -m ml train sft ...` runs the same code on several GPUs.
"""

from __future__ import annotations

import importlib.metadata
import typing
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
from transformers import PreTrainedModel, PreTrainedTokenizerBase
from transformers.trainer_utils import get_last_checkpoint

from ml.base_model import display_name, load_model, load_tokenizer
from ml.card import read_info, write_card
from ml.data import dataset_version, load_split, tokenize_sft
from ml.evaluate import evaluate_model


@dataclass
class SftConfig:
    """Settings of `python -m ml train sft`."""

    data: str  # export folder (its `sft` config)
    out: str  # the trained model folder to write
    model: str | None = None  # base: folder or hub id; None is SmolLM2-135M-Instruct
    lora: bool = False  # train LoRA adapters (merged into the saved model) instead of all weights
    lora_r: int = 16
    lora_alpha: int = 32
    lora_dropout: float = 0.05
    epochs: float = 1.0
    max_steps: int = -1  # > 0 overrides epochs
    batch_size: int = 4  # per device
    grad_accum: int = 1
    learning_rate: float | None = None  # default: 2e-4 with LoRA, 2e-5 without
    warmup: float = 0.03  # share of the steps (< 1) or a number of steps
    max_length: int = 1024  # tokens per conversation; longer ones are cut
    save_steps: int = 200
    logging_steps: int = 10
    resume: bool = False  # continue from the latest checkpoint in OUT/checkpoints
    seed: int = 0
    eval: bool = True  # evaluate before and after training on the held-out split
    eval_limit: int = 200


def lora_config(r: int, alpha: int, dropout: float) -> Any:
    from peft import LoraConfig

    return LoraConfig(
        r=r,
        lora_alpha=alpha,
        lora_dropout=dropout,
        target_modules="all-linear",
        task_type="CAUSAL_LM",
    )


def trainer_arguments(config: Any, *, default_lr: float) -> dict[str, Any]:
    """The TrainingArguments shared by SFT and DPO; bf16 where a GPU does it, else fp32."""
    gpu = torch.cuda.is_available()
    return {
        "output_dir": str(Path(config.out) / "checkpoints"),
        "num_train_epochs": config.epochs,
        "max_steps": config.max_steps,
        "per_device_train_batch_size": config.batch_size,
        "gradient_accumulation_steps": config.grad_accum,
        "learning_rate": config.learning_rate or default_lr,
        "lr_scheduler_type": "cosine",
        "warmup_steps": config.warmup,
        "logging_steps": config.logging_steps,
        "save_strategy": "steps",
        "save_steps": config.save_steps,
        "save_total_limit": 2,
        "bf16": gpu and torch.cuda.is_bf16_supported(),
        "fp16": False,
        "use_cpu": not gpu,
        "report_to": [],
        "seed": config.seed,
        "max_length": config.max_length,
        "dataloader_num_workers": 0,
        "disable_tqdm": False,
    }


def run_sft(config: SftConfig) -> dict[str, Any]:
    """Train, save the model folder with its card; returns the card's facts."""
    import trl

    tokenizer = load_tokenizer(config.model)
    model = load_model(config.model, device=torch.device("cpu"), dtype=torch.float32)
    train = load_split(config.data, "sft", "train")
    if train is None or len(train) == 0:
        raise ValueError(f"{config.data} has no `sft` train split")
    train_set = tokenize_sft(train, tokenizer, max_length=config.max_length)

    before = _evaluate(model, tokenizer, config) if config.eval else None
    lr = 2e-4 if config.lora else 2e-5
    # The held-out figures come from `_evaluate`, before and after: the trainer evaluates nothing.
    args = trl.SFTConfig(**trainer_arguments(config, default_lr=lr), eval_strategy="no")
    trainer = trl.SFTTrainer(
        model=model,
        args=args,
        train_dataset=train_set,
        processing_class=tokenizer,
        peft_config=lora_config(config.lora_r, config.lora_alpha, config.lora_dropout)
        if config.lora
        else None,
    )
    result = trainer.train(resume_from_checkpoint=_checkpoint(config))
    trained = save_model(trainer, tokenizer, Path(config.out), lora=config.lora)
    if not trainer.is_world_process_zero():
        return {}
    info = model_info(
        "sft", config, base=config.model, metrics=result.metrics, tokens=_tokens(train_set)
    )
    if before is not None:
        after = _evaluate(trained, tokenizer, config)
        info["eval"] = {"before": before, "after": after}
    write_card(Path(config.out), info)
    return info


def _evaluate(model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, config: Any) -> Any:
    device = next(model.parameters()).device
    movable = typing.cast(Any, model)  # transformers' typing of .to() trips mypy
    if torch.cuda.is_available() and device.type == "cpu":
        movable.to("cuda")
    model.eval()
    report = evaluate_model(
        model, tokenizer, config.data, limit=config.eval_limit, max_length=config.max_length
    )
    movable.to(device)
    return report


def _checkpoint(config: Any) -> str | None:
    if not config.resume:
        return None
    folder = Path(config.out) / "checkpoints"
    latest = get_last_checkpoint(str(folder)) if folder.is_dir() else None
    if latest is None:
        print(f"No checkpoint under {folder}: starting from the beginning.", flush=True)
    else:
        print(f"Resuming from {latest}.", flush=True)
    return latest


def _tokens(dataset: Any) -> int:
    return sum(len(ids) for ids in dataset["input_ids"])


def save_model(
    trainer: Any, tokenizer: PreTrainedTokenizerBase, out: Path, *, lora: bool
) -> PreTrainedModel:
    """Save a plain model folder that loads without PEFT: LoRA adapters are merged in (and
    kept apart in `adapter/` as well). Returns the model as saved."""
    trainer.accelerator.wait_for_everyone()
    model = trainer.accelerator.unwrap_model(trainer.model)
    if not trainer.is_world_process_zero():
        return model
    out.mkdir(parents=True, exist_ok=True)
    if lora:
        model.save_pretrained(out / "adapter")
        model = model.merge_and_unload()
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    return model


def model_info(
    stage: str, config: Any, *, base: str | None, metrics: dict[str, Any], tokens: int
) -> dict[str, Any]:
    parent = read_info(base)
    return {
        "name": Path(config.out).resolve().name,
        "stage": stage,
        "base_model": parent.get("base_model") or display_name(base),
        "trained_from": display_name(base),
        "stages": [*parent.get("stages", []), stage],
        "dataset": dataset_version(config.data),
        "settings": asdict(config),
        "train_metrics": {**metrics, "train_tokens_per_epoch": tokens},
        "versions": {
            package: importlib.metadata.version(package)
            for package in ("torch", "transformers", "trl", "peft")
        },
    }
