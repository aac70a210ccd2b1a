"""The role weights behind `engine.RoleEngine`, kept apart from its phase calls: which checkpoint each role's
weights hold in memory (`ensure`, adapter/model reloads), the sampler over them (hf in-process, or a vllm/openai
sampler over the checkpoint, with the managed server of `served.ServedSolver`), and the bookkeeping around a GRPO
phase (servers and inference engines torn down before it, the environment TRL's colocated engine set restored
after). See `engine.py`'s docstring for the whole picture.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from toolr0.config import ToolR0Config
from toolr0.errors import ToolR0Error
from toolr0.inference.base import Sampler
from toolr0.selfplay.rundir import RunDir
from toolr0.selfplay.served import ServedSolver

if TYPE_CHECKING:
    from toolr0.inference.server import ManagedServer
    from toolr0.inference.solver_service import SolverService
    from toolr0.training.roles import RoleModels

#: set by TRL's colocated vLLM engine (`vllm_mode: colocate`) in os.environ and never unset
COLOCATE_ENV = ("RANK", "LOCAL_RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT")


class RoleWeights:
    """The in-memory `RoleModels` and the samplers over it; `engine.RoleEngine` adds the loop's phase calls."""

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
            merge_lora=inf.merge_lora,
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

    def _models(self) -> RoleModels:
        if self.models is None:
            raise ToolR0Error("the role models are not loaded (ensure() first)")
        return self.models

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
