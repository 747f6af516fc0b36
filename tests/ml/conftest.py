"""Fixtures for ml/: a tiny model built from a config (no download), an export folder in
the contract's layout, and a server running in a thread.

The fast tests use `small_export`, written here straight from the OpenAssistant sample in
the export's layout (card with configs, sft/ and preference/ splits, export.json).
test_contract.py runs the platform's real export (backend/exports, with Django and the
database) through ml's loaders; test_real_model.py uses the real default model.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

torch = pytest.importorskip("torch", reason="torch is not installed (the [ml] extra)")
transformers = pytest.importorskip("transformers", reason="the [ml] extra is not installed")
tokenizers = pytest.importorskip("tokenizers", reason="the [ml] extra is not installed")
datasets = pytest.importorskip("datasets", reason="the [ml] extra is not installed")

SPECIAL_TOKENS = ["<pad>", "<unk>", "<|system|>", "<|user|>", "<|assistant|>", "<|end|>"]
# Every turn closes with <|end|>, the eos token, so a trained model learns to stop.
CHAT_TEMPLATE = (
    "{% for message in messages %}<|{{ message['role'] }}|> {{ message['content'] }} <|end|> "
    "{% endfor %}{% if add_generation_prompt %}<|assistant|> {% endif %}"
)
SAMPLE_TREES = 40


@pytest.fixture(autouse=True)
def offline(monkeypatch, tmp_path_factory) -> None:
    """Nothing may come from the Hub; datasets' cache stays inside the test's folders."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_OFFLINE", True)
    cache = tmp_path_factory.getbasetemp() / "datasets-cache"
    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", cache)


def sample_trees(path: Path, limit: int) -> list[dict[str, Any]]:
    with path.open(encoding="utf-8") as lines:
        return [json.loads(line) for _, line in zip(range(limit), lines, strict=False)]


def _turn(message: dict[str, Any]) -> dict[str, str]:
    return {
        "role": "user" if message["role"] == "prompter" else "assistant",
        "content": message["text"],
    }


def _rows(tree: dict[str, Any]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The best path as one sft row, and preference pairs of ranked assistant siblings."""
    sft, pairs, path, node = [], [], [], tree["prompt"]
    while True:
        path.append(_turn(node))
        ranked = sorted(
            (r for r in node["replies"] if r["role"] == "assistant" and r.get("rank") is not None),
            key=lambda r: r["rank"],
        )
        for i, better in enumerate(ranked):
            for worse in ranked[i + 1 :]:
                margin = float(worse["rank"] - better["rank"])
                pairs.append(
                    {
                        "prompt": list(path),
                        "chosen": [_turn(better)],
                        "rejected": [_turn(worse)],
                        "margin": margin,
                    }
                )
        if not node["replies"]:
            break
        node = min(node["replies"], key=lambda r: (r.get("rank") is None, r.get("rank") or 0))
    while path and path[-1]["role"] != "assistant":
        path.pop()
    if path:
        sft.append({"messages": path})
    return sft, pairs


def write_export(trees: list[dict[str, Any]], folder: Path, *, version: int = 7) -> Path:
    """An export folder as backend/exports writes one: every 4th tree is held out."""
    files: dict[str, list[dict[str, Any]]] = {}
    for index, tree in enumerate(trees):
        split = "validation" if index % 4 == 3 else "train"
        sft, pairs = _rows(tree)
        files.setdefault(f"sft/{split}.jsonl", []).extend(sft)
        files.setdefault(f"preference/{split}.jsonl", []).extend(pairs)
    card = ["---", "configs:"]
    for config in ("sft", "preference"):
        card += [f"- config_name: {config}", "  data_files:"]
        for split in ("train", "validation"):
            card += [f"  - split: {split}", f'    path: "{config}/{split}.jsonl"']
    (folder).mkdir(parents=True, exist_ok=True)
    (folder / "README.md").write_text("\n".join([*card, "---", "", "# test export", ""]))
    for name, rows in files.items():
        (folder / name).parent.mkdir(exist_ok=True)
        (folder / name).write_text("".join(json.dumps(r) + "\n" for r in rows))
    manifest = {
        "format": "chorus-dataset/1",
        "version": version,
        "seed": 1,
        "license": "cc-by-4.0",
        "stats": {"trees": len(trees)},
    }
    (folder / "export.json").write_text(json.dumps(manifest))
    return folder


@pytest.fixture(scope="session")
def small_export(tmp_path_factory) -> Path:
    from tests.conftest import SHARED_DATA

    path = SHARED_DATA / "oasst_en_100_trees.jsonl"
    if not path.exists():
        pytest.skip(f"the sample data {path} is absent (it lives in ../shared/data)")
    return write_export(sample_trees(path, SAMPLE_TREES), tmp_path_factory.mktemp("export") / "v7")


def word_tokenizer(texts: list[str]) -> Any:
    """A word-level tokenizer trained on `texts`, with a chat template: no download."""
    model = tokenizers.models.WordLevel(unk_token="<unk>")
    tokenizer = tokenizers.Tokenizer(model)
    tokenizer.pre_tokenizer = tokenizers.pre_tokenizers.Whitespace()
    trainer = tokenizers.trainers.WordLevelTrainer(vocab_size=3000, special_tokens=SPECIAL_TOKENS)
    tokenizer.train_from_iterator(texts, trainer=trainer)
    tokenizer.decoder = tokenizers.decoders.WordPiece(prefix="##")  # words joined by spaces
    wrapped = transformers.PreTrainedTokenizerFast(
        tokenizer_object=tokenizer, pad_token="<pad>", unk_token="<unk>", eos_token="<|end|>"
    )
    wrapped.chat_template = CHAT_TEMPLATE
    return wrapped


def build_tiny_model(folder: Path, texts: list[str], *, seed: int = 0) -> Path:
    """A randomly initialised two-layer Llama and its tokenizer, saved as a model folder."""
    tokenizer = word_tokenizer(texts)
    torch.manual_seed(seed)
    config = transformers.LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=1024,
        pad_token_id=tokenizer.pad_token_id,
        eos_token_id=tokenizer.eos_token_id,
        bos_token_id=None,
    )
    model = transformers.LlamaForCausalLM(config)
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


@pytest.fixture(scope="session")
def tiny_model(small_export, tmp_path_factory) -> Path:
    texts = []
    for config in ("sft", "preference"):
        for file in sorted((small_export / config).glob("*.jsonl")):
            texts += [file.read_text()]
    return build_tiny_model(tmp_path_factory.mktemp("models") / "tiny", texts)


class RunningServer:
    def __init__(self, app: Any) -> None:
        import uvicorn

        self.server = uvicorn.Server(
            uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="off")
        )
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> str:
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            assert time.monotonic() < deadline, "the server did not start"
            time.sleep(0.01)
        port = self.server.servers[0].sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{port}"

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


def serve_in_thread(model_dir: str | Path, **settings: Any) -> Iterator[tuple[str, Any]]:
    """(base URL, engine) of a server for `model_dir` running in this process."""
    from ml.base_model import load_model, load_tokenizer
    from ml.engine import Engine
    from ml.serve import ServeConfig, create_app

    config = ServeConfig(model=str(model_dir), **settings)
    engine = Engine(
        load_model(config.model), load_tokenizer(config.model), max_batch=config.max_batch
    )
    engine.start()
    try:
        with RunningServer(create_app(engine, name="chorus-test", config=config)) as url:
            yield url, engine
    finally:
        engine.stop()
