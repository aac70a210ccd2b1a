"""The per-item results file of an evaluation folder (``items.jsonl``): read it, repair a torn end.

Light on purpose (no model, no benchmark loading) so that reports and paired comparisons can read results
without importing the runner. A resumed run may hold several rows for one id: the last one wins.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from toolr0.io import atomic_write_text, read_jsonl

ITEMS_FILE = "items.jsonl"


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
