"""GRPO knobs: reference defaults, explicit GRPOConfig arguments, batch arithmetic, dry runs, bad configs,
checkpoint completeness. No model is loaded here."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from toolr0.config import config_from_dict, load_config
from toolr0.errors import ConfigError
from toolr0.training import checkpoint as ckpt
from toolr0.training.config import GRPORoleConfig, RolesConfig
from toolr0.training.grpo import grpo_config_kwargs, resolve_generation_batch


def test_role_defaults_are_the_reference_values():
    c = GRPORoleConfig()
    # spec §8.1 / §11
    assert (c.learning_rate, c.max_steps, c.per_device_train_batch_size, c.gradient_accumulation_steps) == (
        1e-6,
        50,
        2,
        4,
    )
    assert (c.num_generations, c.max_completion_length, c.loss_type, c.beta, c.epsilon) == (
        4,
        2048,
        "grpo",
        0.0,
        0.2,
    )
    assert (c.scale_rewards, c.temperature, c.top_p, c.top_k, c.min_p, c.repetition_penalty) == (
        "group",
        1.0,
        1.0,
        0,
        None,
        1.0,
    )
    assert (c.num_iterations, c.mask_truncated_completions, c.adam_beta1, c.adam_beta2, c.adam_epsilon) == (
        1,
        False,
        0.9,
        0.999,
        1e-8,
    )
    assert (c.weight_decay, c.lr_scheduler_type, c.warmup_steps, c.max_grad_norm) == (0.0, "linear", 0, 1.0)
    assert (c.save_steps, c.logging_steps, c.use_vllm, c.max_prompt_length) == (2, 1, False, None)
    assert RolesConfig().mode == "lora"


def test_every_knob_is_passed_explicitly(tmp_path):
    kw = grpo_config_kwargs(GRPORoleConfig(), tmp_path, reward_weights=[1, 1, 1], on_gpu=False)
    for key, want in {
        "loss_type": "grpo",
        "beta": 0.0,
        "epsilon": 0.2,
        "epsilon_high": 0.2,
        "scale_rewards": "group",
        "num_iterations": 1,
        "temperature": 1.0,
        "top_p": 1.0,
        "top_k": 0,
        "min_p": None,
        "repetition_penalty": 1.0,
        "learning_rate": 1e-6,
        "adam_beta1": 0.9,
        "adam_beta2": 0.999,
        "adam_epsilon": 1e-8,
        "weight_decay": 0.0,
        "lr_scheduler_type": "linear",
        "warmup_steps": 0,
        "max_grad_norm": 1.0,
        "max_completion_length": 2048,
        "mask_truncated_completions": False,
        "save_steps": 2,
        "logging_steps": 1,
        "use_vllm": False,
        "use_cpu": True,
        "shuffle_dataset": True,
        "reward_weights": [1, 1, 1],
        "generation_batch_size": 8,
        "save_only_model": False,
        "remove_unused_columns": False,
        "gradient_checkpointing": True,
    }.items():
        assert kw[key] == want, key
    assert kw["bf16"] != kw["fp16"] or not kw["bf16"]


def test_role_reward_weights_are_refused_pointing_at_the_rewards_section(tmp_path):
    """Weights live only in `rewards.*_weight`: the old per-role list fails with a one-line error."""
    with pytest.raises(ValueError, match=r"rewards\.generator_\*_weight / rewards\.solver_\*_weight"):
        GRPORoleConfig(reward_weights=[1, 0.5])
    p = tmp_path / "c.yaml"
    p.write_text("solver:\n  reward_weights: [1, 0.5]\n")
    with pytest.raises(ConfigError) as e:
        load_config(p)
    msg = str(e.value)
    assert "\n" not in msg and msg.startswith("c.yaml: solver.reward_weights was removed; use rewards.solver_")
    assert "rewards.solver_*_weight" in msg
    bad = tmp_path / "gen.yaml"
    bad.write_text("generator:\n  reward_weights: [1, 1, 1]\n")
    r = _cli("train", "generator", "--config", str(bad), "--dry-run")
    lines = r.stderr.strip().splitlines()
    assert r.returncode == 2 and len(lines) == 1 and lines[0].startswith("error: gen.yaml: generator.reward_weights was removed")
    assert "rewards.generator_*_weight" in lines[0]


def test_reward_weights_come_from_the_reward_config(tmp_path):
    from toolr0.training.run import dry_run

    cfg = config_from_dict({"rewards": {"generator_validity_weight": 0.5, "solver_accuracy_weight": 2.0}})
    assert dry_run("generator", cfg, tmp_path)["grpo_config"]["reward_weights"] == [1.0, 0.5, 1.0]
    assert dry_run("solver", cfg, tmp_path)["grpo_config"]["reward_weights"] == [1.0, 2.0]


def test_train_role_dispatches_by_name_and_takes_the_cli_keywords_for_either_role(tmp_path, monkeypatch):
    """`toolr0 train <role>` passes the Generator's spec seed (None) for either role; the Solver needs --data."""
    from toolr0.training import run

    seen = {}
    monkeypatch.setattr(run, "fit", lambda recipe, cfg, out, **kw: seen.update(role=recipe.role, kw=kw))
    cfg = config_from_dict({})
    run.train_role("solver", cfg, tmp_path, data=[], spec_seed=None, resume=True)
    assert seen == {"role": "solver", "kw": {"resume": True}}
    with pytest.raises(ConfigError, match="needs a curriculum"):
        run.train_role("solver", cfg, tmp_path, spec_seed=None)
    with pytest.raises(ConfigError, match="spec_seed is the Generator's"):
        run.train_role("solver", cfg, tmp_path, data=[], spec_seed=3)
    run.train_role("generator", cfg, tmp_path, spec_seed=5, echo=None)
    assert seen["role"] == "generator" and seen["kw"] == {"echo": None}


def test_generation_batch_arithmetic_matches_reference_runs():
    # Generator: 2 per device × 3 processes × 4 accumulation = 24 completions = 6 prompts × 4 (spec §8.1)
    assert resolve_generation_batch(GRPORoleConfig(), n_processes=3) == 24
    assert resolve_generation_batch(GRPORoleConfig(), n_processes=4) == 32  # Solver: 8 prompts × 4
    with pytest.raises(ConfigError, match="multiple of num_generations"):
        resolve_generation_batch(GRPORoleConfig(per_device_train_batch_size=3, gradient_accumulation_steps=1))
    with pytest.raises(ValueError):
        GRPORoleConfig(generation_batch_size=10)


def test_grpo_config_is_accepted_by_trl(tmp_path):
    pytest.importorskip("trl")
    from toolr0.training.grpo import build_grpo_config

    args = build_grpo_config(GRPORoleConfig(precision="fp32"), tmp_path, reward_weights=[1.0, 1.0])
    assert args.loss_type == "grpo" and args.generation_batch_size == 8 and args.use_cpu
    assert args.epsilon_high == 0.2 and args.beta == 0.0 and args.reward_weights == [1.0, 1.0]
    assert not hasattr(args, "max_prompt_length")  # TRL 1.16: prompts are never truncated


def test_vllm_on_cpu_is_a_one_line_error(tmp_path):
    with pytest.raises(ConfigError, match="use_vllm needs a GPU"):
        grpo_config_kwargs(GRPORoleConfig(use_vllm=True), tmp_path, on_gpu=False)


def test_dry_run_resolves_the_paper_recipe_without_a_model(tmp_path):
    from toolr0.training.run import dry_run

    cfg = config_from_dict({"roles": {"mode": "full"}, "generator": {"use_vllm": True, "precision": "auto"}})
    d = dry_run("generator", cfg, tmp_path, n_processes=3)
    assert d["completions_per_step"] == 24 and d["prompts_per_step"] == 6
    assert d["grpo_config"]["bf16"] and not d["grpo_config"]["use_cpu"] and d["grpo_config"]["use_vllm"]
    assert d["reward_functions"] == ["generator_format", "generator_validity", "generator_curriculum"]
    s = dry_run("solver", config_from_dict({}), tmp_path, n_processes=1)
    assert s["reward_functions"] == ["solver_format", "solver_accuracy"] and s["grpo_config"]["use_cpu"]


def _cli(*args, cwd=None):
    return subprocess.run(
        [sys.executable, "-m", "toolr0.cli", *args], capture_output=True, text=True, cwd=cwd
    )


def test_cli_dry_run_prints_resolved_arguments(tmp_path):
    r = _cli("train", "solver", "--dry-run", "--set", "solver.max_steps=3", "--out", str(tmp_path))
    assert r.returncode == 0, r.stderr
    d = json.loads(r.stdout)
    assert d["grpo_config"]["max_steps"] == 3 and d["grpo_config"]["output_dir"].startswith(str(tmp_path))


def test_cli_bad_config_gives_one_line_error(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("generator:\n  learning_rate: fast\n")
    r = _cli("train", "generator", "--config", str(bad), "--dry-run")
    assert r.returncode == 2
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:") and "generator.learning_rate" in lines[0]
    r = _cli("train", "solver", "--data", str(tmp_path / "missing.jsonl"), "--set", "model.name=/nonexistent")
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert r.stderr.strip().splitlines() == [
        f"error: {tmp_path / 'missing.jsonl'}: curriculum file not found"
    ]


def test_load_config_rejects_unknown_knob(tmp_path):
    p = tmp_path / "c.yaml"
    p.write_text("solver:\n  max_prompt_lenght: 10\n")
    with pytest.raises(ConfigError, match="solver.max_prompt_lenght"):
        load_config(p)


def test_checkpoint_completeness(tmp_path):
    good = tmp_path / "checkpoint-2"
    good.mkdir()
    (good / "trainer_state.json").write_text(json.dumps({"global_step": 2}))
    marked = tmp_path / "checkpoint-4"
    marked.mkdir()
    ckpt.mark_complete(marked, 4)
    torn = tmp_path / "checkpoint-6"
    torn.mkdir()
    (torn / "trainer_state.json").write_text('{"global_st')
    wrong = tmp_path / "checkpoint-8"
    wrong.mkdir()
    (wrong / "trainer_state.json").write_text(json.dumps({"global_step": 7}))
    assert [ckpt.is_complete(p) for p in (good, marked, torn, wrong)] == [True, True, False, False]
    assert ckpt.last_complete_checkpoint(tmp_path) == marked
    assert sorted(p.name for p in ckpt.remove_incomplete(tmp_path)) == ["checkpoint-6", "checkpoint-8"]
    assert [p.name for p in ckpt.list_checkpoints(tmp_path)] == ["checkpoint-2", "checkpoint-4"]
