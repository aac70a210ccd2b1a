"""Plots of a run (matplotlib, Agg): pass-rate histogram per iteration, rewards per step for both roles,
acceptance per filtering stage. Written atomically (render to a temp file, then rename).

A leaf module: it reads the run directory itself (the small readers below are shared with
:mod:`toolr0.selfplay.report`, which imports this module, never the other way round). matplotlib is
imported inside the plotting functions, so importing this module never needs it.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

from toolr0.io import read_jsonl
from toolr0.selfplay.rundir import RunDir

COUNT_KEYS = ("generated", "verified", "unique", "cross_verified", "labelled", "selected")


def iterations(run: RunDir) -> list[int]:
    """Numbers of the run's ``iter_XX`` folders, ascending."""
    out = []
    for p in sorted(run.root.glob("iter_*")):
        try:
            out.append(int(p.name.split("_")[1]))
        except (IndexError, ValueError):
            continue
    return out


def load_passrates(run: RunDir, t: int) -> list[float]:
    """The frozen Solver's p̂ of every task of iteration ``t`` (``passrates.jsonl``)."""
    return [
        float(r["p_hat"]) for r in read_jsonl(run.file(t, "passrates.jsonl")) if r.get("p_hat") is not None
    ]


def _save(fig: Any, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=".png", dir=path.parent)
    os.close(fd)
    try:
        fig.savefig(tmp, dpi=110, bbox_inches="tight")
        os.chmod(tmp, 0o644)  # mkstemp creates 0600; plots are for sharing
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def passk_k(saved: dict[str, Any]) -> int:
    """K of a run's saved config: `frozen_solver.k`, or `solver_sampling.k` / `loop.k_passk` in a run saved
    before that section."""
    k = (
        saved.get("frozen_solver", {}).get("k")
        or saved.get("solver_sampling", {}).get("k")
        or saved.get("loop", {}).get("k_passk")
    )
    return int(k or 8)


def passrate_hist(run: RunDir, t: int) -> Path | None:
    """iter_XX/passrate_hist.png: the frozen Solver's p̂ over the cross-verified tasks, band marked."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    p = load_passrates(run, t)
    fig, ax = plt.subplots(figsize=(5, 3.2))
    k = max(1, passk_k(run_config(run)))
    bins = [(i - 0.5) / k for i in range(k + 2)]
    ax.hist(p, bins=bins, color="#4c72b0", edgecolor="white")
    cur = run_config(run).get("curriculum", {})
    ax.axvspan(
        cur.get("medium_low", 0.25),
        cur.get("medium_high", 0.75),
        color="orange",
        alpha=0.15,
        label="medium band",
    )
    ax.set_xlim(-0.05, 1.05)
    ax.set_xlabel("Solver pass rate p̂ (pass@K)")
    ax.set_ylabel("tasks")
    ax.set_title(f"iteration {t}: {len(p)} cross-verified tasks")
    ax.legend(loc="upper right", fontsize=8)
    out = run.file(t, "passrate_hist.png")
    _save(fig, out)
    plt.close(fig)
    return out


def run_config(run: RunDir) -> dict[str, Any]:
    if run.state.get("config"):
        return run.state["config"]
    if run.state_path.is_file():
        return json.loads(run.state_path.read_text()).get("config", {})
    return {}


def train_logs(run: RunDir) -> list[dict[str, Any]]:
    """``train_log`` events of the run, in iteration order; a phase still running or interrupted (its rows not
    yet copied into the run's metrics.jsonl) is read from its own ``iter_XX/<role>/metrics.jsonl``."""
    logged = [m for m in run.metrics() if m.get("event") == "train_log"]
    seen = {(int(m.get("iteration", 1)), m.get("role")) for m in logged}
    for p in sorted(run.root.glob("iter_*/*/metrics.jsonl")):
        try:
            t, role = int(p.parent.parent.name.split("_")[1]), p.parent.name
        except (IndexError, ValueError):
            continue
        if role in ("generator", "solver") and (t, role) not in seen:
            logged += [
                {**row, "event": "train_log", "iteration": t, "role": role}
                for row in read_jsonl(p)
                if isinstance(row, dict) and row.get("step") is not None
            ]
    return sorted(logged, key=lambda m: int(m.get("iteration", 1)))


def rewards_per_step(run: RunDir) -> Path | None:
    """plots/rewards.png: reward (total and per function) per training step, both roles, all iterations."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    series: dict[str, dict[str, list[tuple[int, float]]]] = {"generator": {}, "solver": {}}
    offsets: dict[str, int] = {"generator": 0, "solver": 0}
    last_iter: dict[str, int] = {}
    for m in train_logs(run):
        if m.get("event") != "train_log" or m.get("role") not in series:
            continue
        role = m["role"]
        it = int(m.get("iteration", 1))
        if last_iter.get(role) not in (None, it):
            offsets[role] = max((x for s in series[role].values() for x, _ in s), default=0)
        last_iter[role] = it
        step = m.get("step")
        if step is None:
            continue
        for k, v in m.items():
            if (
                (k == "reward" or k.startswith("rewards/"))
                and k.endswith(("reward", "/mean"))
                and isinstance(v, int | float)
            ):
                series[role].setdefault(k, []).append((offsets[role] + int(step), float(v)))
    if not any(series.values()):
        return None
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.4))
    for ax, role in zip(axes, ("generator", "solver"), strict=True):
        for k, pts in sorted(series[role].items()):
            ax.plot(
                [x for x, _ in pts], [y for _, y in pts], marker="o", ms=3, label=k.replace("rewards/", "")
            )
        ax.set_title(f"{role} rewards per step")
        ax.set_xlabel("optimizer step (all iterations)")
        if series[role]:
            ax.legend(fontsize=7)
    out = run.plots_dir / "rewards.png"
    _save(fig, out)
    plt.close(fig)
    return out


def acceptance(run: RunDir) -> Path | None:
    """plots/acceptance.png: tasks surviving each stage, one line per iteration (log scale)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.4))
    drawn = False
    for t in iterations(run):
        p = run.file(t, "stage_counts.json")
        if not p.is_file():
            continue
        c = json.loads(p.read_text())
        ax.plot(
            list(COUNT_KEYS), [max(c.get(k, 0), 0.8) for k in COUNT_KEYS], marker="o", label=f"iteration {t}"
        )
        drawn = True
    if not drawn:
        plt.close(fig)
        return None
    ax.set_yscale("log")
    ax.set_ylabel("tasks (log)")
    ax.set_title("tasks surviving each stage")
    ax.tick_params(axis="x", labelrotation=30)
    ax.legend(fontsize=8)
    out = run.plots_dir / "acceptance.png"
    _save(fig, out)
    plt.close(fig)
    return out


def write_plots(run: RunDir, upto: int | None = None) -> list[Path]:
    """Every plot of the run (iterations after `upto` are skipped: they are still in progress)."""
    out = [
        passrate_hist(run, t)
        for t in iterations(run)
        if (upto is None or t <= upto) and run.file(t, "stage_counts.json").exists()
    ]
    out.append(rewards_per_step(run))
    out.append(acceptance(run))
    return [p for p in out if p is not None]
