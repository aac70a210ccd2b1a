"""Stage B's side of in-prompt references (``loop.references``; the pure part is ``core/references.py``): the pool
built from recorded candidate rows, and the frozen Solver's probe of each batch's verified call tasks."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from toolr0.core.references import Reference, reference_from_completion, select_pool
from toolr0.selfplay.rundir import RunDir
from toolr0.selfplay.seam import FrozenSolver


def earlier_candidates(run: RunDir, t: int) -> list[dict[str, Any]]:
    """The probed candidate rows of iterations before t (their solved tasks stay references)."""
    from toolr0.io import read_jsonl

    out: list[dict[str, Any]] = []
    for s in range(1, t):
        path = run.file(s, "candidates.jsonl")
        if path.exists():
            out.extend(r for r in read_jsonl(path) if "probe_p_hat" in r)
    return out


def reference_pool(rows: list[dict[str, Any]]) -> list[Reference]:
    """The references among candidate rows: verified call tasks with a probe p̂, by ``core.references.select_pool``."""
    solved = []
    for r in rows:
        p, task, spec = r.get("probe_p_hat"), r.get("task"), r.get("spec") or {}
        if p is None or not r.get("ok") or not task:
            continue
        ref = reference_from_completion(
            r.get("text"), spec.get("domain", ""), spec.get("menu_size", 0), len(task.get("calls") or [])
        )
        if ref is not None:
            solved.append((ref, float(p)))
    return select_pool(solved)


def probe_batch(solver: Callable[[], FrozenSolver], new: list[dict[str, Any]], seed: int) -> None:
    """The frozen Solver's pass@K on a batch's verified call tasks, written into their rows as ``probe_p_hat``
    (the reference pool's source; the difficulty stage measures p̂ again, on its own seeds). ``solver`` is
    called only when there is a task to probe."""
    calls = [r for r in new if r["ok"] and r["task"] and r["task"].get("calls")]
    if not calls:
        return
    res = solver().pass_rates_detailed([r["task"] for r in calls], seed=seed)
    for row, r in zip(calls, res, strict=True):
        row["probe_p_hat"] = float(r.p_hat)
