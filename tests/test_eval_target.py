"""What `toolr0 eval run --model` names: a self-play run directory is evaluated in its own Solver format (its
resolved config's `prompts` section) unless the command line says otherwise; `prompts.solver_format` has one
default, shared by the config, `SolverFormat`, the evaluation settings and the commands."""

from __future__ import annotations

import json

import pytest
import yaml
from typer.testing import CliRunner

from toolr0.cli import app
from toolr0.core.prompts import PromptConfig
from toolr0.core.solver_format import DEFAULT_SOLVER_FORMAT, SolverFormat
from toolr0.errors import ToolR0Error
from toolr0.eval.items import load_rows
from toolr0.eval.runner import EvalSettings
from toolr0.eval.target import choose_solver_format

TOOLS = {
    "get_weather": {
        "description": "Weather of a city.",
        "parameters": {"city": {"type": "str", "required": True}},
    }
}
SAMPLES = [
    {
        "query": f"What is the weather in {city}?",
        "tools": [{"name": "get_weather", **TOOLS["get_weather"]}],
        "answers": [{"name": "get_weather", "arguments": {"city": city}}],
    }
    for city in ("Paris", "Oslo", "Lima")
]


@pytest.fixture
def data_dir(tmp_path):
    """A benchmark folder holding a three-item ToolAlpaca-format file (not the real data)."""
    (tmp_path / "bench" / "hammer").mkdir(parents=True)
    (tmp_path / "bench" / "hammer" / "toolalpaca.json").write_text(json.dumps(SAMPLES))
    return tmp_path / "bench"


def _run_dir(tmp_path, prompts, solver=None, where="state"):
    """A self-play run folder whose resolved config has this `prompts` section (in state.json or config.yaml)."""
    run = tmp_path / "run"
    (run / "iter_01").mkdir(parents=True)
    cfg = {"seed": 13, "prompts": prompts} if prompts is not None else {"seed": 13}
    ck = {"solver": {"1": str(solver)}} if solver else {}
    if where == "state":
        (run / "state.json").write_text(json.dumps({"config": cfg, "checkpoints": ck}))
    else:
        (run / "state.json").write_text(json.dumps({"checkpoints": ck}))
        (run / "config.yaml").write_text(yaml.safe_dump(cfg))
    return run


def test_solver_format_has_one_default():
    assert DEFAULT_SOLVER_FORMAT == PromptConfig().solver_format
    assert SolverFormat().name == DEFAULT_SOLVER_FORMAT
    assert SolverFormat.from_config(object()).name == DEFAULT_SOLVER_FORMAT
    assert EvalSettings().solver_format == DEFAULT_SOLVER_FORMAT
    choice = choose_solver_format("default")
    assert choice.solver_format == DEFAULT_SOLVER_FORMAT and "config default" in choice.why
    assert (choice.prompt_variant, choice.reason_first) == (PromptConfig().solver_variant, False)


def test_solve_without_an_option_uses_the_config_default(tmp_path, monkeypatch):
    import toolr0.inference as inference

    seen = []

    class Recording:
        def generate(self, prompts, params):
            seen.extend(prompts)
            return [["<think>\nx\n</think>\n<tool_call_answer>[]</tool_call_answer>"] for _ in prompts]

    monkeypatch.setattr(inference, "build_sampler", lambda *a, **k: Recording())
    tools = tmp_path / "tools.json"
    tools.write_text(json.dumps([{"name": "get_weather", **TOOLS["get_weather"]}]))
    res = CliRunner().invoke(app, ["solve", "-q", "Weather in Paris?", "--tools", str(tools)])
    assert res.exit_code == 0, res.output
    assert f"solver format: {DEFAULT_SOLVER_FORMAT}: the config default" in res.output
    assert seen[-1] == SolverFormat(DEFAULT_SOLVER_FORMAT).messages(
        "Weather in Paris?", json.loads(tools.read_text())
    )


@pytest.mark.parametrize("where", ["state", "config"])
def test_a_run_dir_brings_its_own_solver_format(tmp_path, where):
    prompts = {"solver_format": "native", "solver_variant": "compact", "solver_reason_first": True}
    run = _run_dir(tmp_path, prompts, where=where)
    choice = choose_solver_format(str(run))
    assert (choice.solver_format, choice.prompt_variant, choice.reason_first) == ("native", "compact", True)
    assert "the run's prompts.solver_format" in choice.why and str(run) in choice.why
    # each option given on the command line wins over the run's
    choice = choose_solver_format(str(run), "reference", "reference", False)
    assert (choice.solver_format, choice.prompt_variant, choice.reason_first) == (
        "reference",
        "reference",
        False,
    )
    assert choice.why == "--solver-format"


def test_a_run_dir_without_the_setting_takes_the_config_default(tmp_path):
    run = _run_dir(tmp_path, None)
    choice = choose_solver_format(str(run))
    assert choice.solver_format == DEFAULT_SOLVER_FORMAT and "does not set it" in choice.why


def test_a_run_dir_without_a_readable_config_is_one_line(tmp_path):
    run = tmp_path / "run"
    (run / "iter_01").mkdir(parents=True)
    with pytest.raises(ToolR0Error, match="pass --solver-format") as exc:
        choose_solver_format(str(run))
    assert "\n" not in str(exc.value)


def test_cli_eval_of_a_run_dir_uses_and_prints_its_format(tmp_path, data_dir):
    """Gold predictions (no model): the run's native format renders and scores them, and is recorded."""
    run = _run_dir(tmp_path, {"solver_format": "native"})
    base = ["eval", "run", "--model", str(run), "-b", "toolalpaca", "--data-dir", str(data_dir)]
    base += ["--predictions", "gold", "--no-progress"]
    res = CliRunner().invoke(app, [*base, "--out", str(tmp_path / "a")])
    assert res.exit_code == 0, res.output
    assert "solver format: native, prompt variant reference: the run's prompts.solver_format" in res.output
    cfg = json.loads((tmp_path / "a" / "eval_config.json").read_text())
    assert cfg["settings"]["solver_format"] == "native"
    rows = load_rows(tmp_path / "a")
    assert len(rows) == 3 and all(r["correct"] for r in rows.values())
    assert all("<tool_call>" in r["raw_output"] for r in rows.values())  # rendered natively
    res = CliRunner().invoke(app, [*base, "--solver-format", "reference", "--out", str(tmp_path / "b")])
    assert (
        res.exit_code == 0
        and "solver format: reference, prompt variant reference: --solver-format" in res.output
    )
    assert (
        json.loads((tmp_path / "b" / "eval_config.json").read_text())["settings"]["solver_format"]
        == "reference"
    )


def test_cli_eval_of_a_run_dir_prompts_its_solver_natively(
    tmp_path, data_dir, tiny_model_dir, torch_one_thread
):
    """Model predictions: the run's newest Solver (the tiny model) reads the native conversation."""
    run = _run_dir(tmp_path, {"solver_format": "native"}, solver=tiny_model_dir)
    args = [
        "eval",
        "run",
        "--model",
        str(run),
        "-b",
        "toolalpaca",
        "--data-dir",
        str(data_dir),
        "--limit",
        "1",
    ]
    args += [
        "--max-new-tokens",
        "2",
        "--dtype",
        "fp32",
        "--device",
        "cpu",
        "--no-progress",
        "--out",
        str(tmp_path / "o"),
    ]
    res = CliRunner().invoke(app, args)
    assert res.exit_code == 0, res.output
    (row,) = load_rows(tmp_path / "o").values()
    assert row["messages"][0]["role"] == "tools"  # the native conversation carries its menu as tools=
    cfg = json.loads((tmp_path / "o" / "eval_config.json").read_text())
    assert cfg["settings"]["solver_format"] == "native" and cfg["fingerprint"]["model"] == str(tiny_model_dir)
