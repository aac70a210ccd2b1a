"""The models behind the self-play loop (the `seam.Engine` it calls): which weights play which role, and how
they are sampled/trained.

`RoleEngine` (default, hf backend) keeps ONE `RoleModels` in memory (`training.roles`: a frozen base with a LoRA
adapter per role, or full models, or the shared-weights ablation) and reuses it across stages and
iterations: the Generator samples candidates through its adapter, the frozen Solver cross-verifies and
labels through its adapter (S_{t-1}: phase C of this iteration has not run yet), and training updates the
role's adapter in place (then saves it). After a resume the adapters are reloaded from the run's
checkpoints, so the in-memory state always equals the recorded checkpoints.

Other backends (vllm/openai) sample through a fresh sampler per checkpoint; training still goes through
`toolr0.training.run` (TRL). One in-process vLLM engine at a time: the previous one is torn down
(`VLLMSampler.close`) before the next opens and before a GRPO phase starts (TRL's colocated engine would sit
beside it), and the RANK / WORLD_SIZE / MASTER_* variables that engine sets are restored after the phase. On a
GPU the paper preset avoids sharing a process at all: `launch.mode: processes` (docs/launch.md). With `server.managed` (openai backend) the engine runs the server itself
(`served.ServedSolver`): phase A's curriculum reward and judge query a server serving the frozen
Solver, stage B samples through a server serving the checkpoint it needs (restarted when that changes, so
every iteration serves the new Solver), and the server is stopped before Solver training and at the end.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from toolr0.config import ToolR0Config
from toolr0.core.seeds import seed_for
from toolr0.errors import ToolR0Error
from toolr0.inference.base import Sampler
from toolr0.selfplay.ops import _Generator, _progress_callback
from toolr0.selfplay.progress import Reporter
from toolr0.selfplay.rundir import RunDir
from toolr0.selfplay.seam import Engine
from toolr0.selfplay.served import ServedSolver
from toolr0.selfplay.train_record import train_record

if TYPE_CHECKING:
    from toolr0.inference.server import ManagedServer
    from toolr0.inference.solver_service import SolverService
    from toolr0.training.roles import RoleModels

log = logging.getLogger(__name__)

#: set by TRL's colocated vLLM engine (`vllm_mode: colocate`) in os.environ and never unset
COLOCATE_ENV = ("RANK", "LOCAL_RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT")


class RoleEngine:
    """Both roles on one in-memory `RoleModels` (see module docstring)."""

    def __init__(self, cfg: ToolR0Config, run: RunDir):
        self.cfg = cfg
        self.run = run
        self.models: RoleModels | None = None
        self.loaded: dict[str, str | None] = {}
        self._services: dict[tuple[str | None, int], SolverService] = {}
        self._sampler: Sampler | None = None
        self._external: tuple[tuple[str, str, str | None], Sampler, str | None] | None = None
        self._training = False
        self._served = ServedSolver(cfg, run)  # the managed server (server.managed)

    @property
    def server(self) -> ManagedServer | None:
        """The running managed server, if any."""
        return self._served.server

    # ------------------------------------------------------------------ weights
    @property
    def shared(self) -> bool:
        return self.cfg.roles.mode == "shared"

    def _slot(self, role: str) -> str:
        return "shared" if self.shared else role

    def ensure(self, **want: str | None) -> RoleModels | None:
        """Make the in-memory role weights equal the given checkpoints (None = π₀), loading what differs."""
        from toolr0.training.roles import load_role_models

        slots = {self._slot(r): ck for r, ck in want.items()}
        if self.cfg.inference.backend != "hf" and not self._training:
            self.loaded.update(slots)  # sampled by the external backend from the checkpoint itself
            return None
        if self.models is None:
            init = {"generator": slots.get("shared", slots.get("generator")), "solver": slots.get("solver")}
            if self.shared:
                init = {"generator": slots.get("shared")}
            self.models = load_role_models(self.cfg.model, self.cfg.roles, init=init)
            self.loaded = {"shared": init["generator"]} if self.shared else dict(init)
            self._sampler = None
            return self.models
        for slot, ck in slots.items():
            if self.loaded.get(slot, "<unset>") != ck:
                self._reload(slot, ck)
        return self.models

    def _reload(self, slot: str, ck: str | None) -> None:
        """Swap one role's weights for checkpoint `ck` (LoRA: adapter reload; full: model reload)."""
        rm = self.models
        role = "generator" if slot in ("generator", "shared") else "solver"
        if rm.peft_model is not None:
            name = rm.adapter_name(role)
            pm = rm.peft_model
            other = next(n for n in pm.peft_config if n != name) if len(pm.peft_config) > 1 else None
            if other is not None:
                pm.set_adapter(other)
            pm.delete_adapter(name)
            if ck:
                pm.load_adapter(str(ck), adapter_name=name, is_trainable=True)
            else:
                from toolr0.training.roles import lora_config

                pm.add_adapter(name, lora_config(self.cfg.roles))
                _zero_lora_b(pm, name)
            pm.set_adapter(name)
        else:
            from toolr0.inference.models import load_model_for

            key = "shared" if self.shared else role
            model, _ = load_model_for(self.cfg.model, ck, dtype="fp32")
            model.train()
            for p in model.parameters():
                p.requires_grad_(True)
            rm.full_models[key] = model
            self._sampler = None
        self.loaded[slot] = ck
        self._services.clear()

    def _hf_sampler(self, model: Any) -> Sampler:
        from toolr0.inference.hf import HFSampler

        inf = self.cfg.inference
        return HFSampler(
            model,
            self.models.tokenizer,
            batch_size=inf.batch_size,
            max_batch_sequences=inf.max_batch_sequences,
            sort_by_length=inf.sort_by_length,
            checkpoint_id="selfplay",
        )

    def _external_sampler(self, role: str) -> tuple[Sampler, str | None]:
        """vllm/openai backends: a sampler over the role's current checkpoint (untested here: no GPU/vLLM).

        The trained weights are freed first (on one GPU, TRL's models and a vLLM engine do not fit together);
        `ensure` reloads them for the next training phase.
        """
        slot = self._slot(role)
        ck = self.loaded.get(slot)
        key = (self.cfg.inference.backend, slot, ck)
        if self._external is not None and self._external[0] == key:
            return self._external[1], self._external[2]
        self._drop_external()  # one engine of ours at a time: the old one is torn down first
        self._free_training_models()
        inf, mode = self.cfg.inference, self.cfg.roles.mode
        adapter = None
        sampler: Sampler
        if inf.backend == "openai" and self.cfg.server.managed:
            sampler = self.serve(ck).sampler(timeout_s=inf.timeout_s)
        elif inf.backend == "openai":
            from toolr0.inference.openai_backend import OpenAISampler

            sampler = OpenAISampler.from_config(inf)
            adapter = ck and Path(ck).name  # the server must serve this checkpoint under that name
        else:
            from toolr0.inference.vllm_backend import VLLMSampler

            lora = mode == "lora" or (mode == "shared" and self.cfg.roles.shared_use_lora)
            name = str(ck) if (ck and not lora) else self.cfg.model.name
            sampler = VLLMSampler.from_config(self.cfg.model.model_copy(update={"name": name}), inf)
            if lora and ck:
                sampler.add_adapter(slot, str(ck))
                adapter = slot
        self._external = (key, sampler, adapter)
        return sampler, adapter

    # ------------------------------------------------------------------ managed server
    def serve(self, checkpoint: str | None) -> ManagedServer:
        """The managed server serving `checkpoint` (None: the base model); restarted when it changes."""
        srv = self._served.server
        if srv is None or self._served.checkpoint != checkpoint or not srv.running:
            self._drop_external()  # its sampler points at the server being replaced
        return self._served.serve(checkpoint)

    def stop_server(self) -> None:
        self._drop_external()  # its sampler pointed at the stopped server
        self._served.stop()

    def _drop_external(self) -> None:
        """Forget the external sampler and its Solver services; an in-process engine (vLLM) is torn down
        explicitly (`close()`), not left to the garbage collector beside the next engine."""
        ext, self._external = self._external, None
        if ext is None:
            return
        self._services.clear()
        close = getattr(ext[1], "close", None)
        if callable(close):
            close()

    def _free_training_models(self) -> None:
        """Drop the trainable weights and hand their memory back; also when none are loaded here (what a
        finished GRPO phase left behind, e.g. TRL's colocated engine, is collected too)."""
        self.models = None
        self._sampler = None
        from toolr0.inference.device import release_accelerator_memory

        release_accelerator_memory()

    def _role_sampler(self, role: str) -> tuple[Sampler, str | None]:
        if self.cfg.inference.backend != "hf":
            return self._external_sampler(role)
        rm = self._models()
        if rm.peft_model is not None:
            if self._sampler is None:
                self._sampler = self._hf_sampler(rm.peft_model)
            return self._sampler, rm.adapter_name(role)
        key = "shared" if self.shared else role
        return self._hf_sampler(rm.full_models[key]), None

    # ------------------------------------------------------------------ loop interface
    def begin_iteration(self, t: int) -> None:
        """New iteration: the Solver changed, so every Solver cache is dropped (spec §10.10)."""
        for s in self._services.values():
            s.clear()
        self._services.clear()

    def generator(self, checkpoint: str | None, t: int) -> _Generator:
        self.ensure(generator=checkpoint)
        sampler, adapter = self._role_sampler("generator")
        return _Generator(sampler, adapter, self.cfg)

    def solver(self, checkpoint: str | None, t: int) -> SolverService:
        """The frozen Solver at `checkpoint` for cross-verification and difficulty (cache scoped to t)."""
        key = (checkpoint, t)
        if key not in self._services:
            if self.shared:
                self.ensure(generator=checkpoint)
            else:
                self.ensure(solver=checkpoint)
            from toolr0.inference.solver_service import build_solver_service

            sampler, adapter = self._role_sampler("solver")
            ck = f"solver:{checkpoint or 'base'}"
            self._services[key] = build_solver_service(self.cfg, sampler, checkpoint_id=ck, adapter=adapter)
        return self._services[key]

    def _frozen_service(self, frozen_solver: str | None) -> SolverService:
        """Phase A's frozen Solver for r_curr: behind the managed server (health-checked before training
        starts), else in-process (after the shared-mode snapshot is taken)."""
        from toolr0.inference.solver_service import build_solver_service

        if self.cfg.server.managed:
            sampler = self.serve(frozen_solver).sampler(timeout_s=self.cfg.inference.timeout_s)
            sampler.health_check()
            ck = f"served-solver:{frozen_solver or 'base'}"
            return build_solver_service(self.cfg, sampler, checkpoint_id=ck)
        rm = self._models()
        adapter = rm.frozen_solver_adapter()
        reuse = rm.peft_model is not None and self._sampler is not None
        sampler = self._sampler if reuse else self._hf_sampler(rm.frozen_solver_model())
        ck = f"frozen-solver:{adapter or 'full'}"
        return build_solver_service(self.cfg, sampler, checkpoint_id=ck, adapter=adapter)

    def _models(self) -> RoleModels:
        if self.models is None:
            raise ToolR0Error("the role models are not loaded (ensure() first)")
        return self.models

    def train_generator(
        self, *, iteration: int, init: str | None, frozen_solver: str | None, out_dir: Path, reporter: Reporter
    ) -> dict[str, Any]:
        from toolr0.training.run import train_generator

        self._begin_training(keep_server=True)
        if self.shared:
            self.ensure(generator=init)
        else:
            self.ensure(generator=init, solver=frozen_solver)
        self._models().snapshot_for_frozen_solver()  # shared ablation: S = phase-start snapshot (else no-op)
        service = self._frozen_service(frozen_solver)
        try:
            res = train_generator(
                self.cfg,
                out_dir,
                models=self.models,
                service=service,
                resume=True,
                spec_seed=seed_for(self.cfg.seed, "generator_prompts", iteration),
                callbacks=[_progress_callback(reporter, "generator")],
                echo=reporter.note,
            )
        finally:
            self._end_training()
            self.stop_server()  # phase A is over; the next phase serves (or trains) other weights
        service.clear()
        self.loaded[self._slot("generator")] = res.final_dir
        self._services.clear()
        return train_record(res)

    def train_solver(
        self, *, iteration: int, init: str | None, curriculum: Path, out_dir: Path, reporter: Reporter
    ) -> dict[str, Any]:
        from toolr0.training.run import train_solver

        self._begin_training()
        self.ensure(solver=init)
        try:
            res = train_solver(
                self.cfg,
                str(curriculum),
                out_dir,
                models=self.models,
                resume=True,
                callbacks=[_progress_callback(reporter, "solver")],
                echo=reporter.note,
            )
        finally:
            self._end_training()
        self.loaded[self._slot("solver")] = res.final_dir
        self._services.clear()
        return train_record(res)

    def _begin_training(self, keep_server: bool = False) -> None:
        self._training = True
        self._saved_env = {k: os.environ.get(k) for k in COLOCATE_ENV}
        if not keep_server:
            self.stop_server()  # training needs the GPUs the server holds
        self._drop_external()  # tear our inference engine down before TRL loads weights and its own engine

    def _end_training(self) -> None:
        """After a GRPO phase: restore the variables TRL's colocated vLLM engine set (a later engine of this
        process would read them) and hand the phase's memory back."""
        self._training = False
        for k, v in getattr(self, "_saved_env", {}).items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        from toolr0.inference.device import release_accelerator_memory

        release_accelerator_memory()

    def close(self) -> None:
        self.stop_server()
        self._drop_external()
        self._services.clear()
        self._sampler = None
        self.models = None


def _zero_lora_b(pm: Any, name: str) -> None:
    """A fresh adapter equals π₀ (PEFT zero-initialises B; made explicit so it holds for any init option)."""
    for n, p in pm.named_parameters():
        if f".{name}." in n and "lora_B" in n:
            p.data.zero_()


def build_engine(cfg: ToolR0Config, run: RunDir, in_process: bool = False) -> Engine:
    """The engine for `cfg`: in-process `RoleEngine` (stage-B sampling through vllm/openai when configured),
    or with `launch.mode: processes` a `launch.ProcessEngine` running each phase as a child (`in_process`
    forces the former: a stage-B child)."""
    if cfg.launch.mode == "processes" and not in_process:
        from toolr0.selfplay.launch import ProcessEngine

        return ProcessEngine(cfg, run)
    if cfg.inference.backend != "hf" and cfg.structured.enabled:
        raise ToolR0Error(
            f"structured decoding of candidates is wired for the hf backend only (inference.backend="
            f"{cfg.inference.backend}); set structured.enabled: false"
        )
    return RoleEngine(cfg, run)
