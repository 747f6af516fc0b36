"""The model card of every trained model folder: `README.md` (Hugging Face model card) and
`chorus.json` (the same facts for programs): the base model, the dataset version it was
trained on, the settings, and the evaluation before and after training."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ml.evaluate import format_table

INFO_FILE = "chorus.json"


def read_info(model: str | None) -> dict[str, Any]:
    """The `chorus.json` of a model folder trained here, or {} for any other model."""
    if model is None or not (Path(model) / INFO_FILE).is_file():
        return {}
    data = json.loads((Path(model) / INFO_FILE).read_text(encoding="utf-8"))
    return data if isinstance(data, dict) else {}


def write_card(folder: Path, info: dict[str, Any]) -> None:
    """Write `chorus.json` and `README.md` into a trained model folder."""
    (folder / INFO_FILE).write_text(
        json.dumps(info, indent=2, ensure_ascii=False, default=str) + "\n", encoding="utf-8"
    )
    (folder / "README.md").write_text(render_card(info), encoding="utf-8")


def render_card(info: dict[str, Any]) -> str:
    dataset = info.get("dataset", {})
    version = dataset.get("version")
    stage = info.get("stage", "sft")
    lines = [
        "---",
        f"base_model: {json.dumps(info.get('base_model'))}",
        "library_name: transformers",
        "pipeline_tag: text-generation",
        "tags:",
        "- chorus",
        f"- {stage}",
        "- trl",
        "---",
        "",
        f"# {info.get('name', 'Chorus model')}",
        "",
        f"A chat model trained with `python -m ml train {stage}` (TRL "
        f"{info.get('versions', {}).get('trl', '?')}) on a Chorus dataset export.",
        "",
        f"- Base model: `{info.get('base_model')}`",
        f"- Trained from: `{info.get('trained_from')}`",
        f"- Dataset: Chorus export version {version if version is not None else 'unknown'} "
        f"(`{dataset.get('path')}`), seed {dataset.get('seed', 'unknown')}, "
        f"license {dataset.get('license', 'unknown')}",
    ]
    stats = dataset.get("stats") or {}
    if stats:
        lines.append(
            "- Dataset figures: " + ", ".join(f"{key} {value}" for key, value in stats.items())
        )
    lines += ["", "## Settings", "", "```json"]
    lines += [json.dumps(info.get("settings", {}), indent=2, default=str), "```", ""]
    train = info.get("train_metrics") or {}
    if train:
        lines += ["## Training", ""]
        lines += [f"- {key}: {value}" for key, value in train.items()]
        lines.append("")
    evals = info.get("eval") or {}
    if evals:
        lines += [
            "## Evaluation",
            "",
            f"On the export's held-out `{next(iter(evals.values())).get('split')}` split "
            "(`python -m ml eval`):",
            "",
            "```",
            format_table(evals),
            "```",
            "",
        ]
    return "\n".join(lines)
