"""The figures of one export, gathered tree by tree as it streams (pure code).

Memory grows with the number of distinct authors (to count contributors), languages and
label names, never with the number of messages.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from backend.exports.formats import SPLITS, FormattedTree, Id

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

    def exclude(self, excluded: Counter[str], *, whole_tree: bool) -> None:
        self.excluded.update(excluded)
        self.trees_excluded += whole_tree

    def add(self, tree: FormattedTree) -> None:
        self.trees += 1
        counts = self.splits[tree.split]
        counts["trees"] += 1
        counts["messages"] += len(tree.messages)
        counts["sft"] += len(tree.sft)
        counts["preference"] += len(tree.preference)
        rows = tree.rows
        self.messages += len(rows)
        # One pass with everything in locals: this runs once per message of an export.
        langs, roles, contributors = self.langs, self.roles, self.contributors
        label_sums, label_messages = self.label_sums, self.label_messages
        ranked = synthetic = agreement_sets = 0
        agreement_sum = self.agreement_sum  # summed in the same order as ever: same float
        for row in rows:
            langs[row.lang] += 1
            roles[row.role] += 1
            if row.rank is not None:
                ranked += 1
            if row.synthetic:
                synthetic += 1
            # Distinct authors have distinct anonymised ids: counted before hashing.
            if row.author_id is not None:
                contributors.add(row.author_id)
            # Plain dict reads and writes: Counter.update and a defaultdict's missing keys
            # go through Python code, a dozen times per message here.
            for name, label in row.labels.items():
                if name in label_sums:
                    label_sums[name] += float(label.get("value", 0.0))
                    label_messages[name] += 1
                else:
                    label_sums[name] = 0.0 + float(label.get("value", 0.0))  # as before
                    label_messages[name] = 1
            if row.replies_agreement is not None:
                agreement_sum += row.replies_agreement
                agreement_sets += 1
        self.ranked += ranked
        self.synthetic += synthetic
        self.agreement_sum = agreement_sum
        self.agreement_sets += agreement_sets

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
