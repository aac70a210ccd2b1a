"""Run directory, resume state, batch-resumable JSONL, fault hook, dry-run plan and CLI (no model needed)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from toolr0.config import ToolR0Config, config_to_dict, dump_config, load_config
from toolr0.core.seeds import derive_seed
from toolr0.errors import ConfigError, ToolR0Error
from toolr0.selfplay.plan import CPU_FP32_SLOWDOWN, build_plan, model_billions, plan_total
from toolr0.selfplay.report import summary_markdown, summary_rows
from toolr0.selfplay.rundir import BatchLog, InjectedFault, RunDir, maybe_fault

ROOT = Path(__file__).resolve().parents[1]


def _open(path: Path, cfg: ToolR0Config | None = None) -> tuple[RunDir, bool]:
    cfg = cfg or ToolR0Config()
    run = RunDir(path)
    return run, run.open(config_to_dict(cfg), dump_config(cfg))


def test_batchlog_drops_partial_batch_and_torn_line(tmp_path):
    p = tmp_path / "x.jsonl"
    log = BatchLog(p, lambda b: max(0, min(3, 7 - 3 * b)))  # batches of 3, 3, 1
    log.append(0, [{"i": 0}, {"i": 1}, {"i": 2}])
    log.append(1, [{"i": 3}, {"i": 4}])  # killed after 2 of 3 rows
    with open(p, "a") as fh:
        fh.write('{"i": 5, "bat')  # and a torn line
    rows, done = log.load()
    assert done == 1 and [r["i"] for r in rows] == [0, 1, 2]
    assert p.read_text().count("\n") == 3  # repaired on disk: appending continues cleanly
    log.append(1, [{"i": 3}, {"i": 4}, {"i": 5}])
    log.append(2, [{"i": 6}])
    rows, done = log.load()
    assert done == 3 and [r["i"] for r in rows] == list(range(7))
    assert BatchLog(tmp_path / "none.jsonl", lambda b: 1).load() == ([], 0)


def test_rundir_state_and_resume(tmp_path):
    run, resumed = _open(tmp_path / "r")
    assert not resumed and (run.root / "config.yaml").is_file()
    assert load_config(run.root / "config.yaml") == ToolR0Config()  # config.yaml is the resolved config
    run.mark_done(1, "generate")
    run.mark_done(1, "solver_train", "empty curriculum")
    run.set_checkpoint("solver", 1, run.checkpoint_dir(1, "solver") / "final")
    state = json.loads(run.state_path.read_text())
    assert state["checkpoints"]["solver"]["1"] == "iter_01/solver/final"  # relative: the run dir can move
    run2, resumed = _open(tmp_path / "r")
    assert resumed and run2.is_done(1, "generate") and not run2.is_done(2, "generate")
    assert run2.skipped_reason(1, "solver_train") == "empty curriculum"
    assert run2.checkpoint("solver", 3) == str(run2.root / "iter_01" / "solver" / "final")
    assert run2.checkpoint("generator", 3) is None
    # extending the number of iterations is allowed, any other change is refused with the changed keys
    _open(tmp_path / "r", load_config(None, ["loop.iterations=5"]))
    with pytest.raises(ConfigError, match=r"\bseed\b"):
        _open(tmp_path / "r", load_config(None, ["seed=1"]))


def test_rundir_refuses_foreign_folder(tmp_path):
    d = tmp_path / "busy"
    d.mkdir()
    (d / "notes.txt").write_text("x")
    with pytest.raises(ToolR0Error, match="not a toolr0 run"):
        _open(d)


def test_fault_hook(monkeypatch):
    monkeypatch.setenv("TOOLR0_FAULT", "generate:2, difficulty:1")
    maybe_fault("generate", 1)
    with pytest.raises(InjectedFault):
        maybe_fault("generate", 2)
    with pytest.raises(InjectedFault):
        maybe_fault("difficulty", 1)
    monkeypatch.delenv("TOOLR0_FAULT")
    maybe_fault("generate", 2)


def test_seeds_are_stable_and_distinct():
    assert derive_seed(13, 1, "gen", 0) == derive_seed(13, 1, "gen", 0)
    assert len({derive_seed(13, t, "gen", b) for t in (1, 2) for b in range(50)}) == 100


def test_plan_counts_and_scale():
    paper = load_config(ROOT / "configs" / "paper.yaml")
    rows = build_plan(paper)
    assert sum(r.stage == "B1 generate" for r in rows) == 3
    assert all("10000" in r.count for r in rows if r.stage == "B1 generate")
    quick = load_config(ROOT / "configs" / "quickstart.yaml")
    q = plan_total(build_plan(quick))
    assert 60 < q < 20 * 60, q  # the quickstart must plan to fit its 20-minute budget
    frozen = build_plan(load_config(None, ["loop.freeze_generator=true", "loop.iterations=1"]))
    assert frozen[0].count == "skipped"
    assert model_billions("Qwen/Qwen2.5-1.5B-Instruct") == 1.5 and model_billions("default") == 0.5


def test_summary_from_a_synthetic_run(tmp_path):
    run, _ = _open(tmp_path / "r")
    run.write_json(
        run.file(1, "stage_counts.json"),
        {
            "generated": 10,
            "verified": 4,
            "unique": 3,
            "cross_verified": 2,
            "labelled": 1,
            "selected": 1,
            "acceptance": {"verify": 0.4},
            "reasons": {"missing_tag:question": 6},
        },
    )
    run.log_metric({"event": "stage_time", "iteration": 1, "stage": "generate", "wall_s": 3.0})
    run.log_metric({"event": "stage_time", "iteration": 1, "stage": "generate", "wall_s": 1.0})  # resumed
    run.log_metric(
        {"event": "train_end", "iteration": 1, "role": "solver", "steps": 2, "reward_means": {"total": 0.25}}
    )
    rows = summary_rows(run)
    assert (
        rows[0]["generated"] == 10 and rows[0]["solver reward"] == "0.250" and rows[0]["solver steps"] == "2"
    )
    md = summary_markdown(run)
    assert "missing_tag:question 6" in md and "| 1 | generate | 4.0 |" in md


def _cli(*args: str) -> subprocess.CompletedProcess:
    code = "import sys; from toolr0.cli import main; sys.argv = ['toolr0', *sys.argv[1:]]; main()"
    return subprocess.run(
        [sys.executable, "-c", code, *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
        env={**os.environ, "COLUMNS": "200"},
    )


def test_cli_dry_run_and_one_line_errors(tmp_path):
    r = _cli("selfplay", "--config", "configs/quickstart.yaml", "--dry-run")
    assert r.returncode == 0, r.stderr
    for stage in ("A generator GRPO", "B1 generate", "B4 cross-verify", "B5 difficulty", "C solver GRPO"):
        assert stage in r.stdout
    assert "loop.cross_verify off" in r.stdout  # the quickstart preset skips it, and the plan says so
    assert "estimated total" in r.stdout
    bad = tmp_path / "bad.yaml"
    bad.write_text("solver:\n  learning_rate: fast\n")
    r = _cli("selfplay", "--config", str(bad), "--out", str(tmp_path / "o"))
    assert r.returncode == 2
    assert (
        r.stderr.strip()
        == "error: bad.yaml: solver.learning_rate: Input should be a valid number, unable to parse string as a number"
    )
    r = _cli("selfplay", "--config", "configs/quickstart.yaml", "--out", str(tmp_path / "none"), "--resume")
    assert r.returncode == 2 and "holds no run" in r.stderr


def test_bench_stage_share_reads_run_dir(tmp_path):
    run, _ = _open(tmp_path / "r")
    run.log_metric({"event": "run_start"})
    run.log_metric(
        {"event": "stage_time", "iteration": 1, "stage": "generate", "wall_s": 30.0, "completed": False}
    )
    run.log_metric(
        {"event": "stage_time", "iteration": 1, "stage": "generate", "wall_s": 30.0, "completed": True}
    )
    run.log_metric({"event": "stage_time", "iteration": 1, "stage": "solver_train", "wall_s": 40.0})
    run.log_metric(
        {"event": "gen_batch", "iteration": 1, "batch": 0, "completion_tokens": 300, "seconds": 10.0}
    )
    r = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "stage_share.py"), str(run.root), "--json"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.returncode == 0, r.stderr
    data = json.loads(r.stdout)
    assert data["stage_seconds"] == {"generate": 60.0, "solver_train": 40.0}
    assert data["stage_share"] == {"generate": 0.6, "solver_train": 0.4}
    assert data["interrupted_segments"] == {"generate": 1}
    assert data["candidate_generation"]["tokens_per_s"] == 30.0


#: stage seconds of whole runs on the 2-core AVX2 machine in fp32 at main ac8b386 (quickstart: bench/RESULTS.md;
#: cpu: RESULTS.md, native v2 run); the filter stages between depend on the run's pass rates, not the plan's
MEASURED_FP32_STAGES = {
    "quickstart": {"A generator GRPO": 169.4, "B1 generate": 214.6, "C solver GRPO": 66.7},
    "cpu": {"A generator GRPO": 1196.7, "B1 generate": 1001.5, "C solver GRPO": 2796.9},
}


@pytest.mark.parametrize("preset", sorted(MEASURED_FP32_STAGES))
def test_plan_follows_the_measured_stage_times(preset):
    measured = MEASURED_FP32_STAGES[preset]
    rows = build_plan(load_config(ROOT / "configs" / f"{preset}.yaml", ["loop.iterations=1"]), cpu_bf16=False)
    planned = {r.stage: r.seconds for r in rows}
    for stage, seconds in measured.items():
        assert 0.5 < planned[stage] / seconds < 2.0, (stage, planned[stage], seconds)
    total = sum(measured.values())
    assert 0.75 < sum(planned[s] for s in measured) / total < 1.33


def test_plan_scales_cpu_times_without_bf16_but_not_gpu_times():
    quick = load_config(ROOT / "configs" / "quickstart.yaml")
    fast, slow = plan_total(build_plan(quick)), plan_total(build_plan(quick, cpu_bf16=False))
    assert slow == pytest.approx(fast * CPU_FP32_SLOWDOWN)
    paper = load_config(ROOT / "configs" / "paper.yaml")
    assert plan_total(build_plan(paper, cpu_bf16=False)) == plan_total(build_plan(paper))


def test_no_call_counts_and_summary_section(tmp_path):
    from toolr0.selfplay.report import no_call_counts

    def cand(i, n, calls, ok=True):
        task = {"question": "q", "tools": [], "calls": calls} if ok else None
        return {"id": f"c{i}", "spec": {"num_calls": n}, "ok": ok, "task": task}

    call = [{"name": "f", "arguments": {}}]
    cands = [cand(0, 0, []), cand(1, 0, [], ok=False), cand(2, 1, call), cand(3, 0, []), cand(4, 0, call)]
    labelled = [{**cands[0], "label": {"p_hat": 0.25}}, {**cands[3], "label": {"p_hat": 0.75}}, cands[2]]
    selected = [{"answer": [], "task": cands[0]["task"]}, {"answer": call}]
    counts = no_call_counts(cands, [cands[0], cands[2], cands[3]], cands[:1] + cands[2:4], labelled, selected)
    assert counts == {
        "asked": 4,
        "verified": 2,  # the rejected one and the no-call spec answered with a call do not count
        "unique": 2,
        "cross_verified": 2,
        "labelled": 2,
        "selected": 1,
        "p_hat_mean": 0.5,
    }
    run, _ = _open(tmp_path / "r")
    run.write_json(run.file(1, "stage_counts.json"), {"generated": 5, "no_call": counts})
    md = summary_markdown(run)
    assert "## No-call tasks (gold [])" in md and "| 1 | 4 | 2 | 0 | 2 | 2 | 2 | 1 | 0.500 |" in md
    run.write_json(run.file(1, "stage_counts.json"), {"generated": 5})  # a run without no-call specs
    assert "No-call" not in summary_markdown(run)


def test_a_setting_added_later_resumes_at_its_default_only(tmp_path):
    """A run stored before a setting existed resumes under a newer toolr0 while that setting keeps its default
    (the run was made with that behaviour); set to anything else it is a changed config like any other."""
    run, _ = _open(tmp_path / "r")
    state = json.loads(run.state_path.read_text())
    del state["config"]["frozen_solver"]["verify"]["no_call"]  # as written before the setting existed
    run.state_path.write_text(json.dumps(state))
    _, resumed = _open(tmp_path / "r")
    assert resumed
    state = json.loads(run.state_path.read_text())
    del state["config"]["frozen_solver"]["verify"]["no_call"]
    run.state_path.write_text(json.dumps(state))
    with pytest.raises(ConfigError, match="frozen_solver.verify.no_call"):
        _open(tmp_path / "r", load_config(None, ["frozen_solver.verify.no_call=false"]))
