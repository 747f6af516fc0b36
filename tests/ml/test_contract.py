"""The export format is the contract between the platform and ml/: the platform's REAL
export (backend/exports, from the imported OpenAssistant sample) is read by ml's loaders,
its `sft` config trains a step with `ml train sft` and its `preference` config is what
`ml train dpo` and `ml eval` read. The model is the tiny one built from the export's own
text, so nothing is downloaded; the platform side needs Django and the database.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from safetensors.torch import load_file

from ml.base_model import load_model, load_tokenizer
from ml.data import load_split, tokenize_sft
from ml.evaluate import preference_metrics
from ml.sft import SftConfig, run_sft
from tests.ml.conftest import build_tiny_model

pytestmark = [pytest.mark.django_db, pytest.mark.slow]

# The sample calls every tree ready_for_export; one is imported as backlog_ranking.
SAMPLE_STATES = ["ready_for_export", "backlog_ranking"]


@pytest.fixture
def platform_export(oasst_sample_path, settings, tmp_path) -> Path:
    """The sample imported and exported by the platform: a version folder as `ml` gets it."""
    from backend.exports import services
    from backend.trees.importing import import_oasst

    settings.CHORUS_EXPORT_DIR = str(tmp_path / "exports")
    with oasst_sample_path.open("rb") as lines:
        assert import_oasst(lines=lines).errors == []
    planned = services.create_export(user=None, filters={"states": SAMPLE_STATES}, seed=1)
    return Path(services.run_export(export_id=planned.id, salt="salt").path)


@pytest.fixture
def export_model(platform_export, tmp_path) -> Path:
    texts = [f.read_text() for f in sorted(platform_export.glob("*/*.jsonl"))]
    return build_tiny_model(tmp_path / "tiny", texts)


def test_ml_trains_a_step_on_the_sft_config_of_a_real_export(
    platform_export, export_model, tmp_path
):
    train = load_split(platform_export, "sft", "train")
    validation = load_split(platform_export, "sft", "validation")
    assert train is not None
    assert len(train) > 0
    assert validation is not None
    assert len(validation) > 0
    encoded = tokenize_sft(train, load_tokenizer(str(export_model)), max_length=64)
    assert len(encoded) > 0
    assert all(any(mask) for mask in encoded["assistant_masks"])
    out = tmp_path / "sft"

    info = run_sft(
        SftConfig(
            data=str(platform_export),
            out=str(out),
            model=str(export_model),
            max_steps=1,
            batch_size=2,
            max_length=64,
            learning_rate=1e-2,
            warmup=0,  # one step: with warm-up its learning rate would be 0
            eval=False,
        )
    )

    before = load_file(str(export_model / "model.safetensors"))
    after = load_file(str(out / "model.safetensors"))
    assert any(not before[name].equal(after[name]) for name in before)
    assert info["dataset"]["version"] is not None
    assert info["train_metrics"]["train_tokens_per_epoch"] > 0


def test_ml_reads_the_preference_config_of_a_real_export(platform_export, export_model):
    train = load_split(platform_export, "preference", "train")
    assert train is not None
    assert len(train) > 0
    row = train[0]
    assert {"prompt", "chosen", "rejected"} <= set(row)
    assert row["prompt"][-1]["role"] == "user"
    assert [m["role"] for m in row["chosen"]] == ["assistant"]
    assert [m["role"] for m in row["rejected"]] == ["assistant"]

    metrics = preference_metrics(
        load_model(str(export_model)),
        load_tokenizer(str(export_model)),
        platform_export,
        "train",
        20,
        64,
    )

    assert metrics["preference_pairs"] > 0
    assert 0 <= metrics["preference_accuracy"] <= 1
