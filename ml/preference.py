"""`python -m ml train dpo`: preference tuning with TRL's DPOTrainer on an export's
`preference` config (`prompt`, `chosen`, `rejected` in TRL's conversational format), from
a model `ml train sft` wrote (or any model). The reference model is the starting model:
a frozen copy, or the same weights with the LoRA adapters switched off.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from ml.base_model import load_model, load_tokenizer
from ml.card import write_card
from ml.data import load_split
from ml.sft import _checkpoint, _evaluate, lora_config, model_info, save_model, trainer_arguments


@dataclass
class DpoConfig:
    """Settings of `python -m ml train dpo`."""

    data: str  # export folder (its `preference` config)
    out: str  # the trained model folder to write
    model: str | None = None  # start (and reference) model: usually an `ml train sft` folder
    beta: float = 0.1  # how far from the reference the policy may move (DPO's KL weight)
    lora: bool = False
    lora_r: int = 16
    lora_alpha: int = 32
    lora_dropout: float = 0.05
    epochs: float = 1.0
    max_steps: int = -1
    batch_size: int = 4
    grad_accum: int = 1
    learning_rate: float | None = None  # default: 5e-5 with LoRA, 5e-7 without
    warmup: float = 0.1
    max_length: int = 1024
    save_steps: int = 200
    logging_steps: int = 10
    resume: bool = False
    seed: int = 0
    eval: bool = True
    eval_limit: int = 200


def run_dpo(config: DpoConfig) -> dict[str, Any]:
    import trl

    tokenizer = load_tokenizer(config.model)
    model = load_model(config.model, device=torch.device("cpu"), dtype=torch.float32)
    train = load_split(config.data, "preference", "train")
    if train is None or len(train) == 0:
        raise ValueError(f"{config.data} has no `preference` train split")
    before = _evaluate(model, tokenizer, config) if config.eval else None
    lr = 5e-5 if config.lora else 5e-7
    args = trl.DPOConfig(**trainer_arguments(config, default_lr=lr), beta=config.beta)
    trainer = trl.DPOTrainer(
        model=model,
        # Without LoRA the reference is a frozen copy; with it, the adapters switched off.
        ref_model=None if config.lora else copy.deepcopy(model).eval(),
        args=args,
        train_dataset=train,
        processing_class=tokenizer,
        peft_config=lora_config(config.lora_r, config.lora_alpha, config.lora_dropout)
        if config.lora
        else None,
    )
    result = trainer.train(resume_from_checkpoint=_checkpoint(config))
    trained = save_model(trainer, tokenizer, Path(config.out), lora=config.lora)
    if not trainer.is_world_process_zero():
        return {}
    tokens = len(train)  # pairs, for DPO
    info = model_info("dpo", config, base=config.model, metrics=result.metrics, tokens=tokens)
    info["train_metrics"]["train_pairs_per_epoch"] = info["train_metrics"].pop(
        "train_tokens_per_epoch"
    )
    if before is not None:
        info["eval"] = {"before": before, "after": _evaluate(trained, tokenizer, config)}
    write_card(Path(config.out), info)
    return info
