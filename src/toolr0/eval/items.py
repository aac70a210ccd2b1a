"""Evaluation items: :class:`EvalItem` (one sample of any benchmark), fixed seeded subsets, and the per-item
results file of an evaluation folder (``items.jsonl``): read it, repair a torn end.

Light on purpose (no model, no benchmark loading) so that reports and paired comparisons can read results
without importing the runner. A resumed run may hold several rows for one id: the last one wins.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from toolr0.core.schema import Tool, ToolCall
from toolr0.io import atomic_write_text, read_jsonl

ITEMS_FILE = "items.jsonl"
# Paper benchmarks that cannot be obtained offline (spec §12.3): always reported as "n/a (offline)".
OFFLINE_BENCHMARKS: dict[str, str] = {"nexusraven": "NexusRaven", "snips": "SNIPS"}


@dataclass
class EvalItem:
    """One evaluation sample: a question, a normalised menu and the gold calls (empty = no call expected)."""

    id: str
    benchmark: str
    index: int
    question: str
    tools: list[Tool]
    gold: list[ToolCall]
    meta: dict[str, Any] = field(default_factory=dict)


def subset_indices(n: int, limit: int | None, seed: int, key: str) -> list[int]:
    """Fixed seeded subset of ``range(n)``: the first ``limit`` of a seeded permutation, returned sorted.

    Seeded by a string (deterministic across processes), so the same items come back every time, and a larger
    limit contains every item of a smaller one (results of a quick run are reused by a bigger one).
    """
    if limit is None or limit >= n:
        return list(range(n))
    perm = list(range(n))
    random.Random(f"toolr0-eval:{seed}:{key}").shuffle(perm)
    return sorted(perm[: max(0, limit)])


def select_subset(items: list[EvalItem], limit: int | None, seed: int = 0) -> list[EvalItem]:
    """Seeded subset of one benchmark's items (see :func:`subset_indices`)."""
    if not items:
        return []
    key = items[0].benchmark
    return [items[i] for i in subset_indices(len(items), limit, seed, key)]


def load_rows(folder: str | Path) -> dict[str, dict[str, Any]]:
    """Rows of ``<folder>/items.jsonl`` by id (a later row for the same id wins; empty when absent)."""
    return {
        str(r["id"]): r for r in read_jsonl(Path(folder) / ITEMS_FILE) if isinstance(r, dict) and "id" in r
    }


def repair_items_file(path: Path) -> None:
    """Cut a torn last line (a writer killed mid-line), so the next append starts on a fresh line."""
    if not path.is_file():
        return
    data = path.read_bytes()
    if data and not data.endswith(b"\n"):
        atomic_write_text(path, data[: data.rfind(b"\n") + 1].decode("utf-8", errors="replace"))
