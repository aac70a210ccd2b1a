"""The run's TensorBoard beyond the training scalars: the stage funnel, the frozen Solver's p̂ histograms and
the sample-task tables (docs/monitoring.md lists every tag).

TensorBoard's writer comes from torch (`torch.utils.tensorboard`) and numpy feeds its histograms; both are
imported inside the functions, so the selfplay layer still never loads torch at import. Every function takes
the writer the loop opened (None when TensorBoard is not installed: then they do nothing).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from toolr0.io import read_jsonl
from toolr0.selfplay.funnel import CALL_KINDS

PHASE_A_STEP = 10_000  # phase-A step s of iteration t is logged at (t - 1) * PHASE_A_STEP + s, as the scalars


def open_writer(log_dir: str | Path) -> Any:
    """A `SummaryWriter` on `log_dir`, or None when TensorBoard (or torch) is not installed."""
    try:
        from torch.utils.tensorboard import SummaryWriter
    except Exception:  # noqa: BLE001 - TensorBoard is optional
        return None
    return SummaryWriter(log_dir=str(log_dir))


def _histogram(tb: Any, tag: str, values: list[float], step: int) -> None:
    import numpy as np

    tb.add_histogram(tag, np.asarray(values, dtype=float), step, bins=np.linspace(0.0, 1.0, 11))


def log_stage_b(
    tb: Any, t: int, counts: dict[str, Any], p_hat_all: list[float], tables: tuple[str, str]
) -> None:
    """Iteration t's funnel beyond `counts/*`: rejections by reason, call kinds per stage, the p̂ of every task
    pass@K measured (`p_hat/stage_b`), and the curriculum / rejected sample tables as text."""
    if tb is None:
        return
    for reason, n in (counts.get("reasons") or {}).items():
        tb.add_scalar(f"rejected/{reason}", n, t)
    for stage, kinds in (counts.get("calls") or {}).items():
        for kind in CALL_KINDS:
            tb.add_scalar(f"calls/{kind}/{stage}", kinds.get(kind, 0), t)
    if p_hat_all:
        _histogram(tb, "p_hat/stage_b", p_hat_all, t)
    curriculum, rejected = tables
    tb.add_text("samples/curriculum", curriculum, t)
    tb.add_text("samples/rejected", rejected, t)
    tb.flush()


def phase_a_p_hat(role_dir: str | Path) -> dict[int, list[float]]:
    """{step: p̂ values} of one Generator phase, from `p_hat.jsonl` and its `p_hat.rank<N>.jsonl` siblings
    (the reward functions' record); a step written twice (a resumed phase redid it) keeps its last row."""
    out: dict[int, list[float]] = {}
    for path in sorted(Path(role_dir).glob("p_hat*.jsonl")):
        last: dict[int, list[float]] = {}
        for row in read_jsonl(path):
            if isinstance(row, dict) and isinstance(row.get("step"), int):
                last[row["step"]] = [float(v) for v in row.get("p_hat") or []]
        for step, values in last.items():
            out.setdefault(step, []).extend(values)
    return dict(sorted(out.items()))


def log_phase_a(tb: Any, t: int, role_dir: str | Path) -> int:
    """The frozen Solver's p̂ on the Generator's valid samples, one histogram per phase-A step
    (`p_hat/phase_a`); returns the number of steps logged."""
    if tb is None:
        return 0
    steps = phase_a_p_hat(role_dir)
    for step, values in steps.items():
        if values:
            _histogram(tb, "p_hat/phase_a", values, (t - 1) * PHASE_A_STEP + step)
    tb.flush()
    return len(steps)
