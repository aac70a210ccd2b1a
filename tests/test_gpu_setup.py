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
