"""The real consumers of an export: TRL's SFTTrainer and DPOTrainer train one step on the
`sft` and `preference` configs of an exported sample, read with `datasets.load_dataset`,
with no glue code in between.

The model is a tiny randomly initialised Llama and the tokenizer a word-level one trained
on the export's own text, so nothing is downloaded. CI installs the [ml] extra and sets
CHORUS_REQUIRE_SERVICES=1, so a missing torch or TRL fails there instead of skipping.
"""

from __future__ import annotations

import copy
import math
from pathlib import Path
from typing import Any

import pytest

from backend.exports import services
from backend.trees.importing import import_oasst

torch = pytest.importorskip("torch", reason="torch is not installed (the [ml] extra)")
trl = pytest.importorskip("trl", reason="TRL is not installed (the [ml] extra)")
transformers = pytest.importorskip("transformers", reason="transformers is not installed")
tokenizers = pytest.importorskip("tokenizers", reason="tokenizers is not installed")
datasets = pytest.importorskip("datasets", reason="datasets is not installed")

pytestmark = [pytest.mark.django_db, pytest.mark.slow]

# The sample calls every tree ready_for_export; one is imported as backlog_ranking.
SAMPLE_STATES = ["ready_for_export", "backlog_ranking"]
SPECIAL_TOKENS = ["<pad>", "<unk>", "<|user|>", "<|assistant|>", "<|end|>"]
# Every turn closes with <|end|>, the eos token, so a trained model learns to stop.
CHAT_TEMPLATE = (
    "{% for message in messages %}<|{{ message['role'] }}|> {{ message['content'] }} <|end|> "
    "{% endfor %}{% if add_generation_prompt %}<|assistant|> {% endif %}"
)
MAX_LENGTH = 96


@pytest.fixture
def offline(monkeypatch, tmp_path) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    # The variables count only where the libraries read them after this; these hold anyway.
    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_OFFLINE", True)


@pytest.fixture
def folder(oasst_sample_path, settings, tmp_path, offline) -> Path:
    """The sample imported and exported: a version folder as training would find it."""
    settings.CHORUS_EXPORT_DIR = str(tmp_path / "exports")
    with oasst_sample_path.open("rb") as lines:
        assert import_oasst(lines=lines).errors == []
    planned = services.create_export(user=None, filters={"states": SAMPLE_STATES}, seed=1)
    return Path(services.run_export(export_id=planned.id, salt="salt").path)


def load(folder: Path, config: str, tmp_path: Path) -> Any:
    return datasets.load_dataset(
        str(folder), config, split="train", cache_dir=str(tmp_path / "cache")
    )


def word_tokenizer(texts: list[str]) -> Any:
    """A word-level tokenizer trained on `texts`, with a chat template: no download."""
    model = tokenizers.models.WordLevel(unk_token="<unk>")
    tokenizer = tokenizers.Tokenizer(model)
    tokenizer.pre_tokenizer = tokenizers.pre_tokenizers.Whitespace()
    trainer = tokenizers.trainers.WordLevelTrainer(vocab_size=2000, special_tokens=SPECIAL_TOKENS)
    tokenizer.train_from_iterator(texts, trainer=trainer)
    wrapped = transformers.PreTrainedTokenizerFast(
        tokenizer_object=tokenizer, pad_token="<pad>", unk_token="<unk>", eos_token="<|end|>"
    )
    wrapped.chat_template = CHAT_TEMPLATE
    return wrapped


def tiny_llama(tokenizer: Any) -> Any:
    torch.manual_seed(0)
    config = transformers.LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=2,
        num_key_value_heads=2,
        max_position_embeddings=MAX_LENGTH,
        pad_token_id=tokenizer.pad_token_id,
        eos_token_id=tokenizer.eos_token_id,
        bos_token_id=None,
    )
    return transformers.LlamaForCausalLM(config)


def common_args(tmp_path: Path) -> dict[str, Any]:
    return {
        "output_dir": str(tmp_path / "out"),
        "max_steps": 1,
        "per_device_train_batch_size": 2,
        "learning_rate": 1e-2,
        "logging_steps": 1,
        "save_strategy": "no",
        "report_to": [],
        "use_cpu": True,
        "bf16": False,
        "fp16": False,
        "dataloader_num_workers": 0,
        "seed": 0,
        "max_length": MAX_LENGTH,
    }


def snapshot(model: Any) -> dict[str, Any]:
    return {name: p.detach().clone() for name, p in model.named_parameters()}


def assert_trained(trainer: Any, before: dict[str, Any]) -> None:
    losses = [entry["loss"] for entry in trainer.state.log_history if "loss" in entry]
    # DPOTrainer drops rows whose prompt alone fills max_length; the rest must train.
    assert len(trainer.train_dataset) > 0
    assert trainer.state.global_step == 1
    assert losses, trainer.state.log_history
    assert all(math.isfinite(loss) for loss in losses)
    changed = [
        name for name, p in trainer.model.named_parameters() if not torch.equal(p, before[name])
    ]
    assert changed, "one optimiser step changed no weight"


def test_sft_trainer_trains_a_step_on_the_sft_config(folder, tmp_path):
    sft = load(folder, "sft", tmp_path)
    tokenizer = word_tokenizer([turn["content"] for row in sft for turn in row["messages"]])
    model = tiny_llama(tokenizer)
    before = snapshot(model)

    trainer = trl.SFTTrainer(
        model=model,
        args=trl.SFTConfig(**common_args(tmp_path)),
        train_dataset=sft,
        processing_class=tokenizer,
    )
    trainer.train()

    assert_trained(trainer, before)


def test_dpo_trainer_trains_a_step_on_the_preference_config(folder, tmp_path):
    preference = load(folder, "preference", tmp_path)
    tokenizer = word_tokenizer(
        [
            turn["content"]
            for row in preference
            for turn in (*row["prompt"], *row["chosen"], *row["rejected"])
        ]
    )
    model = tiny_llama(tokenizer)
    before = snapshot(model)

    trainer = trl.DPOTrainer(
        model=model,
        # A model built from a config has no hub id to load the reference from: a copy.
        ref_model=copy.deepcopy(model),
        args=trl.DPOConfig(**common_args(tmp_path), beta=0.1),
        train_dataset=preference,
        processing_class=tokenizer,
    )
    trainer.train()

    assert_trained(trainer, before)
