"""Kill the loop at several points (TOOLR0_FAULT) and resume: the final artefacts equal an uninterrupted run.

Faults, in order, each followed by a resume of the same command: after the first generation batch, in the
middle of writing a batch (a torn partial batch on disk), after a cross-verification batch, after a pass@K
batch, right after Solver training of iteration 1, and after a generation batch of iteration 2 (so the
Solver S_1 is reloaded from its checkpoint). Compared exactly: candidates (texts, verdicts), dedup,
cross-verification, pass rates, curricula, stage counts, the stage cursor/skips/checkpoints. Solver adapter
weights are compared with a tolerance (CPU training is deterministic here, but float equality is not part
of the contract). Timings and metrics.jsonl differ by design (they record the interrupted segments).
"""

from __future__ import annotations

import json

import pytest

from toolr0.io import read_jsonl
from toolr0.selfplay.loop import run_selfplay
from toolr0.selfplay.rundir import InjectedFault

pytest.importorskip("trl")

from selfplay_fakes import FakeGeneratorEngine, tiny_config  # noqa: E402

FAULTS = ["generate:1", "generate_torn:1", "cross_verify:1", "difficulty:1", "solver_train:1", "generate:2"]
ARTEFACTS = ["candidates.jsonl", "dedup.jsonl", "crossverify.jsonl", "passrates.jsonl", "curriculum.jsonl"]


def _cfg(model_dir):
    return tiny_config(
        model_dir,
        **{
            "loop.freeze_generator": True,
            "frozen_solver.verify.tau": 0.0,
            "curriculum.keep_zero": True,
            "loop.n_candidates": 6,
            "loop.gen_batch_size": 3,
        },
    )


def _state(out):
    s = json.loads((out / "state.json").read_text())
    return {k: s[k] for k in ("done", "skipped", "checkpoints", "finished")}


def _adapter(path):
    from safetensors.torch import load_file

    return load_file(str(path / "adapter_model.safetensors"))


def test_fault_injection_then_resume_equals_uninterrupted(tmp_path, tiny_model_dir, monkeypatch):
    cfg = _cfg(tiny_model_dir)
    ref = tmp_path / "ref"
    run_selfplay(cfg, ref, progress=False, engine_factory=FakeGeneratorEngine)
    _check_data_flow(
        ref
    )  # the reference must carry data through every stage, or the comparison proves little

    out = tmp_path / "faulty"
    hit = []
    for fault in FAULTS:
        monkeypatch.setenv("TOOLR0_FAULT", fault)
        with pytest.raises(InjectedFault):
            run_selfplay(cfg, out, progress=False, engine_factory=FakeGeneratorEngine)
        hit.append(fault)
        assert not _state(out)["finished"]
    monkeypatch.delenv("TOOLR0_FAULT")
    run_selfplay(cfg, out, progress=False, engine_factory=FakeGeneratorEngine)
    assert hit == FAULTS

    assert _state(out) == _state(ref)
    state = json.loads((out / "state.json").read_text())
    assert state["resumes"] == len(FAULTS)
    for t in (1, 2):
        for name in ARTEFACTS:
            a = list(read_jsonl(ref / f"iter_{t:02d}" / name))
            b = list(read_jsonl(out / f"iter_{t:02d}" / name))
            assert a == b, f"iter {t} {name} differs after resume"
            assert len({r.get("id") for r in b}) == len(b), f"duplicate rows in {name}"
        assert json.loads((ref / f"iter_{t:02d}" / "stage_counts.json").read_text()) == json.loads(
            (out / f"iter_{t:02d}" / "stage_counts.json").read_text()
        )
        wa = _adapter(ref / f"iter_{t:02d}" / "solver" / "final")
        wb = _adapter(out / f"iter_{t:02d}" / "solver" / "final")
        assert wa.keys() == wb.keys()
        for k in wa:
            assert (wa[k] - wb[k]).abs().max().item() < 1e-5, k
    # each interrupted stage left a timing segment marked incomplete
    segs = [m for m in read_jsonl(out / "metrics.jsonl") if m["event"] == "stage_time" and not m["completed"]]
    assert {s["stage"] for s in segs} >= {"generate", "cross_verify", "difficulty"}


def _check_data_flow(out):
    """freeze_generator ablation + fake valid tasks: every filter saw data; the Solver was really trained."""
    d = out / "iter_01"
    counts = json.loads((d / "stage_counts.json").read_text())
    assert counts["generated"] == 6 and counts["verified"] >= 4
    assert counts["unique"] == counts["verified"] - 2 and counts["cross_verified"] == counts["unique"]
    assert counts["labelled"] == counts["cross_verified"] and 1 <= counts["selected"] <= 4
    assert counts["acceptance"]["verify"] == counts["verified"] / 6
    xv = list(read_jsonl(d / "crossverify.jsonl"))
    assert len(xv) == counts["unique"] and all(0.0 <= r["agreement"] <= 1.0 and r["k"] == 2 for r in xv)
    pr = list(read_jsonl(d / "passrates.jsonl"))
    assert all(r["K"] == 2 and r["difficulty"] == "hard" for r in pr)  # random Solver: p̂ = 0, kept as hard
    cur = list(read_jsonl(d / "curriculum.jsonl"))
    assert len(cur) == counts["selected"]
    assert all(
        r["question"].startswith("User request:\n") and r["answer"] and r["task"]["tools"] for r in cur
    )
    dd = list(read_jsonl(d / "dedup.jsonl"))
    assert len(dd) == counts["verified"] and sum(r["kept"] for r in dd) == counts["unique"]
    assert all(r["duplicate_of"] for r in dd if not r["kept"])
    state = json.loads((out / "state.json").read_text())
    assert "freeze_generator" in state["skipped"]["iter_01/generator_train"]
    assert not (d / "generator").exists()
    assert state["checkpoints"]["solver"]["1"] == "iter_01/solver/final"
    assert (d / "solver" / "final" / "adapter_config.json").is_file()
    ends = [m for m in read_jsonl(out / "metrics.jsonl") if m["event"] == "train_end"]
    assert [e["role"] for e in ends] == ["solver", "solver"] and ends[0]["steps"] == 1
    assert "solver_format" in ends[0]["reward_means"]
