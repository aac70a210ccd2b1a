"""One rank of the DeepSpeed ZeRO-3 CPU round trip (tests/test_deepspeed_cpu.py), run under `torchrun` with
DS_ACCELERATOR=cpu (gloo). `python _deepspeed_worker.py train OUT`: load the tiny model partitioned as it loads
(HfDeepSpeedConfig alive, as TrainingArguments makes it), train 3 steps with a DeepSpeed checkpoint marked
complete after step 2, export `final/` through `checkpoint.save_final`; `resume OUT`: a fresh run resumes from
the checkpoint `checkpoint.resume_point` picks (through transformers' `deepspeed_load_checkpoint`) and runs
step 3 again. Rank 0 writes the gathered weights (`weights_<mode>_<step>.pt`) for the test to compare."""

from __future__ import annotations

import os
import sys
import types
from pathlib import Path

import deepspeed
import torch
import torch.distributed as dist
from accelerate import Accelerator
from accelerate.utils import DistributedType
from transformers.integrations import HfDeepSpeedConfig
from transformers.integrations.deepspeed import deepspeed_load_checkpoint

from toolr0.inference.models import load_model
from toolr0.training import checkpoint as ckpt
from toolr0.training.config import RolesConfig
from toolr0.training.roles import RoleModels

DS_CONFIG = {
    "train_micro_batch_size_per_gpu": 1,
    "gradient_accumulation_steps": 1,
    "zero_allow_untested_optimizer": True,
    "zero_optimization": {"stage": 3, "stage3_gather_16bit_weights_on_model_save": True},
}


def gathered(engine) -> dict[str, torch.Tensor]:
    """Every parameter whole, gathered from the shards (every rank takes part)."""
    out = {}
    for name, p in engine.module.named_parameters():
        with deepspeed.zero.GatheredParameters([p]):
            out[name] = p.detach().clone()
    return out


def step(engine, n: int) -> None:
    g = torch.Generator().manual_seed(1000 + 10 * n + dist.get_rank())
    ids = torch.randint(3, 256, (1, 12), generator=g)
    loss = engine(input_ids=ids, labels=ids).loss
    engine.backward(loss)
    engine.step()


def main(mode: str, out: Path) -> None:
    torch.manual_seed(0)
    torch.set_num_threads(1)
    deepspeed.init_distributed(dist_backend="gloo")
    rank = dist.get_rank()
    dschf = HfDeepSpeedConfig(DS_CONFIG)  # what TrainingArguments registers: from_pretrained now partitions
    model, tokenizer = load_model(str(out / "base"), dtype="fp32", device="cpu", cpu_matmul="default")
    assert all(hasattr(p, "ds_id") for p in model.parameters()), "not partitioned at load time (zero3 init)"
    model.train()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2)
    engine, *_ = deepspeed.initialize(model=model, optimizer=opt, config=DS_CONFIG)
    if mode == "train":
        for n in (1, 2):
            step(engine, n)
        folder = out / "checkpoints" / "checkpoint-2"
        engine.save_checkpoint(str(folder))  # what transformers does for a DeepSpeed checkpoint
        ckpt.finish_save(folder, 2, rank == 0)
        w2 = gathered(engine)
        if rank == 0:
            torch.save(w2, out / "weights_train_2.pt")
    else:
        try:  # a weights-only folder (save_only_model) cannot be resumed under DeepSpeed: issue 29.3
            deepspeed_load_checkpoint(engine, str(out / "base"))
            weights_only = "loaded"
        except ValueError as exc:
            weights_only = str(exc)
        resume_from = ckpt.resume_point(out, resume=True)
        deepspeed_load_checkpoint(engine, str(resume_from))
        w2 = gathered(engine)
        if rank == 0:
            torch.save(w2, out / "weights_resume_2.pt")
            (out / "weights_only.txt").write_text(weights_only)
    step(engine, 3)
    w3 = gathered(engine)
    if rank == 0:
        torch.save(w3, out / f"weights_{mode}_3.pt")
    if mode == "train":  # the final export, through the trainer's path (accelerate's ZeRO-3 get_state_dict)
        acc = types.SimpleNamespace(
            distributed_type=DistributedType.DEEPSPEED,
            deepspeed_config=DS_CONFIG,
            is_main_process=rank == 0,
            wait_for_everyone=dist.barrier,
        )
        acc.get_state_dict = lambda m, unwrap=True: Accelerator.get_state_dict(acc, m, unwrap)
        trainer = types.SimpleNamespace(accelerator=acc, model_wrapped=engine)
        roles = RoleModels(RolesConfig(mode="full"), tokenizer, full_models={"solver": engine.module})
        ckpt.save_final(trainer, roles, "solver", out / "final")
    del dschf
    dist.barrier()
    dist.destroy_process_group()


if __name__ == "__main__":
    main(sys.argv[1], Path(sys.argv[2]))
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)  # DeepSpeed's CPU teardown can abort the interpreter at exit ("terminate called ...")
