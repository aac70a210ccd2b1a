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


# ------------------------------------------------------------------------------------ memory (item 10)
def test_memory_counts_the_fp32_in_process_solver_its_kv_cache_logits_and_colocated_vllm():
    from toolr0.selfplay.plan import memory_estimate

    # the paper preset run as one process: full fine-tune, Solver in the Generator's process (not served)
    one = {"launch.mode": "in_process", "inference.backend": "vllm", "server.managed": False}
    cfg = load_config(ROOT / "configs" / "paper.yaml", one)
    row = memory_estimate(cfg, 1, phase="generator")
    assert row.parts["in-process frozen Solver (fp32)"] == pytest.approx(4 * 1.5)
    assert row.parts["frozen Solver KV cache"] > 1.0  # K=8 samples of up to 2048 tokens, fp32
    assert row.parts["logits (one micro-batch, fp32)"] > 1.0  # 151,936-entry vocabulary
    assert row.parts["colocated vLLM (30% of 80 GB)"] == pytest.approx(24.0)
    assert row.total_gb > 60  # ~69 GB on an 80 GB card: the one-process plan barely fits, if at all
    solver = memory_estimate(cfg, 1, phase="solver")
    assert "in-process frozen Solver (fp32)" not in solver.parts  # phase C has no frozen Solver
    z3 = memory_estimate(cfg, 3, zero3=True, phase="generator")
    assert z3.parts["ZeRO-3 gathered weights (bf16)"] == pytest.approx(2 * 1.5)


def test_the_dry_run_plans_the_paper_preset_as_processes_with_its_process_counts(tmp_path):
    from typer.testing import CliRunner

    from toolr0.cli import app
    from toolr0.selfplay.plan import memory_layouts

    cfg = load_config(ROOT / "configs" / "paper.yaml")
    assert cfg.launch.mode == "processes"
    rows = {(r.phase, r.layout) for r in memory_layouts(cfg)}
    assert ("A", "ZeRO-3 × 3") in rows and ("C", "ZeRO-3 × 4") in rows  # launch.generator / launch.solver
    a = next(r for r in memory_layouts(cfg) if r.phase == "A")
    assert "in-process frozen Solver (fp32)" not in a.parts  # the Solver is served on its own GPU
    res = CliRunner().invoke(
        app, ["selfplay", "--config", str(ROOT / "configs" / "paper.yaml"), "--dry-run", "--out", str(tmp_path / "r")]
    )
    assert res.exit_code == 0, res.output
    assert "launch: processes" in res.output and "A  Generator GRPO: 3 process(es)" in res.output


def test_accelerate_configs_are_packaged_and_children_resolve_them_outside_the_checkout(tmp_path, monkeypatch):
    from importlib.resources import files

    from toolr0.selfplay.launch import accelerate_prefix

    for name in ("ddp.yaml", "zero3.yaml", "multinode.yaml"):
        assert (files("toolr0") / "selfplay" / "accelerate" / name).is_file()
    monkeypatch.chdir(tmp_path)  # not the checkout: configs/accelerate/ is not here
    cfg = load_config(None, {"launch.generator.accelerate_config": "configs/accelerate/zero3.yaml"})
    pre = accelerate_prefix(cfg, "generator")
    path = Path(pre[pre.index("--config_file") + 1])
    assert path.is_absolute() and path.is_file() and "zero_stage: 3" in path.read_text()
    bad = load_config(None, {"launch.generator.accelerate_config": "nope.yaml"})
    with pytest.raises(ConfigError, match=r"launch\.generator\.accelerate_config nope\.yaml: no such file"):
        accelerate_prefix(bad, "generator")


@pytest.mark.slow  # two `toolr0 selfplay --dry-run` processes (~20 s here); in .ci/run's slow line
def test_gpu_smoke_script_dry_run_plans_both_layouts_on_cpu(tmp_path):
    import subprocess

    proc = subprocess.run(
        ["bash", str(ROOT / "scripts" / "gpu_smoke.sh"), "--dry-run", "--out", str(tmp_path / "smoke")],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    out = proc.stdout
    assert out.count("plan ok") == 2  # both loop commands validated by `toolr0 selfplay --dry-run`
    assert "roles.mode=full" in out and "accelerate_config=zero3.yaml" in out and "roles.mode=lora" in out
    assert "has not run on a GPU yet" in (ROOT / "docs" / "training.md").read_text()
