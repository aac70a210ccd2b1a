"""scripts/native_experiment.sh, the issue's measured result in one command: each step's toolr0 commands, with a
stand-in `toolr0` on PATH that prints its arguments (nothing runs)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _commands(tmp_path: Path, **env: str) -> list[str]:
    shim = tmp_path / "bin"
    shim.mkdir(exist_ok=True)
    (shim / "toolr0").write_text('#!/bin/sh\necho toolr0 "$@"\n')
    (shim / "toolr0").chmod(0o755)
    full = {**os.environ, "PATH": f"{shim}{os.pathsep}{os.environ['PATH']}", **env}
    res = subprocess.run(
        ["bash", "scripts/native_experiment.sh"],
        cwd=ROOT,
        env=full,
        capture_output=True,
        text=True,
        check=True,
    )
    return res.stdout.splitlines()


def test_default_names_are_the_cpu_runs_of_results(tmp_path):
    train, ablation = _commands(tmp_path, STEPS="train ablation")
    assert (
        train == "toolr0 selfplay --config configs/cpu.yaml --out runs/cpu_native_v2 --set loop.iterations=1"
    )
    assert ablation.endswith(
        "--out runs/cpu_native_frozen_gen_v2 --set loop.iterations=1 --set loop.freeze_generator=true"
    )


def test_another_preset_format_and_overrides_reach_every_step(tmp_path):
    env = {
        "CONFIG": "configs/paper.yaml",
        "ITERATIONS": "3",
        "FORMAT": "reference",
        "TAG": "paper",
        "SETS": "spec_file=one_call loop.n_candidates=168",
        "STEPS": "base train ablation compare",
    }
    base_h, base_b, train, ablation, cmp_base, cmp_frozen = _commands(tmp_path, **env)
    assert "--solver-format reference --out runs/eval/base_reference_hammer" in base_h
    assert (
        base_b.startswith("toolr0 eval run --model default -b bfcl_simple_python,") and "--limit 50" in base_b
    )
    sets = "--set loop.iterations=3 --set spec_file=one_call --set loop.n_candidates=168"
    assert train == f"toolr0 selfplay --config configs/paper.yaml --out runs/paper_reference_paper {sets}"
    assert ablation == (
        f"toolr0 selfplay --config configs/paper.yaml --out runs/paper_reference_frozen_gen_paper {sets}"
        " --set loop.freeze_generator=true"
    )
    assert cmp_base == (
        "toolr0 eval compare runs/eval/base_reference_hammer,runs/eval/base_reference_bfcl"
        " runs/eval/trained_reference_paper_hammer,runs/eval/trained_reference_paper_bfcl"
    )
    assert cmp_frozen.startswith("toolr0 eval compare runs/eval/frozen_gen_reference_paper_hammer,")


def test_an_unknown_step_is_one_line_and_exit_2(tmp_path):
    shim_env = {"STEPS": "nonsense"}
    try:
        _commands(tmp_path, **shim_env)
    except subprocess.CalledProcessError as exc:
        assert exc.returncode == 2 and exc.stderr.strip().startswith("unknown step: nonsense")
    else:
        raise AssertionError("an unknown step ran")
