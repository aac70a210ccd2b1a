"""The managed frozen-Solver server, driven with a fake OpenAI-compatible server PROCESS
(tests/fake_openai_server.py stands in for `vllm serve`): start, health, use, restart with new weights, stop,
port in use, a server that fails to start, a server that dies mid-phase. Loopback only; every wait is bounded."""

from __future__ import annotations

import socket
import sys
from pathlib import Path

import pytest

from toolr0.core.frozen_solver import FrozenSolverConfig
from toolr0.core.rewards.config import RewardConfig
from toolr0.core.schema import Task, Tool, ToolCall
from toolr0.errors import ToolR0Error
from toolr0.inference.base import SamplingParams
from toolr0.inference.server import ManagedServer, ServerConfig, ServerError, free_port, port_free
from toolr0.inference.solver_service import SolverService

FAKE = str(Path(__file__).with_name("fake_openai_server.py"))


def _cfg(**kw) -> ServerConfig:
    base = {
        "command": [sys.executable, FAKE],
        "port": 0,
        "startup_timeout_s": 20,
        "stop_timeout_s": 5,
        "poll_interval_s": 0.1,
    }
    return ServerConfig(**{**base, **kw})


def _task() -> Task:
    tool = Tool(name="w", description="weather", properties={"city": {"type": "string"}}, required=["city"])
    return Task(question="Weather in Paris?", tools=[tool], calls=[ToolCall("w", {"city": "Paris"})])


@pytest.fixture
def weights(tmp_path):
    """Two 'Solver checkpoints' (plain folders: the fake server only echoes their path)."""
    a, b = tmp_path / "solver_1", tmp_path / "solver_2"
    a.mkdir(), b.mkdir()
    return a, b


def test_command_is_built_from_the_config(tmp_path):
    cfg = ServerConfig(
        port=8123, gpus="3", tensor_parallel_size=2, extra_args=["--gpu-memory-utilization", "0.8"]
    )
    s = ManagedServer(cfg, "/m/solver", tmp_path / "log")
    assert s.command() == [
        "vllm",
        "serve",
        "/m/solver",
        "--host",
        "127.0.0.1",
        "--port",
        "8123",
        "--served-model-name",
        "solver",
        "--tensor-parallel-size",
        "2",
        "--gpu-memory-utilization",
        "0.8",
    ]
    assert s.env()["CUDA_VISIBLE_DEVICES"] == "3" and s.base_url == "http://127.0.0.1:8123/v1"
    assert s.describe().startswith("CUDA_VISIBLE_DEVICES=3 vllm serve /m/solver")
    adapter = tmp_path / "adapter"
    adapter.mkdir()
    (adapter / "adapter_config.json").write_text("{}")
    lora = ManagedServer.for_checkpoint(cfg, "/m/base", str(adapter), tmp_path / "log")
    cmd = lora.command()
    assert cmd[2] == "/m/base" and cmd[cmd.index("--lora-modules") + 1] == f"solver={adapter}"
    assert "--enable-lora" in cmd and "--served-model-name" not in cmd
    assert ManagedServer.for_checkpoint(cfg, "/m/base", None, tmp_path / "log").model == "/m/base"


def test_start_health_use_restart_with_new_weights_stop(tmp_path, weights):
    a, b = weights
    log = tmp_path / "server.log"
    s1 = ManagedServer(_cfg(), str(a), log).start()
    try:
        assert s1.running and s1.models() == ["solver"]
        assert s1.sampler().health_check() == ["solver"]
        svc = SolverService(s1.sampler(), FrozenSolverConfig(k=2), seed=0)
        # the deterministic fake answers the empty list and judge score 4, quoting the weights it serves
        assert svc.pass_rates([_task()]) == [0.0] and svc.judge([_task()]) == [4]
        out = s1.sampler().generate([[{"role": "user", "content": "x"}]], SamplingParams(n=2))
        assert out[0] == [f"4 [{a}] <tool_call_answer>[]</tool_call_answer>"] * 2
        port = s1.port
    finally:
        rc = s1.stop()
    assert rc is not None and not s1.running and port_free("127.0.0.1", port)
    # the next iteration serves the new Solver: a fresh process on the new weights
    with ManagedServer(_cfg(), str(b), log) as s2:
        out = s2.sampler().generate([[{"role": "user", "content": "x"}]], SamplingParams(n=1))
        assert out[0] == [f"4 [{b}] <tool_call_answer>[]</tool_call_answer>"]
    assert not s2.running
    text = log.read_text()
    assert f"root={a}" in text and f"root={b}" in text  # the log holds both servers' lines


def test_port_in_use_is_a_one_line_error_or_a_free_port_when_configured(tmp_path, weights):
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen(1)
    port = taken.getsockname()[1]
    try:
        with pytest.raises(ServerError) as err:
            ManagedServer(_cfg(port=port), str(weights[0]), tmp_path / "log").start()
        assert f"port {port} on 127.0.0.1 is in use" in str(err.value) and "\n" not in str(err.value)
        with ManagedServer(_cfg(port=port, pick_free_port=True), str(weights[0]), tmp_path / "log") as s:
            assert s.port != port and s.models() == ["solver"]
    finally:
        taken.close()


def test_a_server_that_fails_to_start_reports_its_exit_code_and_log_tail(tmp_path, weights, monkeypatch):
    monkeypatch.setenv("FAKE_SERVER_FAIL_START", "1")
    s = ManagedServer(_cfg(), str(weights[0]), tmp_path / "log")
    with pytest.raises(ServerError) as err:
        s.start()
    msg = str(err.value)
    assert "exited with code 1 while starting" in msg and "CUDA out of memory" in msg and "\n" not in msg
    assert not s.running


def test_a_server_that_never_answers_times_out_and_is_stopped(tmp_path, weights, monkeypatch):
    monkeypatch.setenv("FAKE_SERVER_STARTUP_S", "30")
    s = ManagedServer(_cfg(startup_timeout_s=1.5), str(weights[0]), tmp_path / "log")
    with pytest.raises(ServerError, match="did not answer /v1/models within 1.5 s"):
        s.start()
    assert s.proc is None  # stopped, not left behind


def test_stop_kills_a_server_that_ignores_terminate(tmp_path, weights, monkeypatch):
    monkeypatch.setenv("FAKE_SERVER_IGNORE_TERM", "1")
    s = ManagedServer(_cfg(stop_timeout_s=1), str(weights[0]), tmp_path / "log").start()
    proc = s.proc
    assert s.stop() == -9 and proc.poll() == -9


def test_a_server_dying_mid_phase_stops_the_reward_with_its_log_tail(tmp_path, weights, monkeypatch, caplog):
    """The first call after the server died stops the phase (issue 29: not after max_failures calls), with the
    server's exit code even when the dropped connection is seen before the process can be reaped (the fake
    exits 0.5 s after closing it: this was a race, intermittently a bare 'unreachable' without the log tail)."""
    from _training_support import GEN_GOOD
    from toolr0.training.reward_funcs import RewardServiceError, generator_reward_funcs

    monkeypatch.setenv("FAKE_SERVER_DIE_AFTER", "2")  # one reward call = a pass-rate and a judge request
    monkeypatch.setenv("FAKE_SERVER_EXIT_LAG_S", "0.5")
    with ManagedServer(_cfg(), str(weights[0]), tmp_path / "log") as s:
        svc = SolverService(s.sampler(timeout_s=5), FrozenSolverConfig(k=1), seed=0)
        _, _, cur = generator_reward_funcs(RewardConfig(), svc, max_failures=2)
        conv = [[{"role": "assistant", "content": GEN_GOOD}]]
        assert len(cur(completions=conv)) == 1 and "failed" not in caplog.text  # answered
        svc.clear()
        with pytest.raises(RewardServiceError) as err:
            cur(completions=conv)  # the server dies: the phase stops at this first failed call
    msg = str(err.value)
    assert s.base_url in msg and "exited with code 3 mid-phase" in msg and "died mid-request" in msg
    assert "unreachable" in msg and "\n" not in msg


def test_free_port_and_port_free():
    p = free_port()
    assert port_free("127.0.0.1", p)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", p))
        sock.listen(1)
        assert not port_free("127.0.0.1", p)
    assert isinstance(ToolR0Error("x"), Exception)


def test_a_server_does_not_outlive_a_killed_loop(tmp_path, weights):
    """The loop's process dies without stopping its server (SIGKILL, OOM): the server is terminated too."""
    import os
    import subprocess
    import time

    import toolr0

    src = os.path.dirname(os.path.dirname(toolr0.__file__))
    code = (
        "import os, sys\n"
        "from toolr0.inference.server import ManagedServer, ServerConfig\n"
        f"cfg = ServerConfig(command=[sys.executable, {FAKE!r}], port=0, startup_timeout_s=20, poll_interval_s=0.1)\n"
        f"s = ManagedServer(cfg, {str(weights[0])!r}, {str(tmp_path / 'log')!r}).start()\n"
        "print(s.proc.pid, flush=True)\n"
        "os._exit(0)\n"
    )
    env = {**os.environ, "PYTHONPATH": src}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)
    pid = int(out.stdout.strip())

    def alive() -> bool:
        try:
            with open(f"/proc/{pid}/status") as f:
                return "\nState:\tZ" not in f.read()
        except FileNotFoundError:
            return False

    deadline = time.monotonic() + 15
    while alive() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not alive()
