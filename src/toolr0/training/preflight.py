"""Distributed set-ups refused before a model loads (pure: no torch, TRL or DeepSpeed import).

Which engine shards the trained model comes from an accelerate config file (a `launch` phase's
`accelerate_config`, checked when the config is validated) or, inside a process started by `accelerate launch`,
from the environment it sets (checked by `training.run.fit`). Two pairs cannot work:
- `save_only_model: true` under DeepSpeed: transformers resumes a DeepSpeed run through
  `deepspeed_load_checkpoint`, which needs the `global_step*` folder that a weights-only save does not write, so
  `--resume` fails (not merely "inexact").
- ZeRO-3 (or FSDP) with the frozen Solver decoded in-process (`inference.backend: hf`) on the trained model's
  own parameters (`roles.mode: lora` or `shared`): HF generate runs inside the reward function on a sharded
  model, every forward gathers parameters on every rank, and ranks decode different lengths: a deadlock.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from toolr0.core.yamlfile import parse_yaml, read_user_file
from toolr0.errors import ConfigError

#: (engine, ZeRO stage): ("deepspeed", 0-3), ("fsdp", None) or (None, None) for plain DDP / one process.
Engine = tuple[str | None, int | None]


def _stage_of(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _deepspeed_json_stage(path: str | os.PathLike[str]) -> int | None:
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    zero = data.get("zero_optimization") if isinstance(data, dict) else None
    return _stage_of(zero.get("stage")) if isinstance(zero, dict) else None


def engine_of_accelerate_file(path: str | os.PathLike[str]) -> Engine:
    """The engine an accelerate config file sets up; (None, None) for DDP, a single process or a missing file
    (launching reports that one)."""
    if not Path(path).is_file():
        return None, None
    data = parse_yaml(read_user_file(path, "accelerate config"), str(path))
    if not isinstance(data, dict):
        return None, None
    kind = str(data.get("distributed_type", "")).upper()
    if kind == "DEEPSPEED":
        ds = data.get("deepspeed_config") or {}
        stage = _stage_of(ds.get("zero_stage"))
        if stage is None and ds.get("deepspeed_config_file"):
            stage = _deepspeed_json_stage(ds["deepspeed_config_file"])
        return "deepspeed", stage
    if kind == "FSDP":
        return "fsdp", None
    return None, None


def engine_from_env(environ: Mapping[str, str] | None = None) -> Engine:
    """The engine `accelerate launch` set up for this process (its ACCELERATE_* variables)."""
    env = os.environ if environ is None else environ
    if env.get("ACCELERATE_USE_DEEPSPEED", "").lower() in ("true", "1", "yes"):
        stage = _stage_of(env.get("ACCELERATE_DEEPSPEED_ZERO_STAGE"))
        if stage is None and env.get("ACCELERATE_DEEPSPEED_CONFIG_FILE"):
            stage = _deepspeed_json_stage(env["ACCELERATE_DEEPSPEED_CONFIG_FILE"])
        return "deepspeed", stage
    if env.get("ACCELERATE_USE_FSDP", "").lower() in ("true", "1", "yes"):
        return "fsdp", None
    return None, None


def sharded(engine: Engine) -> bool:
    """Parameters partitioned across ranks (ZeRO-3, FSDP): every forward gathers them on every rank."""
    kind, stage = engine
    return kind == "fsdp" or (kind == "deepspeed" and stage == 3)


def check_role(cfg: Any, role: str, engine: Engine, where: str = "") -> None:
    """Refuse the set-ups of the module docstring for `role` trained under `engine` (one-line `ConfigError`);
    `cfg` is a `ToolR0Config`, `where` names where the engine came from."""
    kind, _ = engine
    at = f" ({where})" if where else ""
    rc = cfg.generator if role == "generator" else cfg.solver
    if kind == "deepspeed" and rc.save_only_model:
        raise ConfigError(
            f"{role}.save_only_model: true under DeepSpeed{at} makes --resume impossible (transformers resumes "
            "DeepSpeed from the global_step* folder a weights-only save lacks): set it false"
        )
    in_process_solver = cfg.inference.backend == "hf" and cfg.roles.mode in ("lora", "shared")
    if role == "generator" and sharded(engine) and in_process_solver:
        raise ConfigError(
            f"roles.mode {cfg.roles.mode} with inference.backend hf under ZeRO-3/FSDP{at}: the frozen Solver "
            "would decode with HF generate on the sharded trained model inside the reward, and ranks decoding "
            "different lengths deadlock; serve the Solver (inference.backend openai) or use roles.mode full"
        )


def check_launch(cfg: Any) -> None:
    """`check_role` for each GRPO phase that `launch.mode: processes` runs under an accelerate config file."""
    if cfg.launch.mode != "processes":
        return
    for role in ("generator", "solver"):
        path = getattr(cfg.launch, role).accelerate_config
        if path:
            check_role(cfg, role, engine_of_accelerate_file(path), f"launch.{role}.accelerate_config {path}")
