"""Run a function on N CPU ranks of a real process group (gloo, torch.multiprocessing spawn), for the tests
that check what ranks must agree on. Each worker is called as `worker(rank, world, out_dir, *args)` with the
process group up and writes what it saw to `out_dir/rank<r>.json`; `run_ranks` returns those records.

A worker that uses the training stack names it in `preload`: those modules are imported before the process group
comes up, as under `accelerate launch`. Imported after it, DeepSpeed (pulled in by transformers' modeling code)
keeps the gloo group alive past `destroy_process_group`, and its threads then abort the rank at interpreter exit
now and then ("terminate called without an active exception", SIGABRT; 1 run in ~15 here)."""

from __future__ import annotations

import json
import os
from datetime import timedelta
from pathlib import Path
from typing import Any


def _entry(
    rank: int, worker: Any, world: int, out_dir: str, args: tuple[Any, ...], preload: tuple[str, ...]
) -> None:
    import importlib

    import torch
    import torch.distributed as dist

    for module in preload:
        importlib.import_module(module)
    torch.set_num_threads(1)
    dist.init_process_group(
        "gloo",
        init_method=f"file://{out_dir}/pg_init",
        rank=rank,
        world_size=world,
        timeout=timedelta(seconds=60),  # a rank left waiting fails the test instead of hanging it
    )
    try:
        worker(rank, world, Path(out_dir), *args)
    finally:
        dist.destroy_process_group()


def run_ranks(
    worker: Any, out_dir: Path, *args: Any, world: int = 2, preload: tuple[str, ...] = ()
) -> list[dict[str, Any]]:
    """Spawn `world` ranks running `worker` (a module-level function); the ranks' JSON records, rank order."""
    import torch.multiprocessing as mp

    os.environ.setdefault("OMP_NUM_THREADS", "1")
    out_dir.mkdir(parents=True, exist_ok=True)
    mp.spawn(_entry, args=(worker, world, str(out_dir), args, preload), nprocs=world, join=True)
    return [json.loads((out_dir / f"rank{r}.json").read_text()) for r in range(world)]


def record(out_dir: Path, rank: int, **values: Any) -> None:
    (out_dir / f"rank{rank}.json").write_text(json.dumps(values))
