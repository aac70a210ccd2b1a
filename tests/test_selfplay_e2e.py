"""End to end on the tiny random model: 2 iterations through every stage, run-directory contents checked.

The tiny model never writes a valid task, so every candidate is rejected and the Solver phase is skipped
with a recorded reason (the empty-stage path). The data path (a fake Generator writing valid tasks, so
dedup, cross-verification, pass@K, selection and Solver training all see data) is checked in
test_selfplay_resume.py, whose uninterrupted reference run is exactly that.
"""

from __future__ import annotations

import json

import pytest

from toolr0.io import read_jsonl
from toolr0.selfplay.loop import run_selfplay

pytest.importorskip("trl")

from selfplay_fakes import tiny_config  # noqa: E402


def _lines(path):
    return list(read_jsonl(path))


def test_two_iterations_tiny_model_empty_stages(tmp_path, tiny_model_dir):
    cfg = tiny_config(tiny_model_dir, **{"loop.n_candidates": 3, "loop.gen_batch_size": 3})
    out = tmp_path / "run"
    res = run_selfplay(cfg, out, progress=False)
    assert [r["iter"] for r in res["rows"]] == [1, 2]
    state = json.loads((out / "state.json").read_text())
    assert state["finished"] is True
    for t in (1, 2):
        d = out / f"iter_{t:02d}"
        cands = _lines(d / "candidates.jsonl")
        assert len(cands) == 3 and all({"id", "spec", "ok", "reason", "text"} <= set(c) for c in cands)
        assert all(not c["ok"] and c["reason"] for c in cands)  # the random model writes no valid task
        counts = json.loads((d / "stage_counts.json").read_text())
        assert counts["generated"] == 3 and counts["selected"] == 0
        assert sum(counts["reasons"].values()) == 3
        assert (d / "curriculum.jsonl").exists() and _lines(d / "curriculum.jsonl") == []
        # phase A ran (one real GRPO step of the Generator adapter) and was checkpointed
        assert (d / "generator" / "final" / "adapter_config.json").is_file()
        assert state["checkpoints"]["generator"][str(t)] == f"iter_{t:02d}/generator/final"
        # phase C was skipped with a reason, not crashed
        assert "empty curriculum" in state["skipped"][f"iter_{t:02d}/solver_train"]
        assert (d / "passrate_hist.png").is_file()
    assert load_yaml(out / "config.yaml")["loop"]["iterations"] == 2
    metrics = _lines(out / "metrics.jsonl")
    timed = {(m["iteration"], m["stage"]) for m in metrics if m["event"] == "stage_time"}
    assert {(1, "generator_train"), (1, "generate"), (2, "generate")} <= timed
    peaks = [m["peak_rss_gb"] for m in metrics if m["event"] == "stage_time"]
    assert all(p > 0 for p in peaks) and peaks == sorted(peaks)  # the process's peak so far, per stage
    assert any(m["event"] == "train_log" and m["role"] == "generator" for m in metrics)
    assert list((out / "tb").glob("events.out.tfevents.*"))
    md = (out / "summary.md").read_text()
    assert "| 1 | 3 | 0 |" in md and "empty curriculum" in md
    assert (out / "plots" / "acceptance.png").is_file()
    # running the same command again on a finished run does nothing and keeps the artefacts
    before = (out / "iter_02" / "candidates.jsonl").read_bytes()
    run_selfplay(cfg, out, progress=False)
    assert (out / "iter_02" / "candidates.jsonl").read_bytes() == before


def load_yaml(p):
    import yaml

    return yaml.safe_load(p.read_text())


def test_ablations_reach_the_trainers(tmp_path, tiny_model_dir):
    """shared weights + no difficulty reward + hard band edges (Table 3) in one short iteration."""
    from selfplay_fakes import FakeGeneratorEngine

    cfg = tiny_config(
        tiny_model_dir,
        **{
            "loop.iterations": 1,
            "roles.mode": "shared",
            "rewards.difficulty_weight": 0,
            "rewards.band_mode": "hard",
            "frozen_solver.verify.tau": 0.0,
            "curriculum.keep_zero": True,
            "loop.n_candidates": 3,
            "loop.gen_batch_size": 3,
        },
    )
    out = tmp_path / "run"
    run_selfplay(cfg, out, progress=False, engine_factory=FakeGeneratorEngine)
    resolved = json.loads((out / "iter_01" / "generator" / "resolved.json").read_text())["toolr0_config"]
    assert resolved["roles"]["mode"] == "shared"
    assert resolved["rewards"]["difficulty_weight"] == 0.0 and resolved["rewards"]["band_mode"] == "hard"
    state = json.loads((out / "state.json").read_text())
    assert state["checkpoints"]["solver"]["1"] == "iter_01/solver/final" and not state["skipped"]
    # one parameter set: both checkpoints hold the single shared adapter
    for role in ("generator", "solver"):
        ac = json.loads((out / "iter_01" / role / "final" / "adapter_config.json").read_text())
        assert ac["r"] == cfg.roles.lora_r


def _one_kind_spec(tmp_path, num_calls: int = 0, domains: str = "{travel: 1}"):
    """A spec file of single-turn specs (travel unless `domains` says otherwise) with 2-tool menus and `num_calls`
    gold calls each."""
    spec = tmp_path / f"only_{num_calls}_calls.yaml"
    spec.write_text(
        f"domains: {domains}\ncontext_type: {{single_turn: 1}}\nnum_calls: {{single_turn: {{{num_calls}: 1}}}}\n"
        "menu_size:\n  default: {values: {2: 1}}\n"
    )
    return spec


def _run_one_frozen_iteration(
    tmp_path,
    tiny_model_dir,
    num_calls: int = 0,
    engine_factory=None,
    domains: str = "{travel: 1}",
    **overrides,
):
    """One iteration with the Generator frozen (phase A is not what these tests are about) and the fake
    Generator writing valid tasks of the given call count: 4 candidates, cross-verification on, p̂ = 0 kept
    unless an override says otherwise. Returns the iteration folder."""
    from selfplay_fakes import FakeGeneratorEngine

    settings = {
        "spec_file": str(_one_kind_spec(tmp_path, num_calls, domains)),
        "loop.iterations": 1,
        "loop.freeze_generator": True,
        "loop.cross_verify": True,
        "curriculum.keep_zero": True,
        "loop.n_candidates": 4,
        "loop.gen_batch_size": 4,
        **overrides,
    }
    out = tmp_path / "run"
    run_selfplay(
        tiny_config(tiny_model_dir, **settings),
        out,
        progress=False,
        engine_factory=engine_factory or FakeGeneratorEngine,
    )
    return out / "iter_01"


def test_no_call_tasks_through_every_stage(tmp_path, tiny_model_dir):
    """A spec distribution of only no-call specs: gold [] is verified, deduplicated, cross-verified, given a
    pass rate, selected, trained on by the Solver and counted in stage_counts.json and summary.md."""
    it = _run_one_frozen_iteration(tmp_path, tiny_model_dir, **{"frozen_solver.verify.tau": 0.0})
    out = it.parent
    ok = [r for r in _lines(it / "candidates.jsonl") if r["ok"]]
    assert ok and all(r["task"]["calls"] == [] and r["details"]["no_call"] for r in ok)
    assert len(_lines(it / "crossverify.jsonl")) == len(_lines(it / "passrates.jsonl")) >= 1
    curriculum = _lines(it / "curriculum.jsonl")
    assert curriculum and all(r["answer"] == [] for r in curriculum)
    state = json.loads((out / "state.json").read_text())
    assert state["checkpoints"]["solver"]["1"] == "iter_01/solver/final"
    assert list(state["skipped"]) == ["iter_01/generator_train"]  # frozen Generator; the Solver trained
    counts = json.loads((it / "stage_counts.json").read_text())
    nc = counts["no_call"]
    assert nc["asked"] == 4 and nc["verified"] == counts["verified"] and nc["selected"] == len(curriculum)
    assert "## No-call tasks (gold [])" in (out / "summary.md").read_text()


def test_no_call_tasks_can_skip_cross_verification(tmp_path, tiny_model_dir):
    """`frozen_solver.verify.no_call: false` (small presets): gold-[] tasks are not put to the frozen Solver's vote
    (a Solver that always calls a tool would drop them all) but still get a pass rate and reach the curriculum."""
    it = _run_one_frozen_iteration(
        tmp_path,
        tiny_model_dir,
        **{
            "frozen_solver.verify.no_call": False,
            "frozen_solver.verify.tau": 1.0,  # would drop any task the tiny Solver does not answer with no call every time
            "solver.max_steps": 1,
        },
    )
    verified = [r for r in _lines(it / "candidates.jsonl") if r["ok"]]
    assert verified and _lines(it / "crossverify.jsonl") == []  # none was put to the vote
    passrates = _lines(it / "passrates.jsonl")
    assert len(passrates) == len({r["task"]["question"] for r in verified})
    # spec §11: an exempt task was never cross-verified, so at p̂ = 0 nothing vouches for its gold: dropped
    solved = {r["id"] for r in passrates if r["p_hat"] > 0}
    assert {r["id"] for r in _lines(it / "curriculum.jsonl")} == solved


def test_no_call_tasks_derived_from_call_tasks(tmp_path, tiny_model_dir):
    """`loop.no_call_from_calls`: unique call tasks also give a no-call task (gold tools off the menu, gold []),
    which goes through cross-verification, pass@K and selection like a generated one and is counted."""
    it = _run_one_frozen_iteration(
        tmp_path,
        tiny_model_dir,
        num_calls=1,
        **{"loop.no_call_from_calls": 1.0, "frozen_solver.verify.tau": 0.0, "solver.max_steps": 1},
    )
    out = it.parent
    unique = [r for r in _lines(it / "dedup.jsonl") if r["kept"]]
    derived = _lines(it / "derived_no_call.jsonl")
    assert len(derived) == len(unique) >= 1
    candidates = {r["id"]: r for r in _lines(it / "candidates.jsonl")}
    for d in derived:
        gold = {c["name"] for c in candidates[d["derived_from"]]["task"]["calls"]}
        assert d["task"]["calls"] == [] and d["id"].endswith("-nc") and d["spec"]["num_calls"] == 0
        assert d["text"] == ""  # the source completion's text holds the calls: not carried
        assert gold and not gold & {t["name"] for t in d["task"]["tools"]}
    labelled = {r["id"] for r in _lines(it / "passrates.jsonl")}
    assert {d["id"] for d in derived} <= labelled
    counts = json.loads((it / "stage_counts.json").read_text())
    assert counts["derived_no_call"] == len(derived)
    md = (out / "summary.md").read_text()
    assert "derived from call tasks" in md and f"| 1 | 0 | 0 | {len(derived)} |" in md
    assert any(r["answer"] == [] for r in _lines(it / "curriculum.jsonl"))


class _HalfSolved:
    """The real frozen Solver, except that every call task counts as solved by 1 of its K samples (the tiny random
    model solves nothing); the tasks put to pass@K are recorded."""

    asked: list[int] = []

    def __init__(self, inner):
        self._inner = inner

    def __getattr__(self, name):
        return getattr(self._inner, name)

    def pass_rates_detailed(self, tasks, K=None, seed=None):
        real = self._inner.pass_rates_detailed(tasks, K, seed)
        _HalfSolved.asked += [len(t["calls"]) for t in tasks]
        return [
            r._replace(p_hat=1 / r.K, successes=1) if t["calls"] else r
            for r, t in zip(real, tasks, strict=True)
        ]


def test_two_call_tasks_composed_from_solved_one_call_tasks(tmp_path, tiny_model_dir):
    """`loop.two_call_from_solved`: one-call tasks with p̂ > 0 are paired into two-call tasks (both questions, both
    gold calls, both tools on the menu), which get their own pass@K, reach the curriculum and are counted."""
    from selfplay_fakes import wrapped_engine

    _HalfSolved.asked = []
    it = _run_one_frozen_iteration(
        tmp_path,
        tiny_model_dir,
        num_calls=1,
        engine_factory=wrapped_engine(solver=_HalfSolved),
        **{
            "loop.two_call_from_solved": 2,
            "loop.n_candidates": 6,
            "loop.gen_batch_size": 6,
            "curriculum.n_final": 16,
            "curriculum.keep_zero": False,
            "frozen_solver.verify.tau": 0.0,
            "solver.max_steps": 1,
        },
    )
    out = it.parent
    labelled = {r["id"]: r for r in _lines(it / "passrates.jsonl")}
    composed = _lines(it / "composed.jsonl")
    assert len(composed) == 2
    for c in composed:
        first, second = (labelled[i] for i in c["composed_from"])
        assert first["p_hat"] > 0 and second["p_hat"] > 0  # only solved parts
        parts = [_task_of(it, i) for i in c["composed_from"]]
        assert c["id"] == "+".join(c["composed_from"]) and c["spec"]["num_calls"] == 2
        assert c["task"]["calls"] == parts[0]["calls"] + parts[1]["calls"]
        assert (
            c["task"]["question"].startswith(parts[0]["question"].rstrip("."))
            and " Also, " in c["task"]["question"]
        )
        assert {x["calls"][0]["name"] for x in parts} <= {t["name"] for t in c["task"]["tools"]}
    assert _HalfSolved.asked.count(2) == 2  # the composed tasks were put to the frozen Solver's pass@K
    composed_labels = _lines(it / "passrates_composed.jsonl")
    assert [r["id"] for r in composed_labels] == [c["id"] for c in composed]
    curriculum = _lines(it / "curriculum.jsonl")
    assert sum(len(r["answer"]) == 2 for r in curriculum) == 2
    counts = json.loads((it / "stage_counts.json").read_text())
    assert counts["composed_two_call"] == {"composed": 2, "solved": 2, "labelled": 2, "selected": 2}
    assert "## Two-call tasks composed from solved one-call tasks" in (out / "summary.md").read_text()
    assert "| 1 | 2 | 2 | 2 | 2 |" in (out / "summary.md").read_text()


def _task_of(it, task_id):
    return next(r["task"] for r in _lines(it / "candidates.jsonl") if r["id"] == task_id)


def test_no_call_tasks_from_another_domains_menu(tmp_path, tiny_model_dir):
    """`loop.no_call_from_other_menus`: a call task's question with the whole menu of a call task of another domain
    gives a no-call task (gold []), which goes through pass@K and selection and is counted."""
    from selfplay_fakes import wrapped_engine

    class _Gen:  # finance tools take a "location", travel ones a "place": no tool of one serves the other's call
        def __init__(self, inner):
            self.inner = inner

        def generate(self, messages, specs, seed):
            texts = self.inner.generate(messages, specs, seed)
            return [
                x.replace('"place"', '"location"') if s.domain == "finance" else x
                for x, s in zip(texts, specs, strict=True)
            ]

    class _NeverAbstains(_HalfSolved):  # the frozen Solver calls a tool on every no-call task: p̂ = 0
        def pass_rates_detailed(self, tasks, K=None, seed=None):
            real = super().pass_rates_detailed(tasks, K, seed)
            return [
                r if t["calls"] else r._replace(p_hat=0.0, successes=0)
                for r, t in zip(real, tasks, strict=True)
            ]

    it = _run_one_frozen_iteration(
        tmp_path,
        tiny_model_dir,
        num_calls=1,
        engine_factory=wrapped_engine(generator=_Gen, solver=_NeverAbstains),
        domains="{travel: 1, finance: 1}",
        **{
            "loop.no_call_from_other_menus": 1.0,
            "curriculum.keep_zero": False,
            "curriculum.keep_zero_by_construction": True,  # kept as hard at p̂ = 0: the gold [] holds by construction
            "curriculum.n_final": 32,
            "loop.n_candidates": 8,
            "loop.gen_batch_size": 8,
            "frozen_solver.verify.tau": 0.0,
            "solver.max_steps": 1,
        },
    )
    tasks = {r["id"]: r["task"] for r in _lines(it / "candidates.jsonl") if r["ok"]}
    derived = _lines(it / "derived_no_call.jsonl")
    assert derived and all(d["id"].endswith("-om") and d["task"]["calls"] == [] for d in derived)
    for d in derived:
        source, menu = tasks[d["derived_from"]], tasks[d["menu_from"]]
        assert d["task"]["question"] == source["question"] and d["task"]["domain"] == source["domain"]
        assert d["task"]["tools"] == menu["tools"] and menu["domain"] != source["domain"]
    passrates = {r["id"]: r for r in _lines(it / "passrates.jsonl")}
    assert all(passrates[d["id"]]["p_hat"] == 0.0 and passrates[d["id"]]["by_construction"] for d in derived)
    curriculum = {r["id"]: r for r in _lines(it / "curriculum.jsonl")}
    assert all(curriculum[d["id"]]["difficulty"] == "hard" for d in derived)
    assert json.loads((it / "stage_counts.json").read_text())["derived_no_call"] == len(derived)


def test_in_prompt_references_from_probed_solved_tasks(tmp_path, tiny_model_dir):
    """`loop.references`: each batch's verified call tasks are probed by the frozen Solver (`probe_p_hat`), and the
    solved ones are shown as earlier chat turns in the prompts of the later batches (the first batch has none); a
    candidate that writes out the reference it was shown fails verification."""
    from selfplay_fakes import _FakeGen, wrapped_engine

    seen = []

    class Gen(_FakeGen):
        def generate(self, messages, specs, seed):
            seen.append(messages)
            texts = super().generate(messages, specs, seed)
            if len(seen) == 2:  # the second batch's first row writes out the reference it was shown
                texts[0] = messages[0][2]["content"]
            return texts

    it = _run_one_frozen_iteration(
        tmp_path,
        tiny_model_dir,
        num_calls=1,
        engine_factory=wrapped_engine(generator=lambda _fake: Gen(), solver=_HalfSolved),
        **{"loop.references": 1, "loop.n_candidates": 6, "loop.gen_batch_size": 2, "curriculum.keep_zero": False},
    )
    rows = _lines(it / "candidates.jsonl")
    assert any(r["ok"] for r in rows)
    assert all(r["probe_p_hat"] == 0.5 for r in rows if r["ok"])  # 1 of K = 2: the pool's p̂ >= 0.5
    assert all("probe_p_hat" not in r for r in rows if not r["ok"])
    assert [[m["role"] for m in conv] for conv in seen[0]] == [["system", "user"]] * 2  # nothing probed yet
    later = seen[1][0]
    assert [m["role"] for m in later] == ["system", "user", "assistant", "user"]
    first = rows[0]["task"]["question"]
    assert f"<question>{first}</question>" in later[2]["content"]
    assert rows[2]["references"] == [first] and rows[0]["references"] == []
    assert rows[2]["reason"] == "copied_reference_calls" and not rows[2]["ok"]  # a lifted task is not new
