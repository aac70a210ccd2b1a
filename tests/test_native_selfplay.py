"""One self-play iteration with the native Solver format on the tiny model (fake Generator writing valid tasks):
pass@K, cross-verification and Solver GRPO all speak the chat template's tool format."""

from __future__ import annotations

import json

import pytest

from toolr0.io import read_jsonl
from toolr0.selfplay.loop import run_selfplay

pytest.importorskip("trl")

from selfplay_fakes import FakeGeneratorEngine, tiny_config  # noqa: E402


def test_native_iteration_trains_the_solver_on_rendered_tool_prompts(tmp_path, tiny_model_dir):
    cfg = tiny_config(
        tiny_model_dir,
        **{
            "loop.iterations": 1,
            "frozen_solver.verify.tau": 0.0,
            "curriculum.keep_zero": True,
            "loop.n_candidates": 3,
            "loop.gen_batch_size": 3,
            "prompts.solver_format": "native",
        },
    )
    out = tmp_path / "run"
    run_selfplay(cfg, out, progress=False, engine_factory=FakeGeneratorEngine)
    state = json.loads((out / "state.json").read_text())
    assert state["checkpoints"]["solver"]["1"] == "iter_01/solver/final" and not state["skipped"]
    resolved = json.loads((out / "iter_01" / "solver" / "resolved.json").read_text())
    assert resolved["toolr0_config"]["prompts"]["solver_format"] == "native"
    rates = list(read_jsonl(out / "iter_01" / "passrates.jsonl"))
    assert rates and all(0.0 <= r["p_hat"] <= 1.0 for r in rates)


def test_native_solver_rows_are_rendered_with_each_tasks_tools():
    from toolr0.core.schema import Task, Tool, ToolCall
    from toolr0.core.solver_format import SolverFormat
    from toolr0.inference.hf import render_prompt
    from toolr0.inference.tiny import tiny_tokenizer
    from toolr0.training.data import solver_rows

    tok = tiny_tokenizer()
    tasks = [
        Task("Weather in Lisbon?", [Tool("get_weather", "", {"city": {"type": "string"}}, ["city"])],
             [ToolCall("get_weather", {"city": "Lisbon"})]),
        Task("Price of AAPL?", [Tool("get_price", "", {"symbol": {"type": "string"}}, ["symbol"])],
             [ToolCall("get_price", {"symbol": "AAPL"})]),
    ]
    rows = solver_rows(tasks, solver_format=SolverFormat("native"), render=lambda m: render_prompt(tok, m))
    assert isinstance(rows[0]["prompt"], str) and "get_weather" in rows[0]["prompt"]
    assert "get_price" in rows[1]["prompt"] and "get_weather" not in rows[1]["prompt"]
    ref = solver_rows(tasks)
    assert isinstance(ref[0]["prompt"], list) and ref[0]["prompt"][0]["role"] == "system"
    with pytest.raises(ValueError):
        solver_rows(tasks, solver_format=SolverFormat("native"))
