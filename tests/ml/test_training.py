"""Training on an export: SFT lowers the held-out loss and changes the weights, LoRA and
full; DPO runs; checkpoints resume; every model folder carries its card."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import load_file

from ml.__main__ import main
from ml.preference import DpoConfig, run_dpo
from ml.sft import SftConfig, run_sft

pytestmark = pytest.mark.slow  # a few seconds each: TRL's trainers start slowly


def weights(folder) -> dict[str, torch.Tensor]:
    return load_file(str(folder / "model.safetensors"))


def changed(before: dict[str, torch.Tensor], after: dict[str, torch.Tensor]) -> list[str]:
    return [name for name in before if not torch.equal(before[name], after[name])]


def quick(**settings):
    return {
        "max_steps": 12,
        "batch_size": 4,
        "max_length": 128,
        "logging_steps": 4,
        "learning_rate": 3e-3,
        "eval_limit": 40,
        **settings,
    }


def test_sft_lowers_the_held_out_loss_and_changes_the_weights(tiny_model, small_export, tmp_path):
    out = tmp_path / "sft"

    info = run_sft(
        SftConfig(data=str(small_export), out=str(out), model=str(tiny_model), **quick())
    )

    before, after = info["eval"]["before"], info["eval"]["after"]
    assert after["loss"] < before["loss"]
    assert after["perplexity"] < before["perplexity"]
    assert changed(weights(tiny_model), weights(out))
    card = (out / "README.md").read_text()
    assert "version 7" in card
    assert "## Evaluation" in card
    saved = json.loads((out / "chorus.json").read_text())
    assert saved["base_model"] == "tiny"
    assert saved["dataset"]["version"] == 7
    assert saved["settings"]["max_steps"] == 12


def test_lora_sft_saves_a_merged_model_and_its_adapter(tiny_model, small_export, tmp_path):
    out = tmp_path / "lora"

    info = run_sft(
        SftConfig(
            data=str(small_export),
            out=str(out),
            model=str(tiny_model),
            lora=True,
            **quick(max_steps=6, learning_rate=1e-2),
        )
    )

    assert (out / "adapter" / "adapter_config.json").exists()
    assert changed(weights(tiny_model), weights(out))
    assert info["eval"]["after"]["loss"] < info["eval"]["before"]["loss"]
    assert not any("lora" in name for name in weights(out))  # plain weights: no PEFT needed


def test_training_resumes_from_its_latest_checkpoint(tiny_model, small_export, tmp_path, capsys):
    out = tmp_path / "resumed"
    args = [
        "train",
        "sft",
        "--data",
        str(small_export),
        "--out",
        str(out),
        "--model",
        str(tiny_model),
        "--batch-size",
        "2",
        "--max-length",
        "64",
        "--save-steps",
        "2",
        "--no-eval",
    ]

    main([*args, "--max-steps", "2"])
    capsys.readouterr()
    main([*args, "--max-steps", "4", "--resume"])

    state = json.loads((out / "checkpoints" / "checkpoint-4" / "trainer_state.json").read_text())
    assert state["global_step"] == 4
    assert f"Resuming from {out / 'checkpoints' / 'checkpoint-2'}" in capsys.readouterr().out
    assert json.loads((out / "chorus.json").read_text())["settings"]["resume"] is True


def test_dpo_trains_on_the_preference_pairs(tiny_model, small_export, tmp_path):
    out = tmp_path / "dpo"

    info = run_dpo(
        DpoConfig(
            data=str(small_export),
            out=str(out),
            model=str(tiny_model),
            max_steps=3,
            batch_size=2,
            max_length=128,
            learning_rate=1e-2,
            eval_limit=20,
        )
    )

    assert changed(weights(tiny_model), weights(out))
    assert info["stage"] == "dpo"
    assert info["eval"]["after"]["preference_pairs"] > 0
    assert 0 <= info["eval"]["after"]["preference_accuracy"] <= 1
    assert "dpo" in (out / "README.md").read_text()
