"""What the self-play loop records while it runs (docs/monitoring.md), kept out of `loop.py` so the loop reads
as the algorithm: each stage's wall time (`StageTimer`), stage B's counts, call kinds, p̂ histogram and sample
tables (`record_stage_b`), the training phases' per-step logs (`log_train`), into metrics.jsonl, TensorBoard
and `iter_XX/`.
"""

from __future__ import annotations

import time
from typing import Any

from toolr0.config import ToolR0Config
from toolr0.procmem import peak_rss_gb
from toolr0.selfplay.rundir import RunDir
from toolr0.selfplay.stages import Ctx, reason_counts


class StageTimer:
    """Records one stage's wall time in metrics.jsonl (and TensorBoard) when the stage finishes."""

    def __init__(self, ctx: Ctx, t: int, stage: str, tb: Any):
        self.ctx, self.t, self.stage, self.tb = ctx, t, stage, tb

    def __enter__(self) -> StageTimer:
        self.t0 = time.monotonic()
        return self

    def __exit__(self, exc_type: Any, *_: Any) -> None:
        wall = time.monotonic() - self.t0
        self.ctx.run.log_metric(
            {
                "event": "stage_time",
                "iteration": self.t,
                "stage": self.stage,
                "wall_s": round(wall, 3),
                "completed": exc_type is None,
                "peak_rss_gb": round(peak_rss_gb(), 2),  # the process's peak so far: which stage raised it
            }
        )
        if self.tb is not None:
            self.tb.add_scalar(f"time/{self.stage}", wall, self.t)


def _open_tb(run: RunDir) -> Any:
    from toolr0.selfplay.tb_log import open_writer

    return open_writer(run.tb_dir)


def open_tb(run: RunDir) -> Any:
    from toolr0.selfplay.tb_log import open_writer

    return open_writer(run.tb_dir)


def record_stage_b(
    ctx: Ctx, t: int, tb: Any, candidates: list, unique: list, crossed: list, labelled: list, selected: list
) -> None:
    """Stage B's counts (iter_XX/stage_counts.json, metrics.jsonl, TensorBoard) and its sample tables."""
    run = ctx.run
    counts = _stage_counts(candidates, unique, crossed, labelled, selected)
    stages = {"candidates": candidates, "verified": [r for r in candidates if r["ok"]], "unique": unique,
              "cross_verified": crossed, "labelled": labelled, "selected": selected}  # fmt: skip
    counts["calls"] = _call_kinds(stages)
    counts["derived_no_call"] = sum(1 for r in unique if r.get("derived_from"))  # loop.no_call_from_calls, loop.no_call_from_other_menus
    composed = _composed_counts(run, t, selected)  # loop.two_call_from_solved
    if composed is not None:
        counts["composed_two_call"] = composed
        pool = len(labelled) + composed["labelled"]
        counts["acceptance"]["select"] = round(len(selected) / pool, 4) if pool else None
    run.write_json(run.file(t, "stage_counts.json"), counts)
    run.log_metric(
        {"event": "stage_counts", "iteration": t, **{k: v for k, v in counts.items() if k != "reasons"}}
    )
    _tb_counts(tb, t, counts, labelled)
    _log_samples(ctx, t, tb, counts, stages)


def _composed_counts(run: RunDir, t: int, selected: list) -> dict[str, int] | None:
    """How many two-call tasks were composed from solved one-call tasks, solved, labelled and selected; None
    when none were composed this iteration."""
    from toolr0.core.compose_calls import COMPOSED_KEY
    from toolr0.io import read_jsonl

    path = run.file(t, "composed.jsonl")
    if not path.is_file():
        return None
    composed = list(read_jsonl(path))
    labels_path = run.file(t, "passrates_composed.jsonl")
    labels = list(read_jsonl(labels_path)) if labels_path.is_file() else []
    return {
        "composed": len(composed),
        "solved": sum(1 for r in labels if (r.get("p_hat") or 0) > 0),
        "labelled": sum(1 for r in labels if r.get("kept")),
        "selected": sum(1 for r in selected if ((r.get("task") or {}).get("meta") or {}).get(COMPOSED_KEY)),
    }


def cross_verify_line(cfg: ToolR0Config, kept: int, of: int) -> str:
    """The B3 line: what cross-verification kept, or that it did not run (`loop.cross_verify: false`)."""
    if not cfg.loop.cross_verify:
        return f"skipped (off): all {of} unique task(s) pass on"
    vc = cfg.frozen_solver.verify
    return f"{kept} kept of {of} (τ={vc.tau}, {vc.mode})"


def _call_kinds(stages: dict[str, list[dict[str, Any]]]) -> dict[str, dict[str, int]]:
    from toolr0.selfplay.funnel import FUNNEL_STAGES, call_kind_counts

    return call_kind_counts({k: stages[k] for k in FUNNEL_STAGES})


def _log_samples(ctx: Ctx, t: int, tb: Any, counts: dict[str, Any], stages: dict[str, list]) -> None:
    """The seeded sample of curriculum and rejected tasks (iter_XX/samples.md, linked from summary.md) and
    iteration t's funnel, p̂ histogram and sample tables in TensorBoard."""
    from toolr0.io import atomic_write_text, read_jsonl
    from toolr0.selfplay.funnel import iteration_sample
    from toolr0.selfplay.tb_log import log_stage_b

    run = ctx.run
    files = {}
    for key in ("dedup", "crossverify", "passrates"):
        path = run.file(t, f"{key}.jsonl")
        files[key] = list(read_jsonl(path)) if path.is_file() else []
    tables = iteration_sample(ctx.cfg.seed, t, stages, files, ctx.cfg.frozen_solver.verify.tau)
    atomic_write_text(run.file(t, "samples.md"), "\n".join(tables))
    p_all = [float(r["p_hat"]) for r in files["passrates"] if isinstance(r.get("p_hat"), int | float)]
    log_stage_b(tb, t, counts, p_all, tables)


def _stage_counts(
    candidates: list, unique: list, crossed: list, labelled: list, selected: list
) -> dict[str, Any]:
    from collections import Counter

    from toolr0.selfplay.report import no_call_counts

    ok = sum(r["ok"] for r in candidates)
    n = len(candidates)

    def rate(a: int, b: int) -> float | None:
        return round(a / b, 4) if b else None

    compliance = [r.get("details", {}) for r in candidates if r["ok"]]
    return {
        "generated": n,
        "verified": ok,
        "unique": len(unique),
        "cross_verified": len(crossed),
        "labelled": len(labelled),
        "selected": len(selected),
        "acceptance": {
            "verify": rate(ok, n),
            "dedup": rate(len(unique), ok),
            "cross_verify": rate(len(crossed), len(unique)),
            "difficulty": rate(len(labelled), len(crossed)),
            "select": rate(len(selected), len(labelled)),
            "overall": rate(len(selected), n),
        },
        "buckets": dict(Counter(r.get("difficulty") for r in selected)),
        "spec_compliance": {
            "menu_size_ok": sum(1 for d in compliance if d.get("menu_size_ok")),
            "num_calls_ok": sum(1 for d in compliance if d.get("num_calls_ok")),
            "of": len(compliance),
        },
        "no_call": no_call_counts(candidates, unique, crossed, labelled, selected),
        "reasons": reason_counts(candidates),
    }


def _tb_counts(tb: Any, t: int, counts: dict[str, Any], labelled: list) -> None:
    if tb is None:
        return
    for k in ("generated", "verified", "unique", "cross_verified", "labelled", "selected"):
        tb.add_scalar(f"counts/{k}", counts[k], t)
    for k, v in counts["acceptance"].items():
        if v is not None:
            tb.add_scalar(f"acceptance/{k}", v, t)
    p = [r["label"]["p_hat"] for r in labelled if r.get("label", {}).get("p_hat") is not None]
    if p:
        import numpy as np

        tb.add_histogram("passrate/p_hat", np.asarray(p, dtype=float), t)


def log_train(ctx: Ctx, t: int, role: str, res: dict[str, Any], tb: Any) -> None:
    """Per-step training logs (reward means etc.) into metrics.jsonl, TensorBoard and the live summary."""
    hist = res.get("log_history") or []
    for row in hist:
        ctx.run.log_metric({"event": "train_log", "iteration": t, "role": role, **row})
        step = row.get("step")
        if tb is not None and step is not None:
            for k, v in row.items():
                if isinstance(v, int | float) and k != "step":
                    tb.add_scalar(f"{role}/{k}", v, (t - 1) * 10_000 + int(step))
    ctx.run.log_metric(
        {
            "event": "train_end",
            "iteration": t,
            "role": role,
            **{k: v for k, v in res.items() if k not in ("log_history",)},
        }
    )
