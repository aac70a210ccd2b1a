"""Issue 29 item 4: every command of docs/training.md's one-node walkthrough, parsed from the doc's code block
(so the doc and the test cannot drift), run in order on a CPU with the tiny random model: `runs/paper` becomes
a temporary folder and the documented `--set` overrides swap the paper's model, GPUs and `vllm serve` for the
tiny model, CPU processes and the fake OpenAI server (in its --play mode, so iteration 1 selects a curriculum and
trains S_1). Iteration 2's models must start from iteration 1's."""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("trl")

ROOT = Path(__file__).resolve().parents[1]
FAKE = str(Path(__file__).with_name("fake_openai_server.py"))


def walkthrough_commands() -> list[list[str]]:
    text = (ROOT / "docs" / "training.md").read_text(encoding="utf-8")
    section = text[text.index("### One node, step by step") :]
    block = re.search(r"```bash\n(.*?)```", section, re.S)
    assert block, "the walkthrough's code block is missing"
    return [shlex.split(line) for line in block.group(1).splitlines() if line.strip()]


def test_the_walkthrough_is_toolr0_commands_on_the_paper_preset():
    cmds = walkthrough_commands()
    assert len(cmds) >= 4 and all(c[:2] == ["toolr0", "selfplay"] for c in cmds)
    assert all(c[c.index("--config") + 1] == "configs/paper.yaml" for c in cmds)
    phases = [c[c.index("--phase") + 1] for c in cmds if "--phase" in c]
    assert phases == ["generator", "stage-b", "solver"]  # stage B has a public command now


def _tiny_overrides(model_dir: Path) -> list[str]:
    over = {
        "model.name": str(model_dir),
        "model.dtype": "fp32",
        "prompts.generator_variant": "compact",
        "frozen_solver.k": 2,
        "frozen_solver.max_tokens": 12,
        "frozen_solver.judge.max_tokens": 3,
        "frozen_solver.judge.retries": 1,
        "loop.iterations": 2,
        "loop.n_candidates": 2,
        "loop.gen_batch_size": 2,
        "loop.gen_max_tokens": 24,
        "frozen_solver.verify.k": 2,
        "frozen_solver.verify.max_tokens": 12,
        "loop.filter_batch_size": 2,
        "loop.generator_prompts": 4,
        "curriculum.n_final": 4,
        "server.gpus": None,
        "server.port": 0,
        "server.poll_interval_s": 0.1,
        "server.command": [sys.executable, FAKE, "--play"],  # role-like answers: a non-empty curriculum
        "launch.stage_b.gpus": None,
    }
    for phase in ("generator", "solver"):
        over.update(
            {
                f"launch.{phase}.cpu": True,
                f"launch.{phase}.processes": 1,
                f"launch.{phase}.gpus": None,
                f"launch.{phase}.accelerate_config": None,
                f"{phase}.max_steps": 1,
                f"{phase}.num_generations": 2,
                f"{phase}.per_device_train_batch_size": 2,
                f"{phase}.gradient_accumulation_steps": 1,
                f"{phase}.max_completion_length": 12,
                f"{phase}.save_steps": 1,
                f"{phase}.precision": "fp32",
                f"{phase}.gradient_checkpointing": False,
                f"{phase}.use_vllm": False,
                f"{phase}.report_to": [],
            }
        )
    out = []
    for k, v in over.items():
        out += ["--set", f"{k}={json.dumps(v)}"]
    return out


@pytest.mark.slow
def test_every_walkthrough_command_runs_in_order_on_a_tiny_model(tmp_path, tiny_model_dir):
    import toolr0

    run = tmp_path / "paper"
    src = os.path.dirname(os.path.dirname(toolr0.__file__))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([src, os.environ.get("PYTHONPATH", "")])}
    env["CUDA_VISIBLE_DEVICES"] = ""
    for cmd in walkthrough_commands():
        argv = [sys.executable, "-m", "toolr0.cli", *cmd[1:]]
        argv = [str(run) if a == "runs/paper" else a for a in argv]
        argv += [*_tiny_overrides(tiny_model_dir), "--no-progress"]
        proc = subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)
        assert proc.returncode == 0, f"{shlex.join(cmd)}: {proc.stderr[-3000:]}"
        if "--phase" in cmd:  # the loop stopped after that phase
            t, phase = cmd[cmd.index("--iteration") + 1], cmd[cmd.index("--phase") + 1]
            done = json.loads((run / "state.json").read_text())["done"]
            stage = {"generator": "generator_train", "stage-b": "select", "solver": "solver_train"}[phase]
            assert f"iter_0{t}/{stage}" in done
            assert "iter_02/generator_train" not in done
    state = json.loads((run / "state.json").read_text())
    assert state["finished"] is True
    ck = state["checkpoints"]
    assert ck["generator"]["1"] == "iter_01/generator/final" and ck["generator"]["2"] == "iter_02/generator/final"
    # iteration 1 selected a curriculum (the fake's --play tasks, p̂ = 1/2), so S_1 was trained, not skipped
    assert "iter_01/solver_train" not in state.get("skipped", {}), state.get("skipped")
    curriculum = (run / "iter_01" / "curriculum.jsonl").read_text().splitlines()
    assert curriculum and all(0 < json.loads(r)["p_hat"] <= 1 for r in curriculum)
    assert ck["solver"]["1"] == "iter_01/solver/final" and (run / "iter_01" / "solver" / "final").is_dir()
    s1 = run / "iter_01" / "solver" / "final"
    # iteration 2's Generator started from iteration 1's and was rewarded by iteration 1's Solver, served
    log2 = (run / "iter_02" / "generator" / "launch.log").read_text()
    assert f"--init-generator {run / 'iter_01' / 'generator' / 'final'}" in log2
    assert f"--init-solver {s1}" in log2
    # the managed server served S_1 twice: phase A's reward and stage B's cross-verification/pass@K of iteration 2
    assert (run / "server.log").read_text().count(f"fake server for {s1} as solver") == 2
    # iteration 2's Solver phase started from iteration 1's Solver weights (and iteration 1's from the base)
    assert f"--init-solver {s1}" in (run / "iter_02" / "solver" / "launch.log").read_text()
    assert "--init-solver" not in (run / "iter_01" / "solver" / "launch.log").read_text()
    assert "--init-generator" not in (run / "iter_01" / "generator" / "launch.log").read_text()  # π₀
