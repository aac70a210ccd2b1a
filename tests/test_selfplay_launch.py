"""Phases as child processes (`launch.mode: processes`): the commands built from the `launch` section, the
`--dry-run` lines, and (slow) one whole iteration of the tiny model with each GRPO phase under
`accelerate launch` with 2 CPU processes (DDP over gloo) and stage B in its own process; a child killed
mid-phase resumes from its last checkpoint when the same command runs again."""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
import time

import pytest

from toolr0.config import load_config
from toolr0.errors import ConfigError
from toolr0.selfplay.launch import ChildFailed, launch_plan, stage_b_command, train_command
from toolr0.selfplay.rundir import RunDir

pytest.importorskip("trl")

from selfplay_fakes import tiny_config  # noqa: E402


def _gpu_cfg(**extra):
    over = {
        "launch.mode": "processes",
        "launch.generator.processes": 3,
        "launch.generator.gpus": "0,1,2",
        "launch.generator.accelerate_config": "configs/accelerate/zero3.yaml",
        "launch.stage_b.gpus": "0",
        "launch.solver.processes": 16,
        "launch.solver.nodes": 2,
        "launch.solver.accelerate_config": "configs/accelerate/multinode.yaml",
        "launch.solver.extra_args": ["--machine_rank", "0", "--main_process_ip", "10.0.0.1"],
        "launch.main_process_port": 29512,
        "roles.mode": "full",  # LoRA + hf decoding on a ZeRO-3-sharded model is refused (a deadlock)
    }
    return load_config(None, {**over, **extra})


def test_grpo_children_are_accelerate_launches_of_toolr0_train(tmp_path):
    cfg = _gpu_cfg()
    run = RunDir(tmp_path / "run")
    gen = train_command(
        cfg,
        run,
        "generator",
        run.checkpoint_dir(2, "generator"),
        init_generator="G1",
        init_solver="S1",
        spec_seed=7,
        overrides=["inference.base_url=http://127.0.0.1:8000/v1"],
    )
    i = gen.index("-m", 2)
    assert gen[:3] == [sys.executable, "-m", "accelerate.commands.launch"]
    launch = gen[3:i]
    assert launch[0] == "--config_file" and launch[1].endswith("toolr0/selfplay/accelerate/zero3.yaml")
    assert launch[launch.index("--num_processes") + 1] == "3" and "--main_process_port" in launch
    assert gen[i : i + 5] == ["-m", "toolr0.cli", "train", "generator", "--config"]
    tail = gen[i + 4 :]
    assert tail[1] == str(run.config_path) and "--resume" in tail  # the run dir's resolved config; resumable
    assert tail[tail.index("--out") + 1] == str(run.root / "iter_02" / "generator")
    assert tail[tail.index("--init-generator") + 1] == "G1" and tail[tail.index("--init-solver") + 1] == "S1"
    assert (
        tail[tail.index("--spec-seed") + 1] == "7" and "inference.base_url=http://127.0.0.1:8000/v1" in tail
    )
    sol = train_command(
        cfg,
        run,
        "solver",
        tmp_path / "s",
        init_generator=None,
        init_solver="S1",
        curriculum=tmp_path / "c.jsonl",
    )
    assert sol[sol.index("--num_machines") + 1] == "2" and sol[sol.index("--num_processes") + 1] == "16"
    assert sol[sol.index("--machine_rank") + 1] == "0" and sol[sol.index("--data") + 1] == str(
        tmp_path / "c.jsonl"
    )
    assert "--init-generator" not in sol
    b = stage_b_command(run, 3)
    assert b[1:4] == ["-m", "toolr0.cli", "selfplay"] and b[b.index("--stage-b") + 1] == "3"


def test_cpu_phases_use_the_torchrun_launcher_without_gpus():
    from toolr0.selfplay.launch import accelerate_prefix, child_env

    cfg = load_config(None, {"launch.generator.cpu": True, "launch.generator.processes": 2})
    pre = accelerate_prefix(cfg, "generator")
    assert "--multi_gpu" in pre and "--cpu" not in pre and pre[pre.index("--num_processes") + 1] == "2"
    env = child_env(cfg, "generator")
    assert env["ACCELERATE_USE_CPU"] == "true" and env["CUDA_VISIBLE_DEVICES"] == ""
    assert "--cpu" in accelerate_prefix(load_config(None, {"launch.solver.cpu": True}), "solver")


def test_stage_b_is_one_process():
    with pytest.raises(ConfigError, match="stage_b runs as one process"):
        load_config(None, {"launch.stage_b.processes": 2})


def test_dry_run_lists_every_phase_process_and_the_server(tmp_path):
    cfg = _gpu_cfg(**{"inference.backend": "openai", "server.managed": True, "server.gpus": "3"})
    lines = launch_plan(cfg, tmp_path / "run")
    text = "\n".join(lines)
    assert "A  Generator GRPO: 3 process(es) on 1 node(s), GPUs 0,1,2, configs/accelerate/zero3.yaml" in text
    assert "--config_file /" in text and "selfplay/accelerate/zero3.yaml" in text  # packaged, absolute
    assert (
        "C  Solver GRPO: 16 process(es) on 2 node(s)" in text
        and "B  dataset synthesis: 1 process(es)" in text
    )
    assert "2 nodes: the loop starts this on its own node only" in text
    assert "CUDA_VISIBLE_DEVICES=0,1,2 " in text and "toolr0.cli train generator" in text
    assert "CUDA_VISIBLE_DEVICES=3 vllm serve" in text and "--served-model-name solver" in text
    plain = "\n".join(launch_plan(load_config(None), None))
    assert "launch: in-process" in plain and "frozen Solver is in-process" in plain


def test_cli_dry_run_prints_the_launch_plan(tmp_path):
    from typer.testing import CliRunner

    from toolr0.cli import app

    cfg = tmp_path / "c.yaml"
    cfg.write_text("launch:\n  mode: processes\n  generator: {processes: 2, gpus: '0,1'}\n")
    res = CliRunner().invoke(
        app, ["selfplay", "--config", str(cfg), "--dry-run", "--out", str(tmp_path / "r")]
    )
    assert res.exit_code == 0, res.output
    assert "A  Generator GRPO: 2 process(es) on 1 node(s), GPUs 0,1" in res.output
    assert "--num_processes 2" in res.output


def test_a_launch_change_does_not_block_resume(tmp_path, tiny_model_dir):
    """Where phases run is not what they compute: a run started in-process resumes with processes."""
    a = tiny_config(tiny_model_dir)
    b = tiny_config(
        tiny_model_dir, **{"launch.mode": "processes", "server.port": 9001, "model.device": "cuda:0"}
    )
    run = RunDir(tmp_path / "run")
    from toolr0.config import config_to_dict, dump_config

    assert run.open(config_to_dict(a), dump_config(a)) is False
    assert RunDir(tmp_path / "run").open(config_to_dict(b), dump_config(b)) is True
    c = tiny_config(tiny_model_dir, **{"seed": 99})
    with pytest.raises(ConfigError, match=r"\bseed\b"):
        RunDir(tmp_path / "run").open(config_to_dict(c), dump_config(c))


# --------------------------------------------------------------------------------- real child processes
def _ddp_cfg(model_dir, **extra):
    over = {
        "launch.mode": "processes",
        "loop.iterations": 1,
        "loop.n_candidates": 3,
        "loop.gen_batch_size": 3,
    }
    for phase in ("generator", "solver"):
        over[f"launch.{phase}.cpu"] = True
        over[f"launch.{phase}.processes"] = 2
    return tiny_config(model_dir, **{**over, **extra})


@pytest.fixture
def src_on_path(monkeypatch):
    """Children import toolr0 from this checkout (they do not inherit pytest's sys.path)."""
    import toolr0

    src = os.path.dirname(os.path.dirname(toolr0.__file__))
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([src, os.environ.get("PYTHONPATH", "")]))


@pytest.mark.slow
def test_one_iteration_with_every_phase_a_child_process_ddp_on_cpu(tmp_path, tiny_model_dir, src_on_path):
    from toolr0.io import read_jsonl
    from toolr0.selfplay.loop import run_selfplay

    out = tmp_path / "run"
    run_selfplay(_ddp_cfg(tiny_model_dir), out, progress=False)
    state = json.loads((out / "state.json").read_text())
    assert state["finished"] and state["checkpoints"]["generator"]["1"] == "iter_01/generator/final"
    assert (out / "iter_01" / "generator" / "final" / "adapter_config.json").is_file()
    log = (out / "iter_01" / "generator" / "launch.log").read_text()
    assert "--multi_gpu --mixed_precision no" in log and "--num_processes 2" in log
    assert log.count("done: step 1 (from 0)") == 2  # two training processes (DDP ranks) finished the step
    summary = json.loads((out / "iter_01" / "generator" / "summary.json").read_text())
    assert summary["global_step"] == 1
    # stage B ran in its own process and wrote the same artefacts as the in-process loop
    assert "--stage-b 1" in (out / "iter_01" / "stage_b.log").read_text()
    assert len(list(read_jsonl(out / "iter_01" / "candidates.jsonl"))) == 3
    assert (
        "iter_01/select" in state["done"] and "empty curriculum" in state["skipped"]["iter_01/solver_train"]
    )
    stages = {m["stage"] for m in read_jsonl(out / "metrics.jsonl") if m["event"] == "stage_time"}
    assert {"generator_train", "stage_b", "generate", "select"} <= stages
    assert any(
        m["event"] == "train_log" and m["role"] == "generator" for m in read_jsonl(out / "metrics.jsonl")
    )


@pytest.mark.slow
def test_a_child_killed_mid_phase_resumes_with_the_same_command(tmp_path, tiny_model_dir, src_on_path):
    from toolr0.selfplay.loop import run_selfplay

    cfg = _ddp_cfg(tiny_model_dir, **{"generator.max_steps": 2, "generator.save_steps": 1})
    out = tmp_path / "run"
    gen = out / "iter_01" / "generator"
    killed = {}

    def kill_after_first_checkpoint():
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline:
            pid = gen / "launch.pid"
            if (gen / "checkpoints" / "checkpoint-1" / "toolr0_complete.json").is_file() and pid.is_file():
                killed["pid"] = int(pid.read_text())
                os.killpg(killed["pid"], signal.SIGKILL)  # the launcher and both ranks, as an OOM kill would
                return
            time.sleep(0.05)

    watcher = threading.Thread(target=kill_after_first_checkpoint, daemon=True)
    watcher.start()
    with pytest.raises(ChildFailed) as err:
        run_selfplay(cfg, out, progress=False)
    watcher.join(timeout=5)
    assert killed and "generator_train: child exited with code -9" in str(err.value)
    assert "iter_01/generator_train" not in json.loads((out / "state.json").read_text())["done"]
    run_selfplay(cfg, out, progress=False)  # the same command again
    summary = json.loads((gen / "summary.json").read_text())
    # resumed from the newest complete checkpoint the kill left (step 1, or 2 when the child saved it first)
    assert summary["start_step"] in (1, 2) and summary["global_step"] == 2
    assert summary["resumed_from"].endswith(f"checkpoint-{summary['start_step']}")
    assert json.loads((out / "state.json").read_text())["finished"] is True


@pytest.mark.slow
def test_a_generator_child_queries_the_managed_server_the_loop_started(tmp_path, tiny_model_dir, src_on_path):
    """The child's training health-checks the server at the URL the loop passes (a wrong URL fails the child)."""
    from pathlib import Path

    from toolr0.io import read_jsonl
    from toolr0.selfplay.loop import run_selfplay

    fake = str(Path(__file__).with_name("fake_openai_server.py"))
    cfg = tiny_config(
        tiny_model_dir,
        **{
            "launch.mode": "processes",
            "launch.generator.cpu": True,
            "launch.solver.cpu": True,
            "inference.backend": "openai",
            "server.managed": True,
            "server.command": [sys.executable, fake],
            "server.port": 0,
            "server.poll_interval_s": 0.1,
            "loop.iterations": 1,
            "loop.freeze_generator": False,
            "loop.n_candidates": 2,
            "loop.gen_batch_size": 2,
        },
    )
    out = tmp_path / "run"
    run_selfplay(cfg, out, progress=False)
    events = [m for m in read_jsonl(out / "metrics.jsonl") if m["event"].startswith("server_")]
    url = events[0]["url"]
    assert (
        url.startswith("http://127.0.0.1:")
        and f"--port {url.split(':')[2].split('/')[0]}" in events[0]["command"]
    )
    log = (out / "iter_01" / "generator" / "launch.log").read_text()
    assert f"inference.base_url={url}" in log and "inference.served_model=solver" in log
    assert json.loads((out / "state.json").read_text())["finished"] is True


@pytest.mark.slow
def test_solver_child_trains_under_two_cpu_processes(tmp_path, tiny_model_dir, src_on_path):
    """Phase C's child (`toolr0 train solver` under accelerate, 2 processes) on a small curriculum."""
    from _training_support import weather_tasks
    from toolr0.config import config_to_dict, dump_config
    from toolr0.io import atomic_write_jsonl
    from toolr0.selfplay.launch import ProcessEngine

    cfg = _ddp_cfg(tiny_model_dir)
    run = RunDir(tmp_path / "run")
    run.open(config_to_dict(cfg), dump_config(cfg))
    cur = tmp_path / "curriculum.jsonl"
    atomic_write_jsonl(cur, [{"task": t.to_dict()} for t in weather_tasks(4)])
    res = ProcessEngine(cfg, run).train_solver(
        iteration=1, init=None, curriculum=cur, out_dir=run.checkpoint_dir(1, "solver"), reporter=None
    )
    assert res["steps"] == 1 and res["checkpoint"].endswith("iter_01/solver/final")
    assert (run.checkpoint_dir(1, "solver") / "final" / "adapter_config.json").is_file()
    log = (run.checkpoint_dir(1, "solver") / "launch.log").read_text()
    assert log.count("done: step 1 (from 0)") == 2 and "train solver" in log
    assert any("solver_accuracy" in k for row in res["log_history"] for k in row)
