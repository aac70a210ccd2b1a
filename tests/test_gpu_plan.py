"""Issue 29, the GPU plan checked without a GPU: the managed Solver server's GPUs against the training GPUs
(config validation), the memory share and bind address on its command line, the dry-run memory table of the
paper preset (in-process fp32 Solver, ZeRO-3 gather buffers, logits, colocated vLLM, `launch.*` process
counts) and the packaged accelerate configs."""

from __future__ import annotations

from pathlib import Path

import pytest

from toolr0.config import load_config
from toolr0.errors import ConfigError
from toolr0.inference.server import ManagedServer, ServerConfig

ROOT = Path(__file__).resolve().parents[1]


def _multi_gpu(**extra):
    over = {
        "inference.backend": "openai",
        "server.managed": True,
        "launch.mode": "processes",
        "launch.generator.processes": 3,
        "launch.generator.gpus": "0,1,2",
        "launch.solver.processes": 4,
        "launch.solver.gpus": "0,1,2,3",
    }
    return load_config(None, {**over, **extra})


def test_a_multi_gpu_plan_refuses_an_unset_or_overlapping_server_gpu_set():
    with pytest.raises(ConfigError, match=r"server\.gpus is unset") as err:
        _multi_gpu()
    assert "\n" not in str(err.value)
    with pytest.raises(ConfigError, match=r"server\.gpus 2,3 overlaps launch\.generator\.gpus 0,1,2 \(GPU 2\)"):
        _multi_gpu(**{"server.gpus": "2,3"})
    with pytest.raises(ConfigError, match=r"launch\.generator\.gpus is unset"):
        _multi_gpu(**{"server.gpus": "3", "launch.generator.gpus": None})
    ok = _multi_gpu(**{"server.gpus": "3"})  # the reference layout: training on 0-2, the server on 3
    assert ok.server.gpus == "3"
    # CPU phases and one-process plans are not multi-GPU plans: nothing to collide with
    load_config(None, {"inference.backend": "openai", "server.managed": True})
    load_config(
        None,
        {
            "inference.backend": "openai",
            "server.managed": True,
            "launch.mode": "processes",
            "launch.generator.cpu": True,
            "launch.generator.processes": 2,
        },
    )


def test_the_server_command_carries_the_memory_share_and_the_bind_address(tmp_path):
    cfg = ServerConfig(port=8123, bind="0.0.0.0", host="node0.cluster")
    s = ManagedServer(cfg, "/m/solver", tmp_path / "log", gpu_memory_utilization=0.4)
    cmd = s.command()
    assert cmd[cmd.index("--host") + 1] == "0.0.0.0"  # reachable from the other nodes
    assert cmd[cmd.index("--gpu-memory-utilization") + 1] == "0.4"
    assert s.base_url == "http://node0.cluster:8123/v1"  # queried on the address the nodes can reach
    plain = ManagedServer(ServerConfig(), "/m", tmp_path / "log").command()
    assert plain[plain.index("--host") + 1] == "127.0.0.1"  # bind defaults to host


def test_the_loop_serves_with_inference_gpu_memory_utilization(tmp_path):
    from toolr0.selfplay.launch import launch_plan

    cfg = _multi_gpu(**{"server.gpus": "3", "inference.gpu_memory_utilization": 0.55})
    text = "\n".join(launch_plan(cfg, tmp_path / "run"))
    assert "CUDA_VISIBLE_DEVICES=3 vllm serve" in text and "--gpu-memory-utilization 0.55" in text
