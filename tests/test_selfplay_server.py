"""The self-play loop with a managed frozen-Solver server (server.managed, openai backend), the server being the
fake OpenAI-compatible process of tests/fake_openai_server.py: phase A's reward queries a server serving
S_{t-1}, stage B's Solver queries a server, training stops it, and iteration 2 serves the new Solver S_1."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

from toolr0.inference.base import SamplingParams
from toolr0.io import read_jsonl
from toolr0.selfplay.loop import run_selfplay

pytest.importorskip("trl")

from selfplay_fakes import FakeGeneratorEngine, tiny_config  # noqa: E402

FAKE = str(Path(__file__).with_name("fake_openai_server.py"))


def _cfg(model_dir, **extra):
    return tiny_config(
        model_dir,
        **{
            "inference.backend": "openai",
            "inference.timeout_s": 20,
            "server.managed": True,
            "server.command": [sys.executable, FAKE],
            "server.port": 0,
            "server.startup_timeout_s": 30,
            "server.poll_interval_s": 0.1,
            "frozen_solver.verify.tau": 0.0,  # cross-verified at any agreement, so the fake Solver's p̂ = 0 tasks are kept
            "curriculum.keep_zero": True,  # the fake Solver answers [] (p̂ = 0): kept as hard, so S_1 is trained
            "loop.n_candidates": 3,
            "loop.gen_batch_size": 3,
            **extra,
        },
    )


@pytest.mark.slow
def test_loop_serves_the_frozen_solver_and_restarts_it_with_new_weights(tmp_path, tiny_model_dir):
    out = tmp_path / "run"
    run_selfplay(_cfg(tiny_model_dir), out, progress=False, engine_factory=FakeGeneratorEngine)
    state = json.loads((out / "state.json").read_text())
    assert state["finished"] and state["checkpoints"]["solver"]["1"] == "iter_01/solver/final"
    events = [m for m in read_jsonl(out / "metrics.jsonl") if m["event"].startswith("server_")]
    starts = [e["checkpoint"] for e in events if e["event"] == "server_start"]
    s1 = str(out / "iter_01" / "solver" / "final")
    # iteration 1: phase A and stage B serve the base model; iteration 2: both serve S_1 (a LoRA adapter)
    assert starts == [None, None, s1, s1]
    assert [e["event"] for e in events] == [
        "server_start",
        "server_stop",
    ] * 4  # never two at once, all stopped
    s1_start = next(e["command"] for e in events if e.get("checkpoint") == s1)
    assert f"--lora-modules solver={s1}" in s1_start and str(tiny_model_dir) in s1_start
    log = (out / "server.log").read_text()
    assert f"root={tiny_model_dir}" in log and f"root={s1}" in log  # stage B's pass@K queries reached both


def test_phase_a_reward_queries_the_served_frozen_solver(tmp_path, tiny_model_dir, monkeypatch):
    """The service handed to Generator training is the served S_{t-1}, health-checked, stopped afterwards."""
    import toolr0.training.run as trun
    from toolr0.core.schema import Task, Tool, ToolCall
    from toolr0.selfplay.engine import RoleEngine
    from toolr0.selfplay.rundir import RunDir

    cfg = _cfg(tiny_model_dir)
    run = RunDir(tmp_path / "run")
    run.open({}, "")
    seen = {}

    def fake_train_generator(cfg_, out_dir, *, service, **kw):
        task = Task(
            "Weather in Paris?",
            [Tool("w", "weather", {"city": {"type": "string"}}, ["city"])],
            [ToolCall("w", {"city": "Paris"})],
        )
        seen["url"] = service.sampler.base_url
        seen["p"], seen["judge"] = service.pass_rates([task], 2), service.judge([task])
        seen["running"] = engine.server.running
        return SimpleNamespace(
            log_history=[],
            final_dir=None,
            global_step=0,
            start_step=0,
            resumed_from=None,
            seconds=0.0,
            seconds_per_step=None,
            peak_rss_gb=0.0,
            precision="fp32",
        )

    monkeypatch.setattr(trun, "train_generator", fake_train_generator)
    engine = RoleEngine(cfg, run)
    engine.train_generator(
        iteration=1, init=None, frozen_solver=None, out_dir=tmp_path / "g", reporter=_Rep()
    )
    assert seen["url"].startswith("http://127.0.0.1:") and seen["running"]
    assert seen["p"] == [0.0] and seen["judge"] == [4]  # the fake server's deterministic answers
    assert engine.server is None  # stopped after the phase
    assert f"root={tiny_model_dir}" in (run.root / "server.log").read_text()
    engine.close()


class _Rep:
    def note(self, *a, **k):
        pass

    def advance(self, *a, **k):
        pass

    def update(self, *a, **k):
        pass


def test_a_server_that_cannot_start_stops_the_loop_with_one_line(tmp_path, tiny_model_dir, monkeypatch):
    from toolr0.inference.server import ServerError

    monkeypatch.setenv("FAKE_SERVER_FAIL_START", "1")
    with pytest.raises(ServerError) as err:
        run_selfplay(
            _cfg(tiny_model_dir), tmp_path / "run", progress=False, engine_factory=FakeGeneratorEngine
        )
    assert "exited with code 1 while starting" in str(err.value) and "\n" not in str(err.value)


def test_managed_server_needs_the_openai_backend():
    from toolr0.config import load_config
    from toolr0.errors import ConfigError

    with pytest.raises(ConfigError, match="server.managed needs inference.backend: openai"):
        load_config(None, {"server.managed": True})


def test_engine_restarts_the_server_only_when_the_checkpoint_changes(
    tmp_path, tiny_model_dir, tiny_adapter_dir
):
    from toolr0.selfplay.engine import RoleEngine
    from toolr0.selfplay.rundir import RunDir

    run = RunDir(tmp_path / "run")
    run.open({}, "")
    engine = RoleEngine(_cfg(tiny_model_dir), run)
    try:
        first = engine.serve(None)
        assert engine.serve(None) is first and first.running  # same weights: the running server is reused
        second = engine.serve(str(tiny_adapter_dir))  # new Solver weights: a new server process
        assert second is not first and not first.running and second.running
        assert second.adapter == str(tiny_adapter_dir) and second.models() == ["solver"]
        out = second.sampler().generate([[{"role": "user", "content": "x"}]], SamplingParams(n=1))
        assert out[0] == [f"4 [{tiny_adapter_dir}] <tool_call_answer>[]</tool_call_answer>"]
    finally:
        engine.close()
    assert not second.running and engine.server is None
    events = [m["event"] for m in read_jsonl(run.metrics_path)]
    assert events == ["server_start", "server_stop", "server_start", "server_stop"]
