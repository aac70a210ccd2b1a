"""Where each role's trainable parameters live (spec §1: Generator and Solver have separate weights).

Three layouts (`RolesConfig.mode`):
- `lora` (CPU default): ONE frozen base model carrying two LoRA adapters, "generator" and "solver"
  (PEFT multi-adapter). Training a role activates only its adapter; the other adapter's tensors have
  `requires_grad=False` and are not in the optimizer. The frozen Solver used for Generator rewards is the
  solver adapter, switched in temporarily by `frozen.frozen_scope` (which restores the trained adapter and every
  `requires_grad` flag afterwards, whatever the sampler did).
- `full` (GPU, paper): one full model per role, each its own folder; only the role being trained is loaded
  for training (the frozen Solver is served separately, e.g. by vLLM).
- `shared` (Table 3 ablation): one set of parameters plays both roles; the "frozen Solver" is a snapshot of
  the shared parameters taken at the start of the phase (`snapshot_for_frozen_solver`).

Checkpoints are per role: a LoRA adapter folder (`adapter_config.json` + weights) or a full model folder,
written to a temp folder and renamed into place.
"""

from __future__ import annotations

import copy
import logging
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from toolr0.errors import ConfigError
from toolr0.training.config import RolesConfig

log = logging.getLogger(__name__)

Role = Literal["generator", "solver"]
ROLES: tuple[Role, Role] = ("generator", "solver")
SNAPSHOT_ADAPTER = "frozen_snapshot"


def lora_config(rc: RolesConfig) -> Any:
    """The PEFT `LoraConfig` of one role's adapter (a fresh adapter equals π₀: PEFT zero-initialises B)."""
    from peft import LoraConfig

    return LoraConfig(
        r=rc.lora_r,
        lora_alpha=rc.lora_alpha,
        lora_dropout=rc.lora_dropout,
        target_modules=list(rc.lora_target_modules),
        bias=rc.lora_bias,
        task_type="CAUSAL_LM",
    )


@dataclass
class RoleModels:
    """The models behind both roles plus the tokenizer; see the module docstring for the three layouts."""

    roles_cfg: RolesConfig
    tokenizer: Any
    peft_model: Any | None = None  # lora / shared-lora: one PeftModel holding every adapter
    full_models: dict[str, Any] = field(default_factory=dict)  # full / shared-full: role -> model
    snapshot: Any | None = None  # shared-full: frozen copy used as the Solver during a phase

    @property
    def mode(self) -> str:
        return self.roles_cfg.mode

    # ------------------------------------------------------------------ names
    def adapter_name(self, role: Role) -> str | None:
        """The LoRA adapter that holds `role`'s parameters (None for full models)."""
        if self.peft_model is None:
            return None
        rc = self.roles_cfg
        if rc.mode == "shared":
            return rc.shared_adapter
        return rc.generator_adapter if role == "generator" else rc.solver_adapter

    def frozen_solver_adapter(self) -> str | None:
        """Adapter to use for the frozen Solver during Generator training (lora: the solver adapter;
        shared: the snapshot taken by `snapshot_for_frozen_solver`)."""
        if self.peft_model is None:
            return None
        if self.mode == "shared":
            return (
                SNAPSHOT_ADAPTER
                if SNAPSHOT_ADAPTER in self.peft_model.peft_config
                else self.adapter_name("solver")
            )
        return self.adapter_name("solver")

    # ------------------------------------------------------------------ access
    def model_for(self, role: Role) -> Any:
        """The trainable model for `role`, with only that role's parameters requiring grad."""
        if self.peft_model is not None:
            name = self.adapter_name(role)
            self.peft_model.set_adapter(name)  # marks only `name`'s LoRA tensors trainable
            for n, p in self.peft_model.named_parameters():
                p.requires_grad_(_is_adapter_param(n, name))
            return self.peft_model
        key = "shared" if self.mode == "shared" else role
        if key not in self.full_models:
            raise ConfigError(f"roles: no model loaded for {role!r} (mode {self.mode})")
        return self.full_models[key]

    def frozen_solver_model(self) -> Any:
        """Model used as the frozen Solver (the PeftModel for LoRA layouts: pair with `frozen_solver_adapter`)."""
        if self.peft_model is not None:
            return self.peft_model
        if self.mode == "shared":
            return self.snapshot if self.snapshot is not None else self.full_models["shared"]
        if "solver" not in self.full_models:
            raise ConfigError("roles: full mode: the frozen Solver is not loaded in this process")
        return self.full_models["solver"]

    def role_state(self, role: Role) -> dict[str, Any]:
        """Detached CPU copies of `role`'s trainable tensors (adapter tensors, or all weights)."""
        if self.peft_model is not None:
            name = self.adapter_name(role)
            return {
                n: p.detach().to("cpu").clone()
                for n, p in self.peft_model.named_parameters()
                if _is_adapter_param(n, name)
            }
        model = self.model_for(role)
        return {n: p.detach().to("cpu").clone() for n, p in model.named_parameters()}

    # ------------------------------------------------------------------ shared-weights ablation
    def snapshot_for_frozen_solver(self) -> None:
        """shared mode: copy the shared parameters into a frozen snapshot used as the Solver this phase."""
        if self.mode != "shared":
            return
        if self.peft_model is not None:
            pm = self.peft_model
            shared = self.roles_cfg.shared_adapter
            if SNAPSHOT_ADAPTER in pm.peft_config:
                pm.delete_adapter(SNAPSHOT_ADAPTER)
            pm.add_adapter(SNAPSHOT_ADAPTER, copy.deepcopy(pm.peft_config[shared]))
            params = dict(pm.named_parameters())
            for n, p in params.items():
                if f".{shared}." in n:
                    params[n.replace(f".{shared}.", f".{SNAPSHOT_ADAPTER}.")].data.copy_(p.data)
            pm.set_adapter(shared)
            for n, p in pm.named_parameters():
                p.requires_grad_(_is_adapter_param(n, shared))
        else:
            self.snapshot = copy.deepcopy(self.full_models["shared"]).eval()
            for p in self.snapshot.parameters():
                p.requires_grad_(False)

    # ------------------------------------------------------------------ saving
    def save_role(
        self, role: Role, dest: str | os.PathLike, state_dict: dict[str, Any] | None = None
    ) -> Path:
        """Atomically write `role`'s parameters to `dest` (adapter folder or full model folder) + tokenizer.
        `state_dict`: weights gathered from every rank (`checkpoint.save_final`) instead of this process's."""
        dest = Path(dest)
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}.", dir=dest.parent))
        try:
            if self.peft_model is not None:
                name = self.adapter_name(role)
                self.peft_model.save_pretrained(tmp, selected_adapters=[name], state_dict=state_dict)
                # PEFT writes non-"default" adapters into a subfolder named after the adapter: flatten it.
                sub = tmp / name
                if sub.is_dir():
                    for item in sub.iterdir():
                        os.replace(item, tmp / item.name)
                    sub.rmdir()
            else:
                self.model_for(role).save_pretrained(tmp, state_dict=state_dict)
            self.tokenizer.save_pretrained(tmp)
            _replace_dir(tmp, dest)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        return dest


def _is_adapter_param(param_name: str, adapter: str | None) -> bool:
    return adapter is not None and "lora_" in param_name and f".{adapter}." in param_name


def _replace_dir(src: Path, dest: Path) -> None:
    """Rename `src` onto `dest`; an existing `dest` is moved aside first and removed after."""
    old = None
    if dest.exists():
        old = dest.with_name(f".{dest.name}.old")
        shutil.rmtree(old, ignore_errors=True)
        os.replace(dest, old)
    os.replace(src, dest)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


# ---------------------------------------------------------------------------------------------- loading
def wrap_roles(
    model: Any,
    tokenizer: Any,
    roles_cfg: RolesConfig,
    init: dict[str, str | os.PathLike | None] | None = None,
    roles: tuple[str, ...] = ROLES,
    seed: int = 0,
) -> RoleModels:
    """Build `RoleModels` around an already loaded base model (used by tests and by `load_role_models`).

    `init[role]` is a previous checkpoint of that role (adapter folder for LoRA layouts) or None for a fresh
    start at π₀ (fresh LoRA adapters are zero-initialised in B, so they equal the base model).
    full mode: `model` is the model of the first role in `roles`; other roles are deep copies unless `init`
    names a folder (use `load_role_models` for that).
    """
    init = dict(init or {})
    rc = roles_cfg
    if rc.mode == "full" or (rc.mode == "shared" and not rc.shared_use_lora):
        keys = ["shared"] if rc.mode == "shared" else list(roles)
        full = {}
        for i, k in enumerate(keys):
            full[k] = model if i == 0 else copy.deepcopy(model)
            for p in full[k].parameters():
                p.requires_grad_(True)
        return RoleModels(roles_cfg=rc, tokenizer=tokenizer, full_models=full)

    import torch

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)  # fresh LoRA A matrices are random: make them a function of the seed
        return _wrap_lora(model, tokenizer, rc, init, roles)


def _wrap_lora(
    model: Any, tokenizer: Any, rc: RolesConfig, init: dict[str, Any], roles: tuple[str, ...]
) -> RoleModels:
    from peft import PeftModel, get_peft_model

    names = (
        [rc.shared_adapter]
        if rc.mode == "shared"
        else [rc.generator_adapter if r == "generator" else rc.solver_adapter for r in roles]
    )
    role_of = {rc.generator_adapter: "generator", rc.solver_adapter: "solver", rc.shared_adapter: "shared"}
    pm = model if isinstance(model, PeftModel) else None
    for name in names:
        src = init.get(role_of[name]) or (init.get("generator") if rc.mode == "shared" else None)
        if pm is not None and name in pm.peft_config:
            continue
        if src:
            if pm is None:
                pm = PeftModel.from_pretrained(model, str(src), adapter_name=name, is_trainable=True)
            else:
                pm.load_adapter(str(src), adapter_name=name, is_trainable=True)
        else:
            if pm is None:
                pm = get_peft_model(model, lora_config(rc), adapter_name=name)
            else:
                pm.add_adapter(name, lora_config(rc))
    rm = RoleModels(roles_cfg=rc, tokenizer=tokenizer, peft_model=pm)
    rm.model_for("generator" if "generator" in roles or rc.mode == "shared" else "solver")
    return rm


def load_role_models(
    model_cfg: Any,
    roles_cfg: RolesConfig,
    init: dict[str, str | os.PathLike | None] | None = None,
    roles: tuple[str, ...] = ROLES,
    training_precision: str = "fp32",
    seed: int = 0,
    device: str | None = None,
) -> RoleModels:
    """Load the base model (`model_cfg`: `toolr0.inference.config.ModelConfig`) and lay out the roles.

    LoRA layouts load the base in `model_cfg.dtype` (bf16 on capable CPUs; it stays frozen, the adapters are
    fp32). Full fine-tuning loads fp32 weights (bf16 is applied as autocast mixed precision when
    `training_precision` is bf16): pure-bf16 weights would swallow 1e-6 updates entirely.
    `device` (default: `model_cfg.device` resolved) is where the models go; under DeepSpeed/FSDP they stay on
    the CPU and the trainer places and shards them.
    """
    from toolr0.inference.device import distributed_engine, resolve_device
    from toolr0.inference.models import load_model_for

    device = "cpu" if distributed_engine() else (device or resolve_device(model_cfg.device))
    rc = roles_cfg
    init = dict(init or {})
    full = rc.mode == "full" or (rc.mode == "shared" and not rc.shared_use_lora)
    dtype = "fp32" if full else model_cfg.dtype
    if not full:
        model, tok = load_model_for(model_cfg, dtype=dtype, device=device)
        return wrap_roles(model, tok, rc, init=init, roles=roles, seed=seed)
    keys = ["shared"] if rc.mode == "shared" else list(roles)
    models: dict[str, Any] = {}
    tok = None
    for k in keys:
        src = init.get(k) or (init.get("generator") if k == "shared" else None) or model_cfg.name
        m, t = load_model_for(model_cfg, src, dtype=dtype, device=device)
        m.train()
        for p in m.parameters():
            p.requires_grad_(True)
        models[k] = m
        tok = tok or t
    log.info("roles: full fine-tuning, %s loaded in fp32 (training precision %s)", keys, training_precision)
    return RoleModels(roles_cfg=rc, tokenizer=tok, full_models=models)
