"""The dataset card (README.md): Hugging Face YAML metadata, then the figures, filters and
choices of the export in prose. Pure code; the same inputs give the same bytes, so the
card carries no date of the run.

The YAML is written by hand (there is no YAML library among the platform's dependencies):
every scalar from the data is a JSON string, which YAML reads as the same string.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from backend.exports.formats import SPLITS
from backend.exports.options import ExportOptions
from backend.exports.writer import PARQUET_FILE, TREES_FILE

# `datasets` reserves "all" for the union of splits; the whole-file trees config needs a name.
WHOLE_SPLIT = "full"
CONFIG_FILES = {
    "sft": "sft/{split}.jsonl",
    "preference": "preference/{split}.jsonl",
    "messages": "messages/{split}.jsonl.gz",
}


@dataclass(frozen=True)
class CardInput:
    version: int
    options: ExportOptions
    seed: int
    stats: Mapping[str, Any]
    rows: Mapping[str, int]  # rows per file written
    license: str
    previous_version: int | None = None
    previous_stats: Mapping[str, Any] | None = None


def configs(rows: Mapping[str, int]) -> list[tuple[str, list[tuple[str, str]]]]:
    """(config, [(split, path)]) for every file with rows, sft first as the default."""
    found = []
    for config, pattern in CONFIG_FILES.items():
        files = [(s, pattern.format(split=s)) for s in SPLITS if rows.get(pattern.format(split=s))]
        if files:
            found.append((config, files))
    if rows.get(TREES_FILE):
        found.append(("trees", [(WHOLE_SPLIT, TREES_FILE)]))
    return found


def _q(value: str) -> str:
    return json.dumps(value, ensure_ascii=False)


def _size_category(messages: int) -> str:
    for limit, name in ((1_000, "n<1K"), (10_000, "1K<n<10K"), (100_000, "10K<n<100K")):
        if messages < limit:
            return name
    return "100K<n<1M" if messages < 1_000_000 else "1M<n<10M"


def metadata(card: CardInput) -> list[str]:
    langs = [f"- {_q(lang)}" for lang in card.stats["languages"]]
    lines = ["---", f"license: {_q(card.license)}"]
    lines += ["language:", *langs] if langs else ["language: []"]
    lines += ["task_categories:", "- text-generation", "tags:"]
    lines += [f"- {tag}" for tag in ("sft", "dpo", "rlhf", "human-feedback", "conversations")]
    lines += ["size_categories:", f"- {_q(_size_category(card.stats['messages']))}"]
    lines += [f"pretty_name: {_q(f'Chorus conversations v{card.version}')}"]
    found = configs(card.rows)
    if found:
        lines.append("configs:")
    for index, (config, files) in enumerate(found):
        lines += [f"- config_name: {config}"] + (["  default: true"] if index == 0 else [])
        lines.append("  data_files:")
        for split, path in files:
            lines += [f"  - split: {split}", f"    path: {_q(path)}"]
    return [*lines, "---"]


def _files_section(card: CardInput) -> list[str]:
    lines = [
        "## Files",
        "",
        "| config | split | file | rows |",
        "|---|---|---|---|",
    ]
    for config, files in configs(card.rows):
        lines += [f"| {config} | {split} | `{path}` | {card.rows[path]} |" for split, path in files]
    lines += [
        f"| | | `{PARQUET_FILE}` | {card.rows.get(PARQUET_FILE, 0)} |",
        "",
        f"- `{TREES_FILE}`: one conversation tree per line in the OpenAssistant export "
        "format (read it with the `oasst-data` tools, or import it into Chorus).",
        f"- `{PARQUET_FILE}` and the `messages` config: one row per message; `emojis`, "
        "`labels` and `extra` are JSON text, `split` names the tree's split.",
        '- `sft`: `{"messages": [{"role": "user" | "assistant", "content"}]}`, each '
        "ending with an assistant turn.",
        '- `preference`: `{"prompt", "chosen", "rejected", "margin"}` in TRL\'s '
        "conversational format, for DPO and reward training.",
        "- `export.json`: the filters, seed and figures of this version.",
        "",
    ]
    return lines


def _statistics_section(stats: Mapping[str, Any]) -> list[str]:
    agreement = stats["mean_ranking_agreement"]
    langs = ", ".join(f"{lang} ({n})" for lang, n in stats["languages"].items()) or "none"
    lines = [
        "## Statistics",
        "",
        f"- Trees: {stats['trees']}; messages: {stats['messages']} "
        f"({', '.join(f'{r} {n}' for r, n in stats['roles'].items()) or 'none'})",
        f"- Languages (messages): {langs}",
        f"- Contributors (distinct anonymised authors): {stats['contributors']}",
        f"- Ranked messages: {stats['ranked_messages']}; synthetic (model-written) messages: "
        f"{stats['synthetic_messages']}",
        "- Mean ranking agreement (Kendall's W per ranked sibling set): "
        + (
            "not recorded"
            if agreement is None
            else f"{agreement} over {stats['ranked_sets_with_agreement']} sets"
        ),
        f"- SFT conversations: {stats['sft']}; preference pairs: {stats['preference']}",
        "",
    ]
    if stats["labels"]:
        lines += ["| label | mean | messages |", "|---|---|---|"]
        lines += [f"| {n} | {v['mean']} | {v['messages']} |" for n, v in stats["labels"].items()]
        lines.append("")
    return lines


def _filters_section(options: ExportOptions, stats: Mapping[str, Any]) -> list[str]:
    labels = ", ".join(f"{name} <= {limit}" for name, limit in options.max_labels)
    agreement = options.min_agreement
    lines = [
        "## Filters",
        "",
        "A message that fails a filter is left out together with all its replies.",
        "",
        f"- Tree states: {', '.join(options.states)}",
        f"- Languages (of the root prompt): {', '.join(options.langs) or 'all'}",
        "- Review: " + ("accepted messages only" if options.review == "accepted" else "any"),
        f"- Deleted messages: {'included' if options.include_deleted else 'excluded'}",
        f"- Synthetic messages: {'included' if options.include_synthetic else 'excluded'}",
        f"- Label means at most: {labels or 'no limit'}",
        f"- Created since: {options.since.isoformat() if options.since else 'any time'}",
        f"- Created before: {options.until.isoformat() if options.until else 'any time'}",
        "- Minimum ranking agreement for preference pairs: "
        + ("none" if agreement is None else f"{agreement} (sets without one are kept)"),
        "- Always: messages taken down for good, and those of people who withdrew their "
        "consent to publication.",
        "",
    ]
    if stats["excluded"]:
        lines.append("Messages left out, by reason (with their replies):")
        lines += [f"- {reason}: {n}" for reason, n in stats["excluded"].items()]
        lines.append("")
    return lines


def _choices_section(card: CardInput) -> list[str]:
    o = card.options
    policy = {
        "best": "`best`: one conversation per tree, taking at every branch the best-ranked "
        "reply (rank 0), else the earliest accepted one.",
        "all": "`all`: every root-to-leaf path, cut after its last assistant message; each "
        "such path once.",
    }[o.branch_policy]
    return [
        "## Splits and branches",
        "",
        f"Splits are by tree: a tree's id hashed with the seed {card.seed} decides its split "
        f"(train {round(o.train, 6)}, validation {o.validation}, test {o.test}), so no "
        "conversation is in two splits, and the same seed keeps each tree in its split "
        "across versions.",
        "",
        f"SFT branch policy {policy}",
        "",
        "Preference pairs come from every pair of ranked assistant replies to one message, "
        "the better-ranked one chosen; `margin` is the difference of their consensus "
        "strengths (Bradley-Terry shares) when known, else of their ranks. Pairs the "
        "consensus does not separate are left out.",
        "",
        "User ids are replaced by salted hashes drawn anew for every export: stable within "
        "this version, not linkable across versions or to accounts.",
        "",
    ]


def _changes_section(card: CardInput) -> list[str]:
    taken_down = card.stats.get("takedowns_since_previous", 0)
    if card.previous_version is None or card.previous_stats is None:
        return ["## Changes", "", "This is the first version.", ""]
    before = card.previous_stats
    lines = [
        f"## Changes since v{card.previous_version}",
        "",
        f"| | v{card.previous_version} | v{card.version} |",
        "|---|---|---|",
    ]
    for key in ("trees", "messages", "sft", "preference", "contributors"):
        lines.append(f"| {key} | {before.get(key, 0)} | {card.stats[key]} |")
    lines += [
        "",
        f"Messages taken down since v{card.previous_version}: {taken_down} (each removed "
        "with its replies, from this and every later version).",
        "",
    ]
    return lines


def render_card(card: CardInput) -> str:
    lines = [
        *metadata(card),
        "",
        f"# Chorus conversations, v{card.version}",
        "",
        "Assistant conversations written, reviewed and ranked by Chorus volunteers, as "
        "conversation trees and as ready-made SFT and preference data.",
        "",
        *_files_section(card),
        *_statistics_section(card.stats),
        *_filters_section(card.options, card.stats),
        *_choices_section(card),
        *_changes_section(card),
        "## Licence",
        "",
        f"Released under `{card.license}`.",
        "",
    ]
    return "\n".join(lines)
