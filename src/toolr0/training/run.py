"""Train one role end to end: datasets, rewards, trainer, checkpoints/resume, final export, summary.

Public entry points (used by the CLI and by the self-play loop):
- `train_generator(cfg, out_dir, models=None, service=None, resume=False, ...) -> TrainResult`
- `train_solver(cfg, data, out_dir, models=None, resume=False, ...) -> TrainResult`
- `train_role(role, cfg, out_dir, ...)`: one of the two by name (`toolr0 train <role>`).
- `dry_run(role, cfg, out_dir) -> dict` — the resolved `GRPOConfig` arguments, without loading a model.

Each is a recipe (`training.recipes.GeneratorRecipe` / `SolverRecipe`: the role's own sections, dataset,
rewards and decoding hook) run by the one shared `fit(recipe, cfg, out_dir, ...)`: preflight, `GRPOConfig`,
resume point, weights, `GRPOTrainer`, `resolved.json`, training, `final/`, `summary.json`.

A role's run folder (`out_dir`) holds `checkpoints/checkpoint-N/` (TRL saves, completed by a marker),
`resolved.json` (every GRPOConfig argument, precision, reward names/weights, the full toolr0 config),
`metrics.jsonl` (one line per TRL log), `final/` (the role's adapter or model folder, written atomically)
and `summary.json`. `resume=True` restarts from the newest complete checkpoint with the same seeded data
order; without it, a folder that already has checkpoints is refused (no silent overwrite).
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from toolr0.core.seeds import seed_for
from toolr0.errors import ConfigError
from toolr0.io import append_jsonl, atomic_write_json
from toolr0.procmem import peak_rss_gb
from toolr0.training import checkpoint as ckpt
from toolr0.training import preflight
from toolr0.training.config import GRPORoleConfig
from toolr0.training.grpo import (
    LogitsProcessorFactory,
    build_grpo_config,
    build_trainer,
    cuda_available,
    grpo_config_kwargs,
    resolve_precision,
    world_size,
)
from toolr0.training.recipes import CurriculumData, Recipe, RoleInit, generator_recipe, solver_recipe
from toolr0.training.roles import Role, RoleModels

if TYPE_CHECKING:  # annotations only: the config tree sits above this layer (it assembles every section)
    from toolr0.config import ToolR0Config
    from toolr0.inference.solver_service import SolverService

log = logging.getLogger(__name__)

Echo = Callable[[str], None]


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


def fit(
    recipe: Recipe,
    cfg: ToolR0Config,
    out_dir: str | os.PathLike[str],
    *,
    models: RoleModels | None = None,
    resume: bool = False,
    init: RoleInit | None = None,
    callbacks: Sequence[Any] = (),
    echo: Echo | None = None,
    logits_processor_factory: LogitsProcessorFactory | None = None,
) -> TrainResult:
    """GRPO-train `recipe.role` (see module docstring): TRL's `GRPOConfig` and `GRPOTrainer` around what the
    recipe supplies (`training.recipes`). `cfg` is read here only for what no role owns: the model and roles
    to load, the master seed, the distributed preflight, and the whole tree for `resolved.json`.
    `models`: a `RoleModels` (loaded when None); `logits_processor_factory`: a constrained-decoding hook for
    TRL's generation (default: the recipe's)."""
    from toolr0.inference.device import resolve_device
    from toolr0.training.roles import load_role_models

    out, role, rc = Path(out_dir), recipe.role, recipe.grpo
    preflight.check_role(cfg, role, preflight.engine_from_env(), "accelerate launch")
    device = resolve_device(cfg.model.device)
    precision = resolve_precision(rc.precision, device=device)
    names, weights = _reward_names_weights(cfg, role)
    seed, run_name, ckpts = seed_for(cfg.seed, "train"), f"toolr0-{role}", out / "checkpoints"
    t_start = time.perf_counter()
    # The GRPOConfig comes first: it sets up the process group and, under DeepSpeed, the HfDeepSpeedConfig through
    # which from_pretrained partitions ZeRO-3 weights as they load (zero3_init_flag), instead of a full fp32
    # copy per rank. Then rank 0 alone picks the resume checkpoint and the others take its choice.
    args = build_grpo_config(
        rc,
        ckpts,
        reward_weights=weights,
        n_processes=world_size(),
        run_name=run_name,
        device=device,
        seed=seed,
    )
    resume_from = ckpt.resume_point(out, resume)
    if resume_from is not None and rc.save_only_model:
        log.warning(
            "%s: save_only_model checkpoints hold no optimizer/scheduler state: resume is not exact", role
        )
    recipe.prepare()  # the dataset (and a served frozen Solver) first: a bad input fails before a model loads
    if models is None:  # only the weights the phase uses
        models = load_role_models(
            cfg.model,
            cfg.roles,
            init=init,
            roles=recipe.roles_to_load(),
            training_precision=precision,
            seed=seed,
            device=device,
        )
    tokenizer = models.tokenizer
    dataset = recipe.dataset(tokenizer)
    longest = _check_prompt_lengths(dataset, tokenizer, rc.max_prompt_length)
    funcs = recipe.reward_funcs(models, args, device, init, out)

    out.mkdir(parents=True, exist_ok=True)
    trainer = build_trainer(
        models.model_for(role),
        tokenizer,
        dataset,
        funcs,
        rc,
        ckpts,
        reward_weights=weights,
        callbacks=[_MetricsCallbackFactory.make(out / "metrics.jsonl", echo), *callbacks],
        logits_processor_factory=logits_processor_factory or recipe.logits_processor_factory(tokenizer),
        run_name=run_name,
        device=device,
        seed=seed,
        args=args,
    )
    accelerator = trainer.accelerator
    n_processes = accelerator.num_processes  # the real count under accelerate/torchrun, not assumed 1
    kw = grpo_config_kwargs(
        rc,
        ckpts,
        reward_weights=weights,
        run_name=run_name,
        n_processes=n_processes,
        device=device,
        seed=seed,
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
    start_step = (ckpt.checkpoint_step(resume_from) or 0) if resume_from is not None else 0
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


def train_generator(
    cfg: ToolR0Config,
    out_dir: str | os.PathLike[str],
    *,
    service: SolverService | None = None,
    spec_seed: int | None = None,
    spec_start: int = 0,
    n_prompts: int | None = None,
    **fit_kwargs: Any,
) -> TrainResult:
    """Phase A: GRPO on the Generator with r_fmt, r_valid, r_curr. `service`: the frozen Solver for r_curr
    (None: behind `inference.base_url` for the openai / vllm backends, else in-process on the frozen Solver
    weights); `spec_seed` / `spec_start` / `n_prompts`: the sampled specs (default: the master seed, from 0,
    `loop.generator_prompts`). `fit_kwargs`: `fit`'s (models, resume, init, callbacks, echo, ...)."""
    recipe = generator_recipe(
        cfg, service=service, spec_seed=spec_seed, spec_start=spec_start, n_prompts=n_prompts
    )
    return fit(recipe, cfg, out_dir, **fit_kwargs)


def train_solver(
    cfg: ToolR0Config, data: CurriculumData, out_dir: str | os.PathLike[str], **fit_kwargs: Any
) -> TrainResult:
    """Phase C: GRPO on the Solver with r_fmt, r_acc over a curriculum (JSONL path or list of tasks)."""
    return fit(solver_recipe(cfg, data), cfg, out_dir, **fit_kwargs)


_GENERATOR_ONLY = ("service", "spec_seed", "spec_start", "n_prompts")


def train_role(role: Role, cfg: ToolR0Config, out_dir: str | os.PathLike[str], **kwargs: Any) -> TrainResult:
    """`train_generator` or `train_solver` by name (`toolr0 train <role>`): `data=` is the Solver's curriculum,
    the other keywords are the chosen function's."""
    if role == "solver":
        for key in _GENERATOR_ONLY:  # the CLI passes them for either role; unset they mean nothing here
            if kwargs.pop(key, None) not in (None, 0):
                raise ConfigError(f"{key} is the Generator's; solver training takes a curriculum (--data)")
        return train_solver(cfg, kwargs.pop("data", None), out_dir, **kwargs)  # type: ignore[arg-type]
    if kwargs.pop("data", None) is not None:
        raise ConfigError("generator training takes no curriculum (--data is the Solver's)")
    return train_generator(cfg, out_dir, **kwargs)
