"""The loop's record of one finished GRPO phase, from a `training.run.TrainResult` (in-process) or the role
folder's `summary.json` (a child process): checkpoint, steps, timings and the mean of every reward."""

from __future__ import annotations

from typing import Any


def reward_means(history: list[dict[str, Any]]) -> dict[str, float]:
    """Mean over the logged steps of the total reward and each reward function (TRL log keys)."""
    sums: dict[str, list[float]] = {}
    for row in history:
        for k, v in row.items():
            if not isinstance(v, int | float):
                continue
            if k == "reward":
                sums.setdefault("total", []).append(float(v))
            elif k.startswith("rewards/") and k.endswith("/mean"):
                sums.setdefault(k[len("rewards/") : -len("/mean")], []).append(float(v))
    return {k: sum(v) / len(v) for k, v in sums.items() if v}


def train_record(res: Any) -> dict[str, Any]:
    """`res`: anything with the `TrainResult` attributes."""
    hist = [dict(r) for r in (res.log_history or []) if "train_runtime" not in r]
    return {
        "checkpoint": res.final_dir,
        "steps": res.global_step,
        "start_step": res.start_step,
        "resumed_from": res.resumed_from,
        "seconds": round(res.seconds, 2),
        "seconds_per_step": res.seconds_per_step,
        "peak_rss_gb": round(res.peak_rss_gb, 2),
        "precision": res.precision,
        "reward_means": reward_means(hist),
        "log_history": hist,
    }
