"""What the ranks of a multi-process run must agree on, checked on 2 real gloo ranks (CPU): the resume
checkpoint (decided once by rank 0), the completion marker (written only after every rank's save), and the
number of forwards of the shared-prompt loss path (ZeRO-3 gathers parameters in every forward, on every rank).
Slow (each rank is a process importing torch/TRL): run with `-m slow`, as .ci/run does."""

from __future__ import annotations

import contextlib
import json
import time
import types
from pathlib import Path

import pytest

pytest.importorskip("torch")
pytestmark = pytest.mark.slow

from _dist_support import record, run_ranks  # noqa: E402


def _make_checkpoints(ckdir: Path, steps: tuple[int, ...]) -> None:
    for step in steps:
        folder = ckdir / f"checkpoint-{step}"
        folder.mkdir(parents=True)
        (folder / "trainer_state.json").write_text(json.dumps({"global_step": step}))


def _resume_worker(rank: int, world: int, out: Path) -> None:
    from toolr0.errors import ConfigError
    from toolr0.training import checkpoint as ckpt

    try:
        ckpt.resume_point(out / "run", resume=False)
        refused = None
    except ConfigError as exc:
        refused = str(exc)
    if rank == 1:  # this rank's view of the shared folder disagrees: checkpoint-4 looks torn to it
        real = ckpt.is_complete
        ckpt.is_complete = lambda p: False if Path(p).name == "checkpoint-4" else real(p)
    chosen = ckpt.resume_point(out / "run", resume=True)
    record(out, rank, refused=refused, chosen=str(chosen), exists=chosen is not None and chosen.is_dir())


def test_every_rank_resumes_from_rank_zeros_choice(tmp_path):
    _make_checkpoints(tmp_path / "run" / "checkpoints", (2, 4))
    torn = tmp_path / "run" / "checkpoints" / "checkpoint-6"
    torn.mkdir()
    ranks = run_ranks(_resume_worker, tmp_path)
    newest = str(tmp_path / "run" / "checkpoints" / "checkpoint-4")
    assert [r["chosen"] for r in ranks] == [newest, newest]
    assert all(r["exists"] for r in ranks)  # rank 1 deleted nothing
    assert not torn.exists()  # rank 0 cleaned up
    assert ranks[0]["refused"] and ranks[0]["refused"] == ranks[1]["refused"]  # one error, on every rank
    assert "already has checkpoints" in ranks[1]["refused"]


def _save_worker(rank: int, world: int, out: Path) -> None:
    from toolr0.training import checkpoint as ckpt

    folder = out / "checkpoint-2"
    folder.mkdir(exist_ok=True)
    callback = ckpt.completion_callback()
    args = types.SimpleNamespace(output_dir=str(out))
    state = types.SimpleNamespace(global_step=2, is_world_process_zero=rank == 0)
    marker_seen = None
    if rank == 1:  # a slow rank: its shard lands well after rank 0 finished its own save and called back
        deadline = time.monotonic() + 30
        while not (out / "rank0_saved").exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(1.0)
        marker_seen = (folder / ckpt.MARKER).exists()
    (folder / f"rng_state_{rank}.pth").write_bytes(b"x")
    if rank == 0:
        (out / "rank0_saved").write_text("")
    callback.on_save(args, state, control=None)
    ckpt.barrier()  # rank 0 writes the marker after the callback's barrier: look once it is done
    record(out, rank, marker_seen_before_my_save=marker_seen, marker=(folder / ckpt.MARKER).exists())


def test_completion_marker_waits_for_every_ranks_save(tmp_path):
    from toolr0.training import checkpoint as ckpt

    ranks = run_ranks(_save_worker, tmp_path)
    assert ranks[1]["marker_seen_before_my_save"] is False
    assert ranks[0]["marker"] and ranks[1]["marker"]
    assert ckpt.is_complete(tmp_path / "checkpoint-2")


_TRAINING_STACK = ("trl.trainer.utils", "toolr0.training.grpo", "toolr0.inference.models")


def _forwards_worker(rank: int, world: int, out: Path) -> None:
    import torch
    from trl.trainer.utils import add_fused_lm_head

    from toolr0.inference.models import tiny_random_model
    from toolr0.training.grpo import _trainer_class

    model, _ = tiny_random_model(seed=0)
    add_fused_lm_head(model, outputs=("log_probs", "entropy"))
    calls: list[int] = []
    model.register_forward_pre_hook(lambda *a: calls.append(1))
    # rank 0's batch repeats a prompt (GRPO groups do); rank 1's four prompts are all different
    prompts = [[105, 106], [105, 106], [107, 108], [109, 110]] if rank == 0 else [[111, 112], [113, 114], [115, 116], [117, 118]]
    comps = [[121, 122], [123, 0], [124, 125], [126, 127]]
    ids = torch.tensor([p + c for p, c in zip(prompts, comps, strict=True)])
    mask = (ids != 0).long()
    trainer = _trainer_class().__new__(_trainer_class())  # the loss override alone, no trainer set-up
    trainer.accelerator = types.SimpleNamespace(autocast=contextlib.nullcontext, is_main_process=rank == 0)
    counts = {}
    for batch_size in (None, 2, 1):
        calls.clear()
        trainer._get_per_token_logps_and_entropies(model, ids, mask, 2, batch_size=batch_size)
        counts[str(batch_size)] = len(calls)
    mine = torch.tensor([counts[k] for k in sorted(counts)])
    theirs = [torch.zeros_like(mine) for _ in range(world)]
    torch.distributed.all_gather(theirs, mine)
    record(out, rank, counts=counts, all_ranks=[t.tolist() for t in theirs])


def test_shared_prompt_forwards_match_across_ranks(tmp_path):
    ranks = run_ranks(_forwards_worker, tmp_path, preload=_TRAINING_STACK)
    assert ranks[0]["counts"] == ranks[1]["counts"] == {"None": 1, "2": 2, "1": 4}  # TRL's ceil(4 / batch_size)
    assert ranks[0]["all_ranks"][0] == ranks[0]["all_ranks"][1]
