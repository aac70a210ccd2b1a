"""What a researcher watching a run sees: progress lines in a log file (no terminal), the stage lines, and the
TensorBoard funnel, p̂ histograms and sample-task tables of a short fake-Generator run (read back from the
event files with TensorBoard's own EventAccumulator)."""

from __future__ import annotations

import io
import time

from rich.console import Console

from toolr0.selfplay.progress import Reporter


def _log_console() -> Console:
    return Console(file=io.StringIO(), force_terminal=False)  # what a redirected stderr looks like


def test_a_long_stage_prints_a_heartbeat_line_off_a_terminal(capsys):
    with Reporter(enabled=True, console=_log_console(), heartbeat_s=0.05) as rep:
        assert not rep.enabled  # no terminal: plain lines
        rep.stage_start(1, "generate", 500, "candidates")
        rep.advance(40)
        time.sleep(0.3)  # one long generation batch, no call from the stage
        beats = capsys.readouterr().err.splitlines()
        rep.stage_end(1, "generate", "500 generated, 80 pass verification")
        time.sleep(0.2)  # no stage running: no heartbeat
    after = capsys.readouterr().err.splitlines()
    assert beats and all(b.startswith("[iter 1] B1 generate + verify: 40/500 candidates, ") for b in beats)
    assert len(after) == 1 and "500 generated" in after[0]


def test_no_heartbeat_when_a_line_was_printed_recently(capsys):
    with Reporter(enabled=False, heartbeat_s=3600) as rep:
        rep.stage_start(1, "difficulty", 10, "tasks")
        time.sleep(0.1)
        rep.heartbeat()
    assert capsys.readouterr().err == ""


def test_rejections_name_the_stage_and_the_number_behind_each_drop():
    from toolr0.selfplay.funnel import rejections, sample_rejected

    def cand(i, ok=True, reason="ok", calls=None):
        return {"id": f"c{i}", "ok": ok, "reason": reason, "task": {"question": f"q{i}", "calls": calls or []}}

    cands = [cand(0, ok=False, reason="bad_json"), cand(1), cand(2), cand(3), cand(4), cand(5)]
    unique, crossed, labelled = cands[2:], cands[3:], cands[4:]
    selected = [{"id": "c5"}]
    files = {
        "dedup": [{"id": "c1", "duplicate_of": "c2"}],
        "crossverify": [{"id": "c2", "agreement": 0.0}],
        "passrates": [{"id": "c3", "p_hat": 1.0}],
    }
    got = {r["id"]: (r["stage"], r["reason"]) for r in rejections(cands, unique, crossed, labelled, selected, files, 0.5)}
    assert got == {
        "c0": ("verify", "bad_json"),
        "c1": ("dedup", "duplicate of c2"),
        "c2": ("cross_verify", "agreement 0.00 < τ 0.5"),
        "c3": ("difficulty", "p̂ 1.00 outside every kept bucket"),
        "c4": ("select", "not drawn (quota / n_final)"),
    }
    # round-robin over reasons: one dominant reason does not hide the rare ones
    many = [{"id": f"v{i}", "stage": "verify", "reason": "bad_json", "task": None} for i in range(50)]
    rare = [{"id": "d", "stage": "dedup", "reason": "duplicate of x", "task": None}]
    picked = sample_rejected(many + rare, seed=3, n=4)
    assert len(picked) == 4 and "d" in {r["id"] for r in picked}
    assert picked == sample_rejected(many + rare, seed=3, n=4)  # seeded


def test_sample_tables_are_one_line_per_task_and_escape_pipes():
    from toolr0.selfplay.funnel import call_kind_counts, curriculum_table

    task = {
        "question": "Find a | b\nplease",
        "tools": [{"name": "find"}, {"name": "get"}],
        "calls": [{"name": "find", "arguments": {"q": "a|b"}}],
    }
    table = curriculum_table(2, [{"task": task, "p_hat": 0.25, "difficulty": "hard"}])
    row = table.splitlines()[-1]
    assert row == "| 1 | Find a \\| b please | find, get | find(q='a\\|b') | 0.25 | hard |"
    kinds = call_kind_counts({"selected": [{"task": {"calls": []}}, {"task": task}, {"task": {"calls": [1, 2]}}]})
    assert kinds == {"selected": {"no_call": 1, "single_call": 1, "multi_call": 1}}


def _events(tb_dir):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(tb_dir), size_guidance={"scalars": 0, "histograms": 0, "tensors": 0})
    acc.Reload()
    return acc


def test_quickstart_run_puts_funnel_histograms_and_samples_in_tensorboard(
    tmp_path, tiny_model_dir, monkeypatch, capsys
):
    """One iteration, fake Generator texts in stage B and in phase A's reward (the tiny model writes no valid
    task, so p̂ would never be measured): the real frozen tiny Solver gives p̂ in both phases."""
    import json
    from types import SimpleNamespace

    import pytest

    pytest.importorskip("trl")
    from selfplay_fakes import FakeGeneratorEngine, fake_task_text, tiny_config
    from toolr0.selfplay.loop import run_selfplay
    from toolr0.training import reward_funcs as rf

    real = rf._generator_samples

    def valid_texts(texts, columns):  # phase A: every completion reads as a valid task for its spec
        specs = [SimpleNamespace(**json.loads(s)) for s in columns["spec_json"]]
        return real([fake_task_text(s, 1, 3 + j) for j, s in enumerate(specs)], columns)

    monkeypatch.setattr(rf, "_generator_samples", valid_texts)
    cfg = tiny_config(
        tiny_model_dir,
        # cross-verified at any agreement, so the tiny Solver's p̂ = 0 tasks may fill the curriculum sample
        **{"loop.iterations": 1, "frozen_solver.verify.tau": 0.0, "curriculum.keep_zero": True,
           "loop.n_candidates": 6, "loop.gen_batch_size": 3},
    )  # fmt: skip
    out = tmp_path / "run"
    run_selfplay(cfg, out, progress=False, engine_factory=FakeGeneratorEngine)
    err = capsys.readouterr().err
    assert "B3 cross-verify: " in err and " kept of " in err

    acc = _events(out / "tb")
    tags = acc.Tags()
    for tag in ("counts/generated", "counts/verified", "counts/unique", "counts/selected",
                "calls/no_call/selected", "calls/single_call/verified", "calls/multi_call/labelled"):  # fmt: skip
        assert tag in tags["scalars"], tag
    counts = json.loads((out / "iter_01" / "stage_counts.json").read_text())
    assert acc.Scalars("counts/generated")[0].value == 6
    for reason, n in counts["reasons"].items():
        assert acc.Scalars(f"rejected/{reason}")[0].value == n
    assert counts["calls"]["verified"]["single_call"] == acc.Scalars("calls/single_call/verified")[0].value > 0
    # p̂ histograms: every task pass@K measured in stage B, every phase-A step's valid samples
    assert "p_hat/stage_b" in tags["histograms"] and "p_hat/phase_a" in tags["histograms"]
    passrates = [json.loads(x) for x in (out / "iter_01" / "passrates.jsonl").read_text().splitlines()]
    assert acc.Histograms("p_hat/stage_b")[0].histogram_value.num == len(passrates)
    phase_a = acc.Histograms("p_hat/phase_a")
    assert [h.step for h in phase_a] == [1] and phase_a[0].histogram_value.num > 0
    assert (out / "iter_01" / "generator" / "p_hat.jsonl").is_file()
    # the sample tables: TensorBoard text, iter_01/samples.md and summary.md hold the same table
    from tensorboard.util import tensor_util

    def text_of(tag):  # torch's add_text stores the markdown under <tag>/text_summary
        return tensor_util.make_ndarray(acc.Tensors(f"{tag}/text_summary")[0].tensor_proto).item().decode()

    text = {t: text_of(t) for t in ("samples/curriculum", "samples/rejected")}
    curriculum = [json.loads(x) for x in (out / "iter_01" / "curriculum.jsonl").read_text().splitlines()]
    assert text["samples/curriculum"].count("\n| ") == min(20, len(curriculum)) + 1  # header + rows
    n_rejected = counts["generated"] - counts["selected"]
    assert n_rejected > 0 and text["samples/rejected"].count("\n| ") == min(10, n_rejected) + 1
    assert " | dedup | duplicate of i01-" in text["samples/rejected"]  # the fake Generator repeats row 0
    samples_md = (out / "iter_01" / "samples.md").read_text()
    summary = (out / "summary.md").read_text()
    assert text["samples/curriculum"] in samples_md and text["samples/curriculum"] in summary
    assert "[iteration 1](iter_01/samples.md)" in summary


def test_the_cross_verify_line_says_skipped_when_off():
    from toolr0.config import load_config
    from toolr0.selfplay.monitor import cross_verify_line as _cross_verify_line

    off = load_config(None, {"loop.cross_verify": False})
    assert _cross_verify_line(off, 7, 7) == "skipped (off): all 7 unique task(s) pass on"
    on = load_config(None, {"frozen_solver.verify.tau": 0.2})
    assert _cross_verify_line(on, 3, 7) == f"3 kept of 7 (τ=0.2, {on.frozen_solver.verify.mode})"
