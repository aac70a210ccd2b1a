"""Train one role end to end: datasets, rewards, trainer, checkpoints/resume, final export, summary.

Public entry points (used by the CLI and by the self-play loop):
- `train_generator(cfg, out_dir, models=None, service=None, resume=False, ...) -> TrainResult`
- `train_solver(cfg, data, out_dir, models=None, resume=False, ...) -> TrainResult`
- `dry_run(role, cfg, out_dir) -> dict` — the resolved `GRPOConfig` arguments, without loading a model.

A role's run folder (`out_dir`) holds `checkpoints/checkpoint-N/` (TRL saves, completed by a marker),
`resolved.json` (every GRPOConfig argument, precision, reward names/weights, the full toolr0 config),
`metrics.jsonl` (one line per TRL log), `final/` (the role's adapter or model folder, written atomically)
and `summary.json`. `resume=True` restarts from the newest complete checkpoint with the same seeded data
order; without it, a folder that already has checkpoints is refused (no silent overwrite).
"""

from __future__ import annotations

import logging
import os
import resource
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from toolr0.core.schema import Task
from toolr0.core.seeds import seed_for
from toolr0.core.solver_format import SolverFormat
from toolr0.errors import ConfigError
from toolr0.io import append_jsonl, atomic_write_json
from toolr0.training import checkpoint as ckpt
from toolr0.training import preflight
from toolr0.training.config import GRPORoleConfig
from toolr0.training.grpo import (
    LogitsProcessorFactory,
    build_grpo_config,
    build_trainer,
    cuda_available,
    grpo_config_kwargs,
    outside_zero3_init,
    resolve_precision,
    world_size,
)
from toolr0.training.roles import Role, RoleModels

if TYPE_CHECKING:  # annotations only: the config tree sits above this layer (it assembles every section)
    from toolr0.config import ToolR0Config
    from toolr0.inference.solver_service import SolverService

log = logging.getLogger(__name__)

Echo = Callable[[str], None]
RoleInit = dict[str, str | os.PathLike[str] | None]
CurriculumData = str | os.PathLike[str] | list[Task]


@dataclass
class TrainResult:
    """What one role's GRPO run did."""

    role: Role
    out_dir: str
    final_dir: str | None
    global_step: int
    start_step: int
    resumed_from: str | None
    seconds: float
    seconds_per_step: float | None
    peak_rss_gb: float
    precision: str
    log_history: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def peak_rss_gb() -> float:
    """Peak resident memory of this process so far (GB; Linux reports KiB)."""
    kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return kb * (1 if sys.platform != "darwin" else 1 / 1024) / 1e6


def _role_cfg(cfg: ToolR0Config, role: Role) -> GRPORoleConfig:
    return cfg.generator if role == "generator" else cfg.solver


def _reward_names_weights(cfg: ToolR0Config, role: Role) -> tuple[list[str], list[float]]:
    """The role's reward function names and weights, both from its declared terms (`core.rewards.terms`)."""
    from toolr0.training.reward_funcs import reward_names, reward_weights

    return reward_names(role), reward_weights(role, cfg.rewards)


def dry_run(
    role: Role,
    cfg: ToolR0Config,
    out_dir: str | os.PathLike[str],
    n_processes: int = 1,
    on_gpu: bool | None = None,
) -> dict[str, Any]:
    """Resolved GRPOConfig arguments and reward setup for `role`, without loading a model or dataset.

    `on_gpu` lets a CPU machine resolve a GPU config (e.g. the paper preset with vLLM); by default it is
    inferred from the config (use_vllm → GPU) and the hardware."""
    rc = _role_cfg(cfg, role)
    if on_gpu is None:
        gpu_recipe = rc.use_vllm or cfg.roles.mode == "full" or cfg.model.device.startswith("cuda")
        on_gpu = True if gpu_recipe else None
    names, weights = _reward_names_weights(cfg, role)
    kw = grpo_config_kwargs(
        rc,
        Path(out_dir) / "checkpoints",
        reward_weights=weights,
        n_processes=n_processes,
        on_gpu=on_gpu,
        run_name=f"toolr0-{role}",
        seed=seed_for(cfg.seed, "train"),
    )
    if kw["use_cpu"] or cuda_available():
        build_grpo_config(
            rc,
            Path(out_dir) / "checkpoints",
            reward_weights=weights,
            n_processes=n_processes,
            seed=kw["seed"],
        )
        validated = "GRPOConfig built by the installed TRL"
    else:
        validated = "not built: a GPU config on a host without CUDA (TRL refuses bf16/GPU here)"
    return {
        "role": role,
        "roles_mode": cfg.roles.mode,
        "model": cfg.model.name,
        "reward_functions": names,
        "processes": n_processes,
        "prompts_per_step": kw["generation_batch_size"] // kw["num_generations"],
        "completions_per_step": kw["generation_batch_size"],
        "max_prompt_length": "none (TRL 1.16 never truncates prompts)",
        "validation": validated,
        "grpo_config": kw,
    }


class _MetricsCallbackFactory:
    """Appends every TRL log dict (with the step) to `metrics.jsonl` and feeds an optional progress bar."""

    @staticmethod
    def make(path: Path, echo: Echo | None = None) -> Any:
        from transformers import TrainerCallback

        class MetricsCallback(TrainerCallback):
            def on_log(self, args, state, control, logs=None, **kwargs):  # noqa: ANN001
                if state.is_world_process_zero and logs:
                    append_jsonl(path, [{"step": state.global_step, "time": time.time(), **logs}])
                    if echo is not None and "reward" in logs:
                        keys = [k for k in logs if k.startswith("rewards/") and k.endswith("/mean")]
                        parts = [f"{k[8:-5]}={logs[k]:.3f}" for k in keys]
                        if "reward" in logs:
                            parts.insert(0, f"reward={logs['reward']:.3f}")
                        echo(f"step {state.global_step}/{state.max_steps}: " + " ".join(parts))
                return control

        return MetricsCallback()


def end_token_ids(tokenizer: Any, model: Any) -> tuple[int, ...]:
    """Token ids that end a completion (EOS of the tokenizer and of the generation config, and pad), as TRL
    tells a finished completion from one cut at `max_completion_length`."""
    ids: list[Any] = [getattr(tokenizer, "eos_token_id", None), getattr(tokenizer, "pad_token_id", None)]
    eos = getattr(getattr(model, "generation_config", None), "eos_token_id", None)
    ids.extend(eos if isinstance(eos, list | tuple) else [eos])
    return tuple(sorted({i for i in ids if isinstance(i, int)}))


def _check_prompt_lengths(dataset: Any, tokenizer: Any, max_prompt_length: int | None) -> int:
    """Longest prompt in tokens; TRL 1.16 never truncates, so `max_prompt_length` is only a guard."""
    longest = 0
    for row in dataset:
        if isinstance(row["prompt"], str):  # a prompt already rendered (native Solver format)
            ids = tokenizer(row["prompt"], add_special_tokens=False)["input_ids"]
        else:
            ids = tokenizer.apply_chat_template(row["prompt"], tokenize=True, add_generation_prompt=True)
        if isinstance(ids, dict):
            ids = ids["input_ids"]
        longest = max(longest, len(ids))
    if max_prompt_length is not None and longest > max_prompt_length:
        raise ConfigError(
            f"a training prompt has {longest} tokens > max_prompt_length {max_prompt_length} "
            "(TRL 1.16 never truncates; raise or unset max_prompt_length)"
        )
    return longest


def _structured_factory(cfg: ToolR0Config, tokenizer: Any) -> LogitsProcessorFactory | None:
    """The Generator's structured-decoding hook when `structured.enabled` (docs/structured_generation.md)."""
    if not getattr(cfg.structured, "enabled", False):
        return None
    from toolr0.inference import structured

    def factory(row_specs: list[Any]) -> Any:
        return structured.make_logits_processor(tokenizer, row_specs, cfg.structured, num_return_sequences=1)

    return factory


def train_role(
    role: Role,
    cfg: ToolR0Config,
    out_dir: str | os.PathLike[str],
    *,
    models: RoleModels | None = None,
    data: CurriculumData | None = None,
    service: SolverService | None = None,
    resume: bool = False,
    init: RoleInit | None = None,
    callbacks: Sequence[Any] = (),
    spec_seed: int | None = None,
    spec_start: int = 0,
    n_prompts: int | None = None,
    echo: Echo | None = None,
    logits_processor_factory: LogitsProcessorFactory | None = None,
) -> TrainResult:
    """GRPO-train `role` (see module docstring). `models`: a `RoleModels` (loaded from `cfg` when None);
    `data`: Solver curriculum (JSONL path or list of `Task`); `service`: frozen-Solver `SolverService` for the
    Generator's curriculum reward (built in-process on the frozen Solver adapter when None);
    `logits_processor_factory`: constrained-decoding hook for TRL's generation (default: the Generator's
    structured decoding when `cfg.structured.enabled`, none for the Solver)."""
    from toolr0.inference.device import resolve_device
    from toolr0.inference.hf import render_prompt
    from toolr0.training import data as tdata
    from toolr0.training import reward_funcs as rf
    from toolr0.training.roles import frozen_scope, load_role_models

    out = Path(out_dir)
    rc = _role_cfg(cfg, role)
    if role == "solver" and data is None:
        raise ConfigError("solver training needs a curriculum (--data curriculum.jsonl)")
    preflight.check_role(cfg, role, preflight.engine_from_env(), "accelerate launch")
    device = resolve_device(cfg.model.device)
    precision = resolve_precision(rc.precision, device=device)
    names, weights = _reward_names_weights(cfg, role)
    t_start = time.perf_counter()
    # The GRPOConfig comes first: it sets up the process group and, under DeepSpeed, the HfDeepSpeedConfig through
    # which from_pretrained partitions ZeRO-3 weights as they load (zero3_init_flag), instead of a full fp32
    # copy per rank. Then rank 0 alone picks the resume checkpoint and the others take its choice.
    args = build_grpo_config(
        rc, out / "checkpoints", reward_weights=weights, n_processes=world_size(), run_name=f"toolr0-{role}",
        device=device, seed=seed_for(cfg.seed, "train"),
    )
    resume_from = ckpt.resume_point(out, resume)
    if resume_from is not None and rc.save_only_model:
        log.warning("%s: save_only_model checkpoints hold no optimizer/scheduler state: resume is not exact", role)

    # Build the dataset first: a bad curriculum file fails before a model is loaded.
    if role == "generator":
        from toolr0.core.spec import load_spec_file

        dist = load_spec_file(cfg.spec_file)
        n = n_prompts or cfg.loop.generator_prompts
        seed = seed_for(cfg.seed, "train") if spec_seed is None else spec_seed
        dataset = tdata.generator_dataset(n, seed, cfg.prompts.generator_variant, dist, start=spec_start)
    else:
        solver_format = SolverFormat.from_config(cfg.prompts)
        tasks = data if isinstance(data, list) else tdata.load_tasks(data)
        if not solver_format.native:
            dataset = tdata.solver_dataset(tasks, cfg.prompts.solver_variant)

    # GPU recipe: the frozen Solver runs in its own vLLM server (OpenAI-compatible, inference.base_url).
    remote_solver = role == "generator" and service is None and cfg.inference.backend in ("openai", "vllm")
    if remote_solver:  # every rank checks the server before loading a model: an unreachable one fails now
        service = _remote_service(cfg)
        service.sampler.health_check()
    if models is None:
        # Only what the phase uses: the trained role, plus the Solver adapter that plays the frozen Solver in a
        # LoRA Generator phase (a full frozen Solver is loaded below or served); phase C needs no Generator.
        which = ("generator", "solver") if role == "generator" and cfg.roles.mode != "full" else (role,)
        models = load_role_models(
            cfg.model,
            cfg.roles,
            init=init,
            roles=which,
            training_precision=precision,
            seed=seed_for(cfg.seed, "train"),
            device=device,
        )
    tokenizer = models.tokenizer
    # a native Solver prompt is rendered with each task's own tools= (needs the tokenizer)
    if role == "solver" and solver_format.native:
        dataset = tdata.solver_dataset(
            tasks, cfg.prompts.solver_variant, solver_format, lambda m: render_prompt(tokenizer, m)
        )
    longest = _check_prompt_lengths(dataset, tokenizer, rc.max_prompt_length)

    max_failures = cfg.inference.service_max_failures
    if role == "generator":
        models.snapshot_for_frozen_solver()  # shared-weights ablation: the frozen Solver = phase-start snapshot
        # p̂ per step to p_hat.jsonl: the loop draws its histograms
        rkw: dict[str, Any] = {"max_failures": max_failures, "p_hat_path": out / "p_hat.jsonl"}
        if remote_solver:
            funcs = rf.generator_reward_funcs(cfg.rewards, service, **rkw)
        else:
            if service is None:
                if cfg.roles.mode == "full":
                    with outside_zero3_init(args):  # a whole frozen copy per rank, never partitioned
                        solver = _load_frozen_full_solver(cfg, init, device)
                    models.full_models.setdefault("solver", solver)
                service = _default_service(cfg, models)
            funcs = rf.generator_reward_funcs(cfg.rewards, service, scope=lambda: frozen_scope(models), **rkw)
    model = models.model_for(role)
    if role != "generator":
        funcs = rf.solver_reward_funcs(
            cfg.rewards, solver_format, rc.max_completion_length, end_token_ids(tokenizer, model)
        )

    out.mkdir(parents=True, exist_ok=True)
    trainer = build_trainer(
        model,
        tokenizer,
        dataset,
        funcs,
        rc,
        out / "checkpoints",
        reward_weights=weights,
        callbacks=[_MetricsCallbackFactory.make(out / "metrics.jsonl", echo), *callbacks],
        logits_processor_factory=logits_processor_factory
        or (_structured_factory(cfg, tokenizer) if role == "generator" else None),
        run_name=f"toolr0-{role}",
        device=device,
        seed=seed_for(cfg.seed, "train"),
        args=args,
    )
    accelerator = trainer.accelerator
    n_processes = accelerator.num_processes  # the real count under accelerate/torchrun, not assumed 1
    kw = grpo_config_kwargs(
        rc,
        out / "checkpoints",
        reward_weights=weights,
        run_name=f"toolr0-{role}",
        n_processes=n_processes,
        device=device,
        seed=seed_for(cfg.seed, "train"),
    )
    resolved = {
        "role": role,
        "device": device,
        "processes": n_processes,
        "distributed_type": str(accelerator.distributed_type).rsplit(".", 1)[-1],
        "precision": precision,
        "reward_functions": names,
        "reward_weights": kw["reward_weights"],
        "longest_prompt_tokens": longest,
        "dataset_rows": len(dataset),
        "resumed_from": str(resume_from) if resume_from else None,
        "grpo_config": kw,
        "toolr0_config": cfg.model_dump(mode="json"),
    }
    if accelerator.is_main_process:
        atomic_write_json(out / "resolved.json", resolved)
    log.info(
        "%s: %s × %d process(es), precision %s, longest prompt %d tokens, %d rows",
        role,
        device,
        n_processes,
        precision,
        longest,
        len(dataset),
    )
    start_step = 0
    if resume_from is not None:
        start_step = ckpt.checkpoint_step(resume_from) or 0
    t_train = time.perf_counter()
    trainer.train(resume_from_checkpoint=str(resume_from) if resume_from else None)
    train_seconds = time.perf_counter() - t_train
    steps_done = trainer.state.global_step - start_step

    final = ckpt.save_final(trainer, models, role, out / "final")
    result = TrainResult(
        role=role,
        out_dir=str(out),
        final_dir=str(final),
        global_step=trainer.state.global_step,
        start_step=start_step,
        resumed_from=str(resume_from) if resume_from else None,
        seconds=time.perf_counter() - t_start,
        seconds_per_step=train_seconds / steps_done if steps_done > 0 else None,
        peak_rss_gb=peak_rss_gb(),
        precision=precision,
        log_history=list(trainer.state.log_history),
    )
    if accelerator.is_main_process:
        atomic_write_json(out / "summary.json", result.to_dict())
    return result


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


def train_generator(cfg: ToolR0Config, out_dir: str | os.PathLike[str], **kwargs: Any) -> TrainResult:
    """Phase A: GRPO on the Generator with r_fmt, r_valid, r_curr (frozen Solver via the service)."""
    return train_role("generator", cfg, out_dir, **kwargs)


def train_solver(
    cfg: ToolR0Config, data: CurriculumData, out_dir: str | os.PathLike[str], **kwargs: Any
) -> TrainResult:
    """Phase C: GRPO on the Solver with r_fmt, r_acc over a curriculum (JSONL path or list of tasks)."""
    return train_role("solver", cfg, out_dir, data=data, **kwargs)
