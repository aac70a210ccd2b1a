"""Run plots read a training phase that is still running or was interrupted from its own metrics file."""

from __future__ import annotations

import json

from toolr0.selfplay.plots import rewards_per_step, train_logs
from toolr0.selfplay.rundir import RunDir


def _write(path, rows):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))


def test_train_logs_fall_back_to_phase_metrics(tmp_path):
    run = RunDir(tmp_path)
    done = {"event": "train_log", "iteration": 1, "role": "generator", "step": 1, "reward": 1.5}
    _write(run.metrics_path, [{"event": "run_start"}, done])
    # the generator phase was copied into the run log: its own file must not be read twice
    _write(run.file(1, "generator/metrics.jsonl"), [{"step": 1, "reward": 9.0}])
    # the solver phase was interrupted: only its own file has the steps (plus a row without a step)
    _write(run.file(1, "solver/metrics.jsonl"), [{"step": 1, "reward": 0.3}, {"step": 2, "reward": 0.5}, {"x": 1}])
    logs = train_logs(run)
    assert [(m["role"], m["step"], m["reward"]) for m in logs] == [
        ("generator", 1, 1.5),
        ("solver", 1, 0.3),
        ("solver", 2, 0.5),
    ]
    assert all(m["event"] == "train_log" and m["iteration"] == 1 for m in logs)
    out = rewards_per_step(run)
    assert out is not None and out.is_file() and out.stat().st_size > 0


def test_train_logs_empty_run(tmp_path):
    run = RunDir(tmp_path)
    assert train_logs(run) == [] and rewards_per_step(run) is None


def test_passk_k_reads_new_and_old_run_configs():
    from toolr0.selfplay.plots import passk_k

    assert passk_k({"frozen_solver": {"k": 5}, "loop": {}}) == 5
    assert passk_k({"solver_sampling": {"k": 4}, "loop": {}}) == 4  # a run saved before frozen_solver existed
    assert passk_k({"loop": {"k_passk": 6}}) == 6  # a run saved before solver_sampling existed
    assert passk_k({}) == 8


# --- clean-up: plots and report stay apart
def test_report_and_plots_do_not_import_each_other():
    import ast
    from pathlib import Path

    import toolr0.selfplay.plots as plots

    tree = ast.parse(Path(plots.__file__).read_text())
    imported = {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
    imported |= {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    assert "toolr0.selfplay.report" not in imported
