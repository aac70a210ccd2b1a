"""A real DeepSpeed ZeRO-3 round trip on the CPU (DeepSpeed's CPU accelerator, gloo, 2 ranks under torchrun;
accelerate 1.15 cannot drive DeepSpeed on a CPU, so tests/_deepspeed_worker.py calls `deepspeed.initialize`):
the tiny model is partitioned as it loads, trains, saves a DeepSpeed checkpoint marked complete after every
rank's save, exports `final/` through `checkpoint.save_final`; a fresh 2-rank run resumes from the checkpoint
`checkpoint.resume_point` picks and takes the same step again. Slow: run with `-m slow`, as .ci/run does."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("torch")
pytest.importorskip("deepspeed", reason="DeepSpeed is not installed (pip install deepspeed==0.19.8, DS_BUILD_OPS=0)")
pytestmark = pytest.mark.slow

HERE = Path(__file__).resolve().parent
SRC = HERE.parent / "src"


def _torchrun(mode: str, out: Path) -> None:
    env = {
        **os.environ,
        "DS_ACCELERATOR": "cpu",
        "OMP_NUM_THREADS": "1",
        "PYTHONPATH": os.pathsep.join([str(SRC), os.environ.get("PYTHONPATH", "")]),
    }
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2"]
    proc = subprocess.run(
        [*cmd, str(HERE / "_deepspeed_worker.py"), mode, str(out)],
        env=env,
        cwd=HERE,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, f"{mode} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"


def test_zero3_train_save_final_load_and_resume_on_cpu(tmp_path):
    import torch
    from transformers import AutoModelForCausalLM

    from toolr0.inference.models import save_tiny_model
    from toolr0.training import checkpoint as ckpt

    save_tiny_model(tmp_path / "base")
    _torchrun("train", tmp_path)
    assert ckpt.is_complete(tmp_path / "checkpoints" / "checkpoint-2")
    assert any((tmp_path / "checkpoints" / "checkpoint-2").glob("global_step*"))
    _torchrun("resume", tmp_path)

    w = {name: torch.load(tmp_path / f"weights_{name}.pt") for name in ("train_2", "train_3", "resume_2", "resume_3")}
    # final/ loaded in this (fresh, non-distributed) process holds the gathered weights, not empty shards
    final = dict(AutoModelForCausalLM.from_pretrained(tmp_path / "final", dtype=torch.float32).named_parameters())
    base = dict(AutoModelForCausalLM.from_pretrained(tmp_path / "base", dtype=torch.float32).named_parameters())
    assert final.keys() == w["train_3"].keys()
    for name, gathered in w["train_3"].items():
        assert final[name].numel() == gathered.numel() > 0, name
        assert torch.equal(final[name].detach(), gathered), name
    assert any(not torch.equal(final[n], base[n]) for n in final)  # trained, not the base weights
    # resume: the checkpoint's weights exactly, then the same third step as the uninterrupted run
    for name in w["train_2"]:
        assert torch.equal(w["resume_2"][name], w["train_2"][name]), name
        assert torch.allclose(w["resume_3"][name], w["train_3"][name], atol=1e-6), name
    # a weights-only folder (what save_only_model writes) cannot be resumed under DeepSpeed (issue 29.3)
    assert (tmp_path / "weights_only.txt").read_text().startswith("Can't find a valid checkpoint")
