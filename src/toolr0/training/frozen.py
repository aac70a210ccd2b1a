"""The frozen Solver during Generator training (phase A): where it answers (`frozen_solver_source`: a given
service, one behind an OpenAI-compatible server, or in-process on the loaded weights) and the scope its
in-process calls run in (`frozen_scope`: the solver adapter switched in, the trained one restored after).
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from toolr0.training.grpo import outside_zero3_init
from toolr0.training.roles import RoleModels

if TYPE_CHECKING:
    from toolr0.config import ToolR0Config
    from toolr0.inference.solver_service import SolverService

RoleInit = dict[str, str | os.PathLike[str] | None]


@dataclass
class FrozenSolverSource:
    """Where phase A's frozen Solver answers: `remote` (a service built before any model loads and health-checked
    then) or `in_process(models, args, device, init)` (a service on the loaded weights)."""

    remote: SolverService | None
    in_process: Callable[[RoleModels, Any, str, RoleInit | None], SolverService] | None
    is_remote: bool = False  # no trained-adapter scope around its calls


def frozen_solver_source(cfg: ToolR0Config, service: SolverService | None) -> FrozenSolverSource:
    """Phase A's frozen Solver: `service` when given (in-process, under the adapter scope); else behind a server
    (GPU recipe: `inference.backend` openai | vllm); else in-process on the frozen weights once they load."""
    if service is not None:
        return FrozenSolverSource(service, None)
    if cfg.inference.backend in ("openai", "vllm"):
        return FrozenSolverSource(_remote_service(cfg), None, is_remote=True)

    def in_process(models: RoleModels, args: Any, device: str, init: RoleInit | None) -> SolverService:
        if cfg.roles.mode == "full":
            with outside_zero3_init(args):  # a whole frozen copy per rank, never partitioned
                solver = _load_frozen_full_solver(cfg, init, device)
            models.full_models.setdefault("solver", solver)
        return _default_service(cfg, models)

    return FrozenSolverSource(None, in_process)


def _default_service(cfg: ToolR0Config, models: RoleModels) -> SolverService:
    """In-process frozen Solver: an `HFSampler` over the frozen Solver model (the shared PeftModel with the
    solver adapter, the phase-start snapshot in shared mode, or the separate Solver model in full mode)."""
    from toolr0.inference.hf import HFSampler
    from toolr0.inference.solver_service import build_solver_service

    adapter = models.frozen_solver_adapter()
    sampler = HFSampler(
        models.frozen_solver_model(),
        models.tokenizer,
        batch_size=cfg.inference.batch_size,
        max_batch_sequences=cfg.inference.max_batch_sequences,
        sort_by_length=cfg.inference.sort_by_length,
        merge_lora=cfg.inference.merge_lora,
        checkpoint_id=f"frozen-solver:{adapter or 'full'}:{time.time_ns()}",  # fresh cache scope per phase
    )
    return build_solver_service(cfg, sampler, adapter=adapter)


def _remote_service(cfg: ToolR0Config) -> SolverService:
    """Frozen Solver behind an OpenAI-compatible server (e.g. `vllm serve`, GPU recipe; restart or reload it
    with the newest Solver checkpoint before every Generator phase, spec §10.10)."""
    from toolr0.inference.openai_backend import OpenAISampler
    from toolr0.inference.solver_service import build_solver_service

    # a configured served model (e.g. the loop's managed server) is the frozen Solver itself: no adapter on top
    lora = cfg.roles.mode == "lora" and cfg.inference.served_model is None
    adapter = cfg.roles.solver_adapter if lora else None
    return build_solver_service(cfg, OpenAISampler.from_config(cfg.inference), adapter=adapter)


def _load_frozen_full_solver(cfg: ToolR0Config, init: RoleInit | None, device: str) -> Any:
    from toolr0.inference.models import load_model_for

    model, _ = load_model_for(cfg.model, (init or {}).get("solver"), device=device)
    model.eval()
    for p in model.parameters():
        p.requires_grad_(False)
    return model


@contextlib.contextmanager
def frozen_scope(models: RoleModels) -> Iterator[tuple[Any, str | None]]:
    """Use the frozen Solver inside a training step: yields (model, adapter name or None).

    Whatever the sampler does inside (switching adapters, `eval()`), on exit the previously active adapter,
    every parameter's `requires_grad` flag and the train/eval mode are restored, so the trained role keeps
    training and the frozen role stays frozen.
    """
    model = models.frozen_solver_model()
    pm = models.peft_model
    flags = {n: p.requires_grad for n, p in (pm or model).named_parameters()}
    was_training = (pm or model).training
    prev_adapter = pm.active_adapter if pm is not None else None
    adapter = models.frozen_solver_adapter()
    try:
        if pm is not None:
            pm.set_adapter(adapter)
        (pm or model).eval()  # also turns off gradient checkpointing's use_cache=False path during generation
        yield model, adapter
    finally:
        if pm is not None:
            pm.set_adapter(prev_adapter)
        for n, p in (pm or model).named_parameters():
            p.requires_grad_(flags[n])
        (pm or model).train(was_training)
