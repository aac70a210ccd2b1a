"""Issue 29 item 7: a dead frozen-Solver server stops the phase at the first unreachable call, before any
optimizer step trains on a zeroed curriculum reward; the loop watches the server while a child phase runs.
The server is the fake OpenAI-compatible server process (tests/fake_openai_server.py); the model the tiny one."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import pytest

from toolr0.core.frozen_solver import FrozenSolverConfig
from toolr0.core.rewards.config import RewardConfig
from toolr0.inference.server import ManagedServer, ServerConfig, free_port
from toolr0.inference.solver_service import SolverService

pytest.importorskip("trl")

FAKE = str(Path(__file__).with_name("fake_openai_server.py"))


def _server(tmp_path) -> ManagedServer:
    cfg = ServerConfig(
        command=[sys.executable, FAKE], port=0, startup_timeout_s=20, stop_timeout_s=5, poll_interval_s=0.1
    )
    weights = tmp_path / "solver_0"
    weights.mkdir(exist_ok=True)
    return ManagedServer(cfg, str(weights), tmp_path / "server.log")


def test_an_unreachable_server_stops_the_reward_at_the_first_call():
    """A plain OpenAI client (a child's: no server of its own to ask) fails once: the phase stops at once."""
    from _training_support import GEN_GOOD
    from toolr0.inference.openai_backend import OpenAISampler
    from toolr0.training.reward_funcs import RewardServiceError, generator_reward_funcs

    url = f"http://127.0.0.1:{free_port()}/v1"  # nothing listens: connection refused
    svc = SolverService(OpenAISampler(base_url=url, model="solver", timeout_s=5), seed=0)
    _, _, cur = generator_reward_funcs(RewardConfig(), svc, max_failures=3)
    with pytest.raises(RewardServiceError) as err:
        cur(completions=[[{"role": "assistant", "content": GEN_GOOD}]])
    msg = str(err.value)
    assert url in msg and "unreachable" in msg and "\n" not in msg


def test_a_server_killed_mid_phase_stops_generator_training_before_the_next_optimizer_step(tmp_path):
    from transformers import TrainerCallback

    from _training_support import GENERATOR_CHOICES, choice_factory, small_cfg
    from toolr0.inference.models import tiny_random_model
    from toolr0.training.reward_funcs import RewardServiceError
    from toolr0.training.roles import wrap_roles
    from toolr0.training.run import train_generator

    cfg = small_cfg(gen={"max_steps": 3, "save_steps": 1})
    model, tok = tiny_random_model(seed=0)
    rm = wrap_roles(model, tok, cfg.roles, seed=0)
    killed = {}
    with _server(tmp_path) as server:
        svc = SolverService(server.sampler(timeout_s=5), FrozenSolverConfig(k=1), seed=0)

        class KillServer(TrainerCallback):
            def on_step_end(self, args, state, control, **kwargs):
                if state.global_step == 1 and not killed:
                    killed["step"] = state.global_step
                    server.proc.kill()  # the server dies between two optimizer steps
                    server.proc.wait(timeout=10)
                    svc.clear()  # (the next step's tasks would otherwise be answered from the cache)
                return control

        t0 = time.monotonic()
        with pytest.raises(RewardServiceError) as err:
            train_generator(
                cfg,
                tmp_path / "gen",
                models=rm,
                service=svc,
                callbacks=[KillServer()],
                logits_processor_factory=choice_factory(rm.tokenizer, GENERATOR_CHOICES),
            )
    assert killed == {"step": 1}
    msg = str(err.value)
    assert "\n" not in msg and server.base_url in msg and "exited with code -9" in msg
    # no optimizer step after the death: only step 1 was saved or logged
    ckpts = sorted(p.name for p in (tmp_path / "gen" / "checkpoints").glob("checkpoint-*"))
    assert ckpts == ["checkpoint-1"]
    steps = {
        json.loads(line).get("step") for line in (tmp_path / "gen" / "metrics.jsonl").read_text().splitlines()
    }
    assert max(s for s in steps if s is not None) == 1
    assert time.monotonic() - t0 < 300


def test_the_loop_stops_a_child_phase_when_its_server_dies(tmp_path):
    """While a child phase runs, the parent watches the server it started: a dead server stops the child at
    once (not after the child's request timeouts)."""
    from toolr0.inference.server import ServerError
    from toolr0.selfplay.launch import run_child

    with _server(tmp_path) as server:
        child = [sys.executable, "-c", "import time; time.sleep(120)"]
        import threading

        threading.Timer(1.0, server.proc.kill).start()
        t0 = time.monotonic()
        with pytest.raises(ServerError) as err:
            run_child(child, {}, tmp_path / "child.log", "iteration 1 generator_train", watch=server.watch)
        assert time.monotonic() - t0 < 30
    assert "exited with code -9" in str(err.value) and "generator_train" in str(err.value)
    assert not (tmp_path / "child.pid").exists()
