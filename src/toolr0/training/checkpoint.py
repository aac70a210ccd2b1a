"""Crash-safe checkpoints for TRL/transformers runs.

transformers writes `checkpoint-N/` in place (weights, optimizer, scheduler, RNG, then `trainer_state.json`
last), so a run killed mid-save leaves a half-written folder that `get_last_checkpoint` would happily pick.
We (1) mark a checkpoint complete with an atomically written `toolr0_complete.json` once the save returned,
(2) treat a folder as complete only if that marker exists or its `trainer_state.json` (written last) parses
and names step N, and (3) delete incomplete folders before resuming, so resume always starts from the last
complete save and a killed run loses at most the steps since then.
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


def completion_callback() -> Any:
    """A `TrainerCallback` writing the completion marker after every save (main process only)."""
    from transformers import TrainerCallback

    class CheckpointCompleteCallback(TrainerCallback):
        def on_save(self, args, state, control, **kwargs):  # noqa: ANN001 - transformers signature
            if state.is_world_process_zero:
                ckpt = Path(args.output_dir) / f"checkpoint-{state.global_step}"
                if ckpt.is_dir():
                    mark_complete(ckpt, state.global_step)
            return control

    return CheckpointCompleteCallback()


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
