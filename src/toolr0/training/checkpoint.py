"""Crash-safe checkpoints for TRL/transformers runs.

transformers writes `checkpoint-N/` in place (weights, optimizer, scheduler, RNG, then `trainer_state.json`
last), so a run killed mid-save leaves a half-written folder that `get_last_checkpoint` would happily pick.
We (1) mark a checkpoint complete with an atomically written `toolr0_complete.json` once the save returned,
(2) treat a folder as complete only if that marker exists or its `trainer_state.json` (written last) parses
and names step N, and (3) delete incomplete folders before resuming, so resume always starts from the last
complete save and a killed run loses at most the steps since then.
Under several processes (one shared run folder) every rank writes its own files into a checkpoint (DeepSpeed
shards, `rng_state_<rank>.pth`): the marker is written by rank 0 only after a barrier that every rank reaches
once its save returned, a folder with other ranks' files counts as complete only with the marker, and the resume
point is decided once (`resume_point`: rank 0 cleans up and chooses, the others receive its choice).
`save_final` writes a role's final weights once, gathered from every rank (safe under ZeRO-3).
"""

from __future__ import annotations

import json
import logging
import re
import shutil
import time
from pathlib import Path
from typing import Any

from toolr0.errors import ConfigError
from toolr0.io import atomic_write_json

log = logging.getLogger(__name__)

MARKER = "toolr0_complete.json"
_CKPT_RE = re.compile(r"^checkpoint-(\d+)$")


def checkpoint_step(path: Path) -> int | None:
    m = _CKPT_RE.match(path.name)
    return int(m.group(1)) if m else None


def is_complete(ckpt: str | Path) -> bool:
    """True when `ckpt` (a `checkpoint-N` folder) holds a finished save."""
    ckpt = Path(ckpt)
    step = checkpoint_step(ckpt)
    if step is None or not ckpt.is_dir():
        return False
    if (ckpt / MARKER).is_file():
        return True
    if any(ckpt.glob("rng_state_*.pth")):  # a multi-process save: only the marker (after a barrier) vouches for it
        return False
    try:
        state = json.loads((ckpt / "trainer_state.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(state, dict) and state.get("global_step") == step


def list_checkpoints(folder: str | Path) -> list[Path]:
    """`checkpoint-N` folders under `folder`, oldest first."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    found = [p for p in folder.iterdir() if p.is_dir() and checkpoint_step(p) is not None]
    return sorted(found, key=lambda p: checkpoint_step(p) or 0)


def last_complete_checkpoint(folder: str | Path) -> Path | None:
    """The newest complete checkpoint under `folder`, or None."""
    for ckpt in reversed(list_checkpoints(folder)):
        if is_complete(ckpt):
            return ckpt
    return None


def remove_incomplete(folder: str | Path) -> list[Path]:
    """Delete every incomplete `checkpoint-N` folder (a killed save); returns what was removed."""
    removed = []
    for ckpt in list_checkpoints(folder):
        if not is_complete(ckpt):
            log.warning("removing incomplete checkpoint %s (a save was interrupted)", ckpt)
            shutil.rmtree(ckpt, ignore_errors=True)
            removed.append(ckpt)
    return removed


def mark_complete(ckpt: str | Path, step: int) -> None:
    atomic_write_json(Path(ckpt) / MARKER, {"step": step, "time": time.time()})


def _process_group() -> Any:
    """`torch.distributed` when a process group is up (under a launcher, once TrainingArguments set it up)."""
    try:
        import torch.distributed as dist
    except ImportError:  # pragma: no cover - torch is there whenever a trainer is
        return None
    return dist if dist.is_available() and dist.is_initialized() else None


def barrier() -> None:
    """Wait for every rank (a no-op in a single process)."""
    dist = _process_group()
    if dist is not None:
        dist.barrier()


def finish_save(ckpt: str | Path, step: int, is_main: bool) -> None:
    """Called by every rank once its part of a save returned: after a barrier, rank 0 marks the folder complete,
    so the marker never vouches for a folder another rank is still writing."""
    barrier()
    if is_main and Path(ckpt).is_dir():
        mark_complete(ckpt, step)


def completion_callback() -> Any:
    """A `TrainerCallback` writing the completion marker after every save (every rank waits, rank 0 writes)."""
    from transformers import TrainerCallback

    class CheckpointCompleteCallback(TrainerCallback):
        def on_save(self, args, state, control, **kwargs):  # noqa: ANN001 - transformers signature
            ckpt = Path(args.output_dir) / f"checkpoint-{state.global_step}"
            finish_save(ckpt, state.global_step, state.is_world_process_zero)
            return control

    return CheckpointCompleteCallback()


def _decide_resume(out: Path, resume: bool) -> Path | None:
    ckdir = out / "checkpoints"
    if not resume:
        if list_checkpoints(ckdir):
            raise ConfigError(f"{out} already has checkpoints: pass --resume to continue, or choose another --out")
        return None
    remove_incomplete(ckdir)
    last = last_complete_checkpoint(ckdir)
    if last is None:
        log.info("resume: no complete checkpoint under %s, starting from step 0", ckdir)
    return last


def resume_point(out: str | Path, resume: bool) -> Path | None:
    """The checkpoint to resume from (the newest complete one under `out/checkpoints`), or None; refuses a folder
    that has checkpoints without `resume` (no silent overwrite).

    Decided once for all ranks: rank 0 deletes incomplete folders and chooses, then broadcasts its choice (or its
    error) to the others, which never list or delete anything themselves. Ranks that each looked at the shared
    folder could pick different steps (or one delete what another loads) and fail on resume."""
    dist = _process_group()
    decision: tuple[str, str | None] | None = None
    if dist is None or dist.get_rank() == 0:
        try:
            last = _decide_resume(Path(out), resume)
            decision = ("ok", str(last) if last is not None else None)
        except ConfigError as exc:
            decision = ("error", str(exc))
    if dist is not None:
        box = [decision]
        dist.broadcast_object_list(box, src=0)
        decision = box[0]
    assert decision is not None
    kind, value = decision
    if kind == "error":
        raise ConfigError(value or "resume failed on rank 0")
    return Path(value) if value is not None else None


def save_final(trainer: Any, models: Any, role: str, dest: str | Path) -> Path:
    """Write `role`'s trained parameters to `dest` once, correctly under every launcher.

    Under DeepSpeed ZeRO-3 each rank holds a shard, so calling `save_pretrained` on every rank writes empty
    tensors. Every rank takes part in accelerate's `get_state_dict` (a collective gather under ZeRO-3/FSDP;
    DeepSpeed needs `zero3_save_16bit_model: true`, as in configs/accelerate/), then only the main process
    writes the folder and the others wait for it."""
    accelerator = trainer.accelerator
    state_dict = accelerator.get_state_dict(trainer.model_wrapped)
    dest = Path(dest)
    if accelerator.is_main_process:
        models.save_role(role, dest, state_dict=state_dict)
    accelerator.wait_for_everyone()
    return dest
