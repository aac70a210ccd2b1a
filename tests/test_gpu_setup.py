"""GPU set-up checked without a GPU: the dry-run memory estimate, the paper preset's bounded checkpoints and
the CI dependency-resolution check's handling of an unreachable index."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from toolr0.config import config_from_dict, load_config
from toolr0.selfplay.plan import memory_estimate, memory_layouts, memory_lines

ROOT = Path(__file__).resolve().parents[1]


def test_full_finetune_memory_is_16_bytes_per_parameter_over_the_zero3_shards():
    cfg = config_from_dict({"model": {"name": "Qwen/Qwen2.5-1.5B-Instruct"}, "roles": {"mode": "full"}})
    one = memory_estimate(cfg, 1)
    assert one.weights_gb + one.grads_gb + one.optimizer_gb == pytest.approx(16 * 1.5)  # fp32 w, g, Adam m, v
    # hf backend: the frozen Solver sits in the Generator's process, in fp32 (issue 29: it was counted bf16)
    assert one.parts["in-process frozen Solver (fp32)"] == pytest.approx(4 * 1.5)
    assert one.other_gb == pytest.approx(sum(one.parts.values())) and one.total_gb > 30.0
    z8 = memory_estimate(cfg, 8, zero3=True)
    assert z8.weights_gb + z8.grads_gb + z8.optimizer_gb == pytest.approx(16 * 1.5 / 8)
    assert [(r.phase, r.layout) for r in memory_layouts(cfg)] == [
        ("A", "1 process"),
        ("C", "1 process"),
        ("", "ZeRO-3 × 3"),
        ("", "ZeRO-3 × 8"),
        ("", "ZeRO-3 × 16"),
    ]


def test_lora_memory_counts_the_frozen_base_and_small_adapters():
    cfg = config_from_dict({"model": {"name": "default", "dtype": "bf16"}, "roles": {"mode": "lora"}})
    row = memory_estimate(cfg, 1)
    assert row.weights_gb == pytest.approx(2 * 0.5 + 2 * 4 * 0.5 * 0.016, rel=1e-6)
    assert row.grads_gb < 0.05 and "LoRA r=16" in row.note
    assert [r.phase for r in memory_layouts(cfg)] == ["A", "C"]  # no ZeRO-3 comparison rows for LoRA
    assert "estimate" in memory_lines(cfg)[0]


def test_paper_preset_bounds_checkpoints_and_plans_memory():
    cfg = load_config(ROOT / "configs" / "paper.yaml")
    for rc in (cfg.generator, cfg.solver):
        assert rc.save_total_limit == 2 and rc.save_only_model is False  # bounded, still exact resume
    lines = memory_lines(cfg)
    assert any("ZeRO-3 × 8" in line for line in lines) and "1.5 B" in lines[0]


def test_resolution_check_runs_in_ci_and_fails_loudly_without_the_index(tmp_path):
    assert "scripts/check_gpu_resolution.sh" in (ROOT / ".ci" / "run").read_text()
    proc = subprocess.run(
        ["bash", str(ROOT / "scripts" / "check_gpu_resolution.sh")],
        env={
            "PATH": "/usr/bin:/bin",
            "TOOLR0_CHECK_INDEX": "http://127.0.0.1:9/simple",
            "HOME": str(tmp_path),
        },
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2
    assert "cannot run: the package index http://127.0.0.1:9/simple is unreachable" in proc.stderr


@pytest.mark.parametrize("role,processes", [("generator", 7), ("solver", 8)])
def test_trl_validates_the_paper_presets_gpu_config_on_cpu(monkeypatch, tmp_path, role, processes):
    """TRL's and transformers' own GRPOConfig checks (bf16 on a GPU, vLLM colocate, batch divisibility over
    the processes of docs/training.md's 8-GPU run) run here, with CUDA's bf16 support and the world size
    monkeypatched, instead of on a user's first GPU hour."""
    pytest.importorskip("trl")
    import transformers.training_args as ta

    from toolr0.training.grpo import build_grpo_config, grpo_config_kwargs
    from toolr0.training.reward_funcs import reward_weights

    cfg = load_config(ROOT / "configs" / "paper.yaml")
    rc = getattr(cfg, role)
    weights = reward_weights(role, cfg.rewards)
    monkeypatch.setattr(ta, "is_torch_bf16_gpu_available", lambda: True)
    monkeypatch.setattr(ta.TrainingArguments, "world_size", property(lambda self: processes))
    kw = grpo_config_kwargs(rc, tmp_path, reward_weights=weights, n_processes=processes, device="cuda:0")
    assert kw["bf16"] and not kw["use_cpu"] and kw["use_vllm"] and kw["vllm_mode"] == "colocate"
    args = build_grpo_config(rc, tmp_path, reward_weights=weights, n_processes=processes, device="cuda:0")
    assert args.bf16 and args.use_vllm and args.generation_batch_size == 2 * processes * 4
    assert args.num_generations == 4 and args.save_only_model is False and args.reward_weights == weights
    # the checks really run: a generation batch resolved for another process count is refused by TRL itself
    monkeypatch.setattr(ta.TrainingArguments, "world_size", property(lambda self: processes - 2))
    from toolr0.errors import ConfigError

    with pytest.raises(ConfigError, match="GRPOConfig: generation_batch_size .* must be divisible by the global"):
        build_grpo_config(rc, tmp_path, reward_weights=weights, n_processes=processes, device="cuda:0")
