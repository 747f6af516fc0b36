"""The figures of one export, gathered batch by batch as it streams (pure code).

Memory grows with the number of distinct authors (to count contributors), languages and
label names, never with the number of messages.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import orjson
import polars as pl

from backend.exports.formats import SPLITS, Id
from backend.exports.frames import LABEL_NAMES, Batch

CATALOGUE_NAMES = frozenset(LABEL_NAMES)
# Means in the stats are rounded so the manifest and card stay short and byte-stable.
DECIMALS = 4


class StatsCollector:
    def __init__(self) -> None:
        self.trees = 0
        self.messages = 0
        self.splits: dict[str, Counter[str]] = {split: Counter() for split in SPLITS}
        self.langs: Counter[str] = Counter()
        self.roles: Counter[str] = Counter()
        self.ranked = 0
        self.synthetic = 0
        self.contributors: set[Id] = set()
        self.label_sums: dict[str, float] = {}
        self.label_messages: dict[str, int] = {}
        self.agreement_sum = 0.0
        self.agreement_sets = 0
        self.excluded: Counter[str] = Counter()
        self.trees_excluded = 0

    def add_batch(self, batch: Batch) -> None:
        """The figures of a batch of trees (frames.shape), by column operations."""
        kept = batch.kept
        assert kept is not None
        self.trees += sum(batch.trees_by_split.values())
        self.messages += kept.height
        self.excluded.update(batch.excluded)
        self.trees_excluded += batch.trees_excluded
        for split in SPLITS:
            counts = self.splits[split]
            for name, count in (
                ("trees", batch.trees_by_split.get(split, 0)),
                ("messages", batch.flat_lines[split].count),
                ("sft", batch.sft_lines[split].count),
                ("preference", batch.preference_lines[split].count),
            ):
                if count:
                    counts[name] += count
        self.langs.update(dict(kept.group_by("lang").len().iter_rows()))
        self.roles.update(dict(kept.group_by("role").len().iter_rows()))
        self.contributors.update(kept["author_id"].drop_nulls().unique().to_list())
        columns = [f"label_{name}" for name in LABEL_NAMES]
        sums = kept.select(
            ranked=pl.col("rank").is_not_null().sum(),
            synthetic=pl.col("synthetic").sum(),
            agreement_sum=pl.col("replies_agreement").sum(),
            agreement_sets=pl.col("replies_agreement").is_not_null().sum(),
            **{f"sum_{c}": pl.col(c).sum() for c in columns},
            **{f"count_{c}": pl.col(c).is_not_null().sum() for c in columns},
        ).row(0, named=True)
        self.ranked += sums["ranked"]
        self.synthetic += sums["synthetic"]
        self.agreement_sum += sums["agreement_sum"] or 0.0
        self.agreement_sets += sums["agreement_sets"]
        for name, column in zip(LABEL_NAMES, columns, strict=True):
            if sums[f"count_{column}"]:
                self._add_label(name, sums[f"sum_{column}"], sums[f"count_{column}"])
        # Labels named outside the catalogue (imported) have no column: read from JSON.
        for text in kept.filter(pl.col("other_labels"))["labels"]:
            for name, label in orjson.loads(text).items():
                if name not in CATALOGUE_NAMES:
                    self._add_label(name, float(label.get("value", 0.0)), 1)

    def _add_label(self, name: str, total: float, count: int) -> None:
        self.label_sums[name] = self.label_sums.get(name, 0.0) + total
        self.label_messages[name] = self.label_messages.get(name, 0) + count

    def to_json(self) -> dict[str, Any]:
        sets = self.agreement_sets
        return {
            "trees": self.trees,
            "messages": self.messages,
            "splits": {s: dict(sorted(c.items())) for s, c in self.splits.items() if c},
            "sft": sum(c["sft"] for c in self.splits.values()),
            "preference": sum(c["preference"] for c in self.splits.values()),
            "languages": dict(sorted(self.langs.items())),
            "roles": dict(sorted(self.roles.items())),
            "ranked_messages": self.ranked,
            "synthetic_messages": self.synthetic,
            "contributors": len(self.contributors),
            "labels": {
                name: {
                    "mean": round(self.label_sums[name] / count, DECIMALS),
                    "messages": count,
                }
                for name, count in sorted(self.label_messages.items())
            },
            "mean_ranking_agreement": round(self.agreement_sum / sets, DECIMALS) if sets else None,
            "ranked_sets_with_agreement": sets,
            "excluded": dict(sorted(self.excluded.items())),
            "trees_excluded": self.trees_excluded,
        }
