"""Evaluation runner: oracle modes, resumability (no duplicate rows, nothing redone), setting fingerprint,
run-directory model resolution, the tiny random model end to end, reports, compare and the CLI."""

from __future__ import annotations

import json
import types

import pytest
from typer.testing import CliRunner

from toolr0.errors import ToolR0Error
from toolr0.eval import runner as runner_mod
from toolr0.eval.corrupt import solver_text
from toolr0.eval.hammer_data import benchmarks_dir
from toolr0.eval.report import (
    NA,
    compare_markdown,
    compare_rows,
    load_summary,
    markdown,
    merge_summaries,
    summarise,
)
from toolr0.eval.runner import EvalSettings, expand_benchmarks, load_rows, resolve_eval_model, run_eval

try:
    benchmarks_dir()
    HAVE_DATA = True
except ToolR0Error:
    HAVE_DATA = False
needs_data = pytest.mark.skipif(
    not HAVE_DATA, reason="Hammer benchmark files (../shared/benchmarks) not present"
)


class EchoGoldSampler:
    """A fake sampler answering with the gold of every other prompt (and prose otherwise); counts prompts."""

    def __init__(self, gold_by_question):
        self.gold_by_question = gold_by_question
        self.prompts_seen = 0

    def generate(self, prompts, params, adapter=None):
        assert params.temperature == 0.0 and params.n == 1 and "</tool_call_answer>" in params.stop
        out = []
        for msgs in prompts:
            self.prompts_seen += 1
            q = msgs[-1]["content"].split("User request:\n", 1)[1].split("\n\nAvailable tools (JSON):", 1)[0]
            gold = self.gold_by_question[q]
            out.append([solver_text(gold) if len(q) % 2 == 0 else "I am not sure."])
        return out


def _gold_map(names, limit):
    from toolr0.eval.hammer_data import load_hammer
    from toolr0.eval.items import select_subset

    return {it.question: it.gold for n in names for it in select_subset(load_hammer(n), limit, 0)}


@needs_data
def test_fake_model_run_resume_and_scores(tmp_path):
    names = ["sealtool", "apibank_l2"]
    sampler = EchoGoldSampler(_gold_map(names, 8))
    s = EvalSettings(model="fake", benchmarks=names, out_dir=str(tmp_path / "o"), limit=6, batch_size=4)
    summary = run_eval(s, sampler=sampler, progress=False)
    assert sampler.prompts_seen == 12
    rows = list(map(json.loads, (tmp_path / "o" / "items.jsonl").read_text().splitlines()))
    assert len(rows) == 12
    for r in rows:
        assert {
            "id",
            "benchmark",
            "messages",
            "raw_output",
            "parsed_calls",
            "gold",
            "correct",
            "reason",
        } <= set(r)
        assert r["messages"][0]["role"] == "system" and r["messages"][1]["content"].startswith(
            "User request:"
        )
        assert r["correct"] == (r["reason"] == "ok")
        assert r["correct"] or r["reason"] == "no_answer_tag"
    expect = {n: sum(len(q) % 2 == 0 for q in _gold_map([n], 6)) for n in names}
    for n in names:
        assert summary["benchmarks"][n]["correct"] == expect[n]
        assert summary["benchmarks"][n]["n"] == 6 and summary["benchmarks"][n]["n_total"] > 6
    assert "apibank" not in summary["benchmarks"]  # pooled only when both levels are run

    # second run: nothing regenerated, no duplicate rows, same summary numbers
    again = run_eval(s, sampler=sampler, progress=False)
    assert sampler.prompts_seen == 12
    assert len((tmp_path / "o" / "items.jsonl").read_text().splitlines()) == 12
    assert again["benchmarks"] == summary["benchmarks"]

    # a bigger limit only generates the new items (nested seeded subsets)
    s.limit = 8
    run_eval(s, sampler=sampler, progress=False)
    assert sampler.prompts_seen == 16
    assert len(load_rows(tmp_path / "o")) == 16


@needs_data
def test_torn_last_line_is_redone(tmp_path):
    names = ["sealtool"]
    sampler = EchoGoldSampler(_gold_map(names, 3))
    s = EvalSettings(model="fake", benchmarks=names, out_dir=str(tmp_path / "o"), limit=3, batch_size=1)
    run_eval(s, sampler=sampler, progress=False)
    path = tmp_path / "o" / "items.jsonl"
    lines = path.read_text().splitlines(keepends=True)
    path.write_text("".join(lines[:2]) + lines[2][:40])  # killed mid-write
    run_eval(s, sampler=sampler, progress=False)
    assert sampler.prompts_seen == 4
    assert len(load_rows(tmp_path / "o")) == 3


@needs_data
def test_fingerprint_refuses_a_different_setting(tmp_path):
    s = EvalSettings(model="fake", benchmarks=["sealtool"], out_dir=str(tmp_path / "o"), limit=2)
    run_eval(s, sampler=EchoGoldSampler(_gold_map(["sealtool"], 2)), progress=False)
    s2 = EvalSettings(
        model="fake", benchmarks=["sealtool"], out_dir=str(tmp_path / "o"), limit=2, max_new_tokens=7
    )
    with pytest.raises(ToolR0Error, match="different setting.*max_new_tokens"):
        run_eval(s2, sampler=EchoGoldSampler({}), progress=False)
    sampler = EchoGoldSampler(_gold_map(["sealtool"], 2))
    run_eval(s2, sampler=sampler, progress=False, overwrite=True)
    assert sampler.prompts_seen == 2


class DtypeSampler(EchoGoldSampler):
    """The fake sampler with a model whose weights are in ``dtype``."""

    def __init__(self, gold_by_question, dtype):
        super().__init__(gold_by_question)
        self.model = types.SimpleNamespace(dtype=dtype)


@needs_data
def test_fingerprint_keeps_bf16_and_fp32_rows_apart(tmp_path):
    s = EvalSettings(model="fake", benchmarks=["sealtool"], out_dir=str(tmp_path / "o"), limit=2)
    gold = _gold_map(["sealtool"], 2)
    summary = run_eval(s, sampler=DtypeSampler(gold, "torch.float32"), progress=False)
    assert summary["meta"]["dtype"] == "float32"
    assert "dtype float32" in (tmp_path / "o" / "summary.md").read_text()
    # greedy outputs differ between precisions (dtype auto resolves per machine): no silent mixing on resume
    with pytest.raises(ToolR0Error, match="different setting.*dtype: 'float32' -> 'bfloat16'"):
        run_eval(s, sampler=DtypeSampler(gold, "torch.bfloat16"), progress=False)
    # a folder written before the dtype was recorded still resumes (the key cannot be checked there)
    cfg_path = tmp_path / "o" / "eval_config.json"
    cfg = json.loads(cfg_path.read_text())
    del cfg["fingerprint"]["dtype"]
    cfg_path.write_text(json.dumps(cfg))
    again = DtypeSampler(gold, "torch.bfloat16")
    run_eval(s, sampler=again, progress=False)
    assert again.prompts_seen == 0
    # only keys added later are exempt: a fingerprint that lost the others still refuses to be resumed
    cfg["fingerprint"] = {}
    cfg_path.write_text(json.dumps(cfg))
    with pytest.raises(ToolR0Error, match="different setting.*model: None -> 'fake'"):
        run_eval(s, sampler=DtypeSampler(gold, "torch.float32"), progress=False)


@needs_data
@pytest.mark.parametrize("mode,acc", [("gold", 100.0), ("corrupt", 0.0)])
def test_oracle_modes(tmp_path, mode, acc):
    s = EvalSettings(benchmarks=["hammer"], out_dir=str(tmp_path / mode), limit=20, predictions=mode)
    summary = run_eval(s, progress=False)
    for b in ["toolalpaca", "sealtool", "apibank_l1", "apibank_l2", "apibank"]:
        st = summary["benchmarks"][b]
        assert st["accuracy"] == acc, (b, st)
        if mode == "corrupt":
            assert (
                st["corrupted"] == st["corrupted_marked_wrong"] == st["corrupted_expected_reason"] == st["n"]
            )
    assert summary["benchmarks"]["apibank"]["n"] == 40
    assert summary["paper_table"]["NexusRaven"] == NA and summary["paper_table"]["SNIPS"] == NA
    md = (tmp_path / mode / "summary.md").read_text()
    assert "NexusRaven" not in md and "SNIPS" not in md  # listed only when asked (--show-offline)
    asked = markdown(summary, show_offline=True)
    assert "| NexusRaven | – | n/a (offline)" in asked and "| SNIPS | – | n/a (offline)" in asked


@needs_data
def test_tiny_model_end_to_end_and_resume(tmp_path, tiny_model_dir, monkeypatch):
    s = EvalSettings(
        model=str(tiny_model_dir),
        benchmarks=["sealtool"],
        out_dir=str(tmp_path / "o"),
        limit=2,
        max_new_tokens=4,
        batch_size=2,
    )
    summary = run_eval(s, progress=False)
    rows = load_rows(tmp_path / "o")
    assert len(rows) == 2 and summary["benchmarks"]["sealtool"]["n"] == 2
    for r in rows.values():
        assert isinstance(r["raw_output"], str) and r["completion_tokens"] <= 4
        assert r["reason"] in ("no_answer_tag", "unclosed", "ok")

    def boom(*a, **k):
        raise AssertionError("model loaded although every item was already scored")

    monkeypatch.setattr(runner_mod, "build_sampler", boom)
    run_eval(s, progress=False)
    assert len((tmp_path / "o" / "items.jsonl").read_text().splitlines()) == 2


@needs_data
def test_adapter_folder_is_merged_by_default_and_fingerprinted(tmp_path, tiny_adapter_dir):
    adapter = tiny_adapter_dir
    kw = dict(
        model=str(adapter), benchmarks=["sealtool"], limit=2, max_new_tokens=4, batch_size=2, dtype="fp32"
    )
    merged = run_eval(EvalSettings(out_dir=str(tmp_path / "m"), **kw), progress=False)
    cfg = json.loads((tmp_path / "m" / "eval_config.json").read_text())
    assert cfg["fingerprint"]["adapter_merged"] is True and merged["benchmarks"]["sealtool"]["n"] == 2
    # served unmerged: greedy outputs are the same here (fp32, tiny model), but the folders stay apart
    unmerged_settings = EvalSettings(out_dir=str(tmp_path / "u"), merge_adapter=False, **kw)
    run_eval(unmerged_settings, progress=False)
    assert (
        json.loads((tmp_path / "u" / "eval_config.json").read_text())["fingerprint"]["adapter_merged"] is None
    )
    raw = {k: [r["raw_output"] for r in load_rows(tmp_path / k).values()] for k in "mu"}
    assert raw["m"] == raw["u"]
    with pytest.raises(ToolR0Error, match="adapter_merged"):
        run_eval(EvalSettings(out_dir=str(tmp_path / "m"), merge_adapter=False, **kw), progress=False)


def test_run_dir_resolution(tmp_path):
    run = tmp_path / "run"
    for t in (1, 2):
        (run / f"iter_0{t}" / "solver").mkdir(parents=True)
        (run / f"iter_0{t}" / "solver" / "adapter_config.json").write_text("{}")
    assert resolve_eval_model(str(run)) == str(run / "iter_02" / "solver")
    (run / "state.json").write_text(
        json.dumps({"checkpoints": {"solver": {"1": "iter_01/solver", "2": None}}})
    )
    assert resolve_eval_model(str(run)) == str(run / "iter_01" / "solver")
    (run / "final" / "solver").mkdir(parents=True)
    (run / "final" / "solver" / "config.json").write_text("{}")
    (run / "state.json").write_text("{}")
    assert resolve_eval_model(str(run)) == str(run / "final" / "solver")
    empty = tmp_path / "fresh"
    (empty / "iter_01").mkdir(parents=True)
    with pytest.raises(ToolR0Error, match="without a Solver checkpoint"):
        resolve_eval_model(str(empty))
    assert resolve_eval_model("default") == "default"


def test_expand_benchmarks():
    got, _ = expand_benchmarks(["hammer", "bfcl_irrelevance,simple_python"], skip_missing_bfcl=True)
    assert got[:4] == ["toolalpaca", "sealtool", "apibank_l1", "apibank_l2"]
    with pytest.raises(ToolR0Error, match="unknown benchmark"):
        expand_benchmarks(["nexusraven"])
    with pytest.raises(ToolR0Error, match="unknown BFCL category"):
        expand_benchmarks(["bfcl_simple_java"])


def _fake_summary(acc_ta, acc_st, acc_ab, model):
    def rows(n, k):
        return [
            {"correct": i < k, "reason": "ok" if i < k else "wrong_value", "metrics": {}} for i in range(n)
        ]

    per = {
        "toolalpaca": rows(10, acc_ta),
        "sealtool": rows(10, acc_st),
        "apibank_l1": rows(5, acc_ab),
        "apibank_l2": rows(5, acc_ab),
    }
    return summarise(per, meta={"model": model})


def test_compare_deltas_and_relative_change(tmp_path):
    a, b = _fake_summary(2, 5, 1, "base"), _fake_summary(4, 5, 2, "trained")
    rows = {r["benchmark"]: r for r in compare_rows(a, b)}
    assert rows["ToolAlpaca"]["a"] == 20.0 and rows["ToolAlpaca"]["b"] == 40.0
    assert rows["ToolAlpaca"]["delta"] == 20.0 and rows["ToolAlpaca"]["rel_pct"] == 100.0
    assert rows["Seal-Tools"]["delta"] == 0.0 and rows["Seal-Tools"]["rel_pct"] == 0.0
    assert rows["API-Bank (L1+L2)"]["a"] == 20.0 and rows["API-Bank (L1+L2)"]["b"] == 40.0
    assert "NexusRaven" not in rows  # not asked for
    asked = {r["benchmark"]: r for r in compare_rows(a, b, show_offline=True)}
    assert asked["NexusRaven"]["a"] == NA and asked["NexusRaven"]["delta"] is None
    assert a["avg_available"] == pytest.approx((20 + 50 + 20) / 3, abs=0.01)
    md = compare_markdown(a, b, "base", "trained")
    assert "| ToolAlpaca | 20.00 | 40.00 | +20.00 | +100.0% |" in md
    assert "NexusRaven" not in md and "n/a (offline)" not in markdown(a)
    md_asked = compare_markdown(a, b, "base", "trained", show_offline=True)
    assert "| NexusRaven | n/a (offline) | n/a (offline) | – | – |" in md_asked
    assert "| SNIPS | – | n/a (offline)" in markdown(a, show_offline=True)
    assert "different items" not in md


def test_compare_flags_benchmarks_scored_on_different_items():
    a = _fake_summary(2, 5, 1, "base")
    b = summarise({"toolalpaca": [{"correct": True, "reason": "ok", "metrics": {}}] * 4}, meta={"model": "x"})
    rows = {r["benchmark"]: r for r in compare_rows(a, b)}
    assert (rows["ToolAlpaca"]["n_a"], rows["ToolAlpaca"]["n_b"]) == (10, 4)
    assert "| ToolAlpaca (n 10 vs 4: different items) | 20.00 | 100.00 |" in compare_markdown(a, b)


def test_cli_help_everywhere():
    from toolr0.cli import app

    r = CliRunner()
    for args in (
        ["eval", "--help"],
        ["eval", "run", "--help"],
        ["eval", "compare", "--help"],
        ["eval", "list", "--help"],
        ["eval", "report", "--help"],
    ):
        res = r.invoke(app, args)
        assert res.exit_code == 0, (args, res.output)
    assert "--limit" in r.invoke(app, ["eval", "run", "--help"]).output


@needs_data
def test_cli_gold_run_and_compare(tmp_path):
    from toolr0.cli import app

    r = CliRunner()
    for mode in ("gold", "corrupt"):
        res = r.invoke(
            app,
            [
                "eval",
                "run",
                "--predictions",
                mode,
                "-b",
                "sealtool",
                "--limit",
                "5",
                "--out",
                str(tmp_path / mode),
                "--no-progress",
            ],
        )
        assert res.exit_code == 0, res.output
        assert load_summary(tmp_path / mode)["benchmarks"]["sealtool"]["n"] == 5
    res = r.invoke(app, ["eval", "compare", str(tmp_path / "corrupt"), str(tmp_path / "gold")])
    assert res.exit_code == 0 and "| Seal-Tools | 0.00 | 100.00 | +100.00 | – |" in res.output
    # paired table: 5 items right only in gold, exact McNemar p = 2 * 0.5**5
    assert "| sealtool | 5 | 0.00 | 100.00 | 0 | 5 | 0.062 |" in res.output
    res = r.invoke(app, ["eval", "compare", str(tmp_path / "corrupt"), str(tmp_path / "nope")])
    assert isinstance(res.exception, ToolR0Error)


@needs_data
def test_cli_compare_pools_several_folders_per_side(tmp_path):
    """Hammer and BFCL run apart (different limits) compare as one: both tables, one pooled McNemar row."""
    from toolr0.cli import app

    r = CliRunner()
    runs = {
        ("gold", "sealtool", 5),
        ("corrupt", "sealtool", 5),
        ("gold", "toolalpaca", 3),
        ("corrupt", "toolalpaca", 3),
    }
    for mode, bench, n in runs:
        args = ["eval", "run", "--predictions", mode, "-b", bench, "--limit", str(n)]
        res = r.invoke(app, [*args, "--out", str(tmp_path / f"{mode}_{bench}"), "--no-progress"])
        assert res.exit_code == 0, res.output
    a = f"{tmp_path / 'corrupt_sealtool'},{tmp_path / 'corrupt_toolalpaca'}"
    b = f"{tmp_path / 'gold_sealtool'},{tmp_path / 'gold_toolalpaca'}"
    res = r.invoke(app, ["eval", "compare", a, b])
    assert res.exit_code == 0, res.output
    assert "| Seal-Tools | 0.00 | 100.00 |" in res.output and "| ToolAlpaca | 0.00 | 100.00 |" in res.output
    assert "| all (pooled) | 8 | 0.00 | 100.00 | 0 | 8 | 0.008 |" in res.output
    assert "corrupt_sealtool+corrupt_toolalpaca" in res.output
    merged = merge_summaries(
        [load_summary(tmp_path / "gold_sealtool"), load_summary(tmp_path / "gold_toolalpaca")]
    )
    assert set(merged["benchmarks"]) == {"sealtool", "toolalpaca"} and merged["meta"]
    res = r.invoke(app, ["eval", "compare", " , ", b])
    assert isinstance(res.exception, ToolR0Error)


@needs_data
def test_report_rebuild_from_items_of_a_stopped_run(tmp_path):
    from toolr0.cli import app

    r = CliRunner()
    out = tmp_path / "gold"
    args = ["eval", "run", "--predictions", "gold", "-b", "sealtool", "--limit", "5", "--out", str(out)]
    assert r.invoke(app, [*args, "--no-progress"]).exit_code == 0
    # a run stopped after 3 items: no summary yet, 3 rows (the last one torn)
    lines = (out / "items.jsonl").read_text().splitlines(keepends=True)
    (out / "items.jsonl").write_text("".join(lines[:3]) + lines[3][:20])
    (out / "summary.json").unlink()
    res = r.invoke(app, ["eval", "report", str(out), "--rebuild"])
    assert res.exit_code == 0, res.output
    s = load_summary(out)
    assert s["benchmarks"]["sealtool"]["n"] == 3 and s["benchmarks"]["sealtool"]["accuracy"] == 100.0
    assert s["meta"]["rebuilt_from_items"] and "| Seal-Tools | 3/294 | 100.00 |" in res.output
    res = r.invoke(app, ["eval", "report", str(tmp_path / "nope"), "--rebuild"])
    assert isinstance(res.exception, ToolR0Error)


@needs_data
def test_report_rescore_scores_stored_replies_again(tmp_path):
    """A stored verdict that this scorer would not give (an older reader of replies) is replaced; the replies,
    token counts and the folder's other rows are kept, and nothing is generated."""
    from toolr0.cli import app
    from toolr0.eval.items import load_rows

    r = CliRunner()
    out = tmp_path / "gold"
    args = ["eval", "run", "--predictions", "gold", "-b", "sealtool", "--limit", "4", "--out", str(out)]
    assert r.invoke(app, [*args, "--no-progress"]).exit_code == 0
    rows = [json.loads(x) for x in (out / "items.jsonl").read_text().splitlines()]
    rows[1].update(correct=False, reason="unclosed", completion_tokens=17)  # as an older scorer had it
    (out / "items.jsonl").write_text("".join(json.dumps(x) + "\n" for x in rows))
    res = r.invoke(app, ["eval", "report", str(out), "--rescore"])
    assert res.exit_code == 0, res.output
    assert "rescored 4 stored replies: 1 verdict(s) changed" in res.output
    again = load_rows(out)
    fixed = again[rows[1]["id"]]
    assert fixed["correct"] and fixed["reason"] == rows[0]["reason"] and fixed["completion_tokens"] == 17
    assert fixed["raw_output"] == rows[1]["raw_output"]
    assert load_summary(out)["benchmarks"]["sealtool"]["accuracy"] == 100.0


def test_offline_benchmarks_are_listed_by_eval_list_or_when_asked(tmp_path):
    """NexusRaven and SNIPS (not obtainable offline, spec §12.3): `eval list` lists them; `eval report` and
    `eval compare` print their n/a rows only under --show-offline."""
    from typer.testing import CliRunner

    from toolr0.cli import app
    from toolr0.eval.report import write_summary

    for name, acc in (("base", 2), ("trained", 4)):
        write_summary(tmp_path / name, _fake_summary(acc, 5, 1, name))
    cli = CliRunner()
    listed = cli.invoke(app, ["eval", "list"])
    assert listed.exit_code == 0 and "nexusraven" in listed.output and "snips" in listed.output
    for cmd in (["report", str(tmp_path / "base")], ["compare", str(tmp_path / "base"), str(tmp_path / "trained")]):
        plain = cli.invoke(app, ["eval", *cmd])
        asked = cli.invoke(app, ["eval", *cmd, "--show-offline"])
        assert plain.exit_code == asked.exit_code == 0, plain.output + asked.output
        assert "ToolAlpaca" in plain.output and "NexusRaven" not in plain.output and "SNIPS" not in plain.output
        assert "| NexusRaven |" in asked.output and "| SNIPS |" in asked.output
