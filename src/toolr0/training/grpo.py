"""Build TRL's `GRPOConfig` and `GRPOTrainer` for one role, with every knob set explicitly.

`grpo_config_kwargs` turns a `GRPORoleConfig` into the full keyword set passed to `GRPOConfig`, resolving
everything TRL would otherwise decide by itself (precision, generation batch size, ε_high, reward weights,
CPU vs GPU). It imports nothing heavy, so `toolr0 train ... --dry-run` prints it without loading a model.

Tested against TRL 1.16.0 (pinned). Version notes that change results if left implicit:
- TRL 1.16 has no `max_prompt_length`: prompts are never truncated (older releases cut at 512 tokens from the
  left, spec §10.8). On an older TRL that still has the field we pass None explicitly.
- `loss_type` defaults to "dapo" in TRL 1.16; we always pass ours ("grpo" for the paper).
- `per_device_train_batch_size` counts completions (TRL >= 0.18); TRL < 0.18 is refused.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from toolr0.errors import ConfigError
from toolr0.training.config import GRPORoleConfig

log = logging.getLogger(__name__)

TESTED_TRL = "1.16.0"

#: Called once per generation round with one `TaskSpec | None` per completion row (prompt-major, each
#: prompt repeated num_generations times); returns a transformers LogitsProcessor (or list) or None.
LogitsProcessorFactory = Callable[[list[Any]], Any]


def cuda_available() -> bool:
    from toolr0.inference.device import cuda_available as available

    return available()


def world_size() -> int:
    from toolr0.inference.device import world_size as size

    return size()


@contextlib.contextmanager
def outside_zero3_init(args: Any) -> Iterator[None]:
    """Load a model whole inside this block although `args` (a built GRPOConfig) set up ZeRO-3: transformers'
    from_pretrained partitions weights while the HfDeepSpeedConfig that TrainingArguments registers is alive,
    which suits the trained model but not a frozen model that no DeepSpeed engine will wrap."""
    from transformers.integrations import deepspeed as hf_ds

    live = getattr(args, "hf_deepspeed_config", None) or getattr(
        getattr(args, "deepspeed_plugin", None), "dschf", None
    )
    if live is None or not hf_ds.is_deepspeed_zero3_enabled():
        yield
        return
    hf_ds.unset_hf_deepspeed_config()
    try:
        yield
    finally:
        hf_ds.set_hf_deepspeed_config(live)


def training_device(device: str | None = None, on_gpu: bool | None = None) -> str:
    """The device a training run uses: `device` if given, else "cuda:0"/"cpu" for an explicit `on_gpu`
    (a dry run resolving a GPU config on a CPU host), else what `toolr0.inference.device` decides."""
    from toolr0.inference.device import resolve_device

    if device is not None:
        return device
    if on_gpu is not None:
        return "cuda:0" if on_gpu else "cpu"
    return resolve_device("auto")


def resolve_precision(pref: str, on_gpu: bool | None = None, device: str | None = None) -> str:
    """ "bf16" | "fp16" | "fp32" for a `precision` setting on the training device (logged when auto)."""
    from toolr0.inference.device import resolve_precision as decide

    return decide(pref, training_device(device, on_gpu))


def resolve_generation_batch(cfg: GRPORoleConfig, n_processes: int = 1) -> int:
    """Completions per generation round, checked against TRL's divisibility rules (one-line errors)."""
    per_step = cfg.per_device_train_batch_size * n_processes
    if cfg.generation_batch_size is not None:
        gbs = cfg.generation_batch_size
    elif cfg.steps_per_generation is not None:
        gbs = per_step * cfg.steps_per_generation
    else:
        gbs = per_step * cfg.gradient_accumulation_steps
    if gbs % cfg.num_generations:
        raise ConfigError(
            f"generation batch ({gbs} completions = per_device_train_batch_size × processes × "
            f"gradient_accumulation_steps) must be a multiple of num_generations ({cfg.num_generations})"
        )
    if gbs % per_step:
        raise ConfigError(
            f"generation_batch_size ({gbs}) must be a multiple of per_device_train_batch_size × processes "
            f"({per_step})"
        )
    return gbs


def check_trl() -> str:
    """TRL's version; refuses releases whose batch semantics differ (< 0.18), warns off the tested one."""
    import trl
    from packaging.version import Version

    v = Version(trl.__version__)
    if v < Version("0.18"):
        raise ConfigError(f"trl {trl.__version__} is too old (per-completion batch semantics need >= 0.18)")
    if str(v) != TESTED_TRL:
        log.warning("trl %s is untested (tested: %s); every knob is still passed explicitly", v, TESTED_TRL)
    return str(v)


def grpo_config_kwargs(
    cfg: GRPORoleConfig,
    output_dir: str | os.PathLike,
    *,
    reward_weights: Sequence[float] | None = None,
    n_processes: int = 1,
    on_gpu: bool | None = None,
    run_name: str | None = None,
    device: str | None = None,
    seed: int = 0,
) -> dict[str, Any]:
    """Every `GRPOConfig` argument for `cfg`, resolved (no TRL import: safe for dry runs). `device` (from
    `toolr0.inference.device.resolve_device`) decides `use_cpu` and the precision flags; `seed` (the config's
    master seed) drives model init and data order."""
    from toolr0.inference.device import is_cuda

    device = training_device(device, on_gpu)
    on_gpu = is_cuda(device)
    if cfg.use_vllm and not on_gpu:
        raise ConfigError("use_vllm needs a GPU (set use_vllm: false for CPU runs)")
    if cfg.use_vllm and cfg.vllm_mode == "server" and not cfg.vllm_server_base_url:
        log.info("vllm server mode without vllm_server_base_url: TRL uses host 0.0.0.0:8000")
    precision = resolve_precision(cfg.precision, device=device)
    weights = list(reward_weights) if reward_weights is not None else None
    gbs = resolve_generation_batch(cfg, n_processes)
    kw: dict[str, Any] = {
        "output_dir": str(output_dir),
        "run_name": run_name,
        # schedule and batches
        "learning_rate": cfg.learning_rate,
        "max_steps": cfg.max_steps,
        "per_device_train_batch_size": cfg.per_device_train_batch_size,
        "gradient_accumulation_steps": cfg.gradient_accumulation_steps,
        "num_generations": cfg.num_generations,
        "generation_batch_size": gbs,
        "num_iterations": cfg.num_iterations,
        "max_completion_length": cfg.max_completion_length,
        # objective
        "loss_type": cfg.loss_type,
        "beta": cfg.beta,
        "epsilon": cfg.epsilon,
        "epsilon_high": cfg.epsilon_high if cfg.epsilon_high is not None else cfg.epsilon,
        "delta": None,
        "scale_rewards": cfg.scale_rewards,
        "reward_weights": weights,
        "multi_objective_aggregation": "sum_then_normalize",
        "importance_sampling_level": "token",
        "top_entropy_quantile": 1.0,
        "mask_truncated_completions": cfg.mask_truncated_completions,
        "disable_dropout": False,
        # sampling
        "temperature": cfg.temperature,
        "top_p": cfg.top_p,
        "top_k": cfg.top_k,
        "min_p": cfg.min_p,
        "repetition_penalty": cfg.repetition_penalty,
        # optimizer and schedule
        "optim": cfg.optim,
        "adam_beta1": cfg.adam_beta1,
        "adam_beta2": cfg.adam_beta2,
        "adam_epsilon": cfg.adam_epsilon,
        "weight_decay": cfg.weight_decay,
        "lr_scheduler_type": cfg.lr_scheduler_type,
        "warmup_steps": cfg.warmup_steps,
        "max_grad_norm": cfg.max_grad_norm,
        # numerics and memory
        "bf16": precision == "bf16",
        "fp16": precision == "fp16",
        "use_cpu": not on_gpu,
        "gradient_checkpointing": cfg.gradient_checkpointing,
        "gradient_checkpointing_kwargs": {"use_reentrant": False} if cfg.gradient_checkpointing else None,
        # data order and reproducibility
        "seed": seed,
        "data_seed": seed,
        "shuffle_dataset": cfg.shuffle,
        "remove_unused_columns": False,
        "dataloader_num_workers": 0,
        # checkpoints and logging
        "save_strategy": "steps",
        "save_steps": cfg.save_steps,
        "save_total_limit": cfg.save_total_limit,
        # model-only saves are smaller but drop optimizer/scheduler/RNG: a resume is then not exact
        "save_only_model": cfg.save_only_model,
        "logging_strategy": "steps",
        "logging_steps": cfg.logging_steps,
        "log_completions": cfg.log_completions,
        "report_to": list(cfg.report_to) or "none",
        # generation backend
        "use_vllm": cfg.use_vllm,
        "vllm_mode": cfg.vllm_mode,
        "vllm_gpu_memory_utilization": cfg.vllm_gpu_memory_utilization,
        "vllm_tensor_parallel_size": cfg.vllm_tensor_parallel_size,
    }
    if cfg.vllm_server_base_url:
        kw["vllm_server_base_url"] = cfg.vllm_server_base_url
    return kw


def build_grpo_config(cfg: GRPORoleConfig, output_dir: str | os.PathLike, **kwargs: Any) -> Any:
    """A `trl.GRPOConfig` from `grpo_config_kwargs` (plus version guards)."""
    check_trl()
    from trl import GRPOConfig

    kw = grpo_config_kwargs(cfg, output_dir, **kwargs)
    fields = GRPOConfig.__dataclass_fields__
    if "max_prompt_length" in fields:  # older TRL: would truncate prompts from the left at 512 by default
        kw["max_prompt_length"] = cfg.max_prompt_length
    unknown = [k for k in kw if k not in fields]
    if unknown:
        raise ConfigError(f"installed trl lacks GRPOConfig fields {unknown} (tested with trl=={TESTED_TRL})")
    try:
        return GRPOConfig(**kw)
    except ValueError as exc:
        raise ConfigError(f"GRPOConfig: {str(exc).splitlines()[0]}") from None


def _trainer_class() -> type:
    from trl import GRPOTrainer

    class ToolR0GRPOTrainer(GRPOTrainer):
        """`GRPOTrainer` plus a structured-decoding hook and row-dropping decode for the transformers
        generation path.

        When `logits_processor_factory` is set, each generation round calls it with one spec per completion
        row (from the `spec_json` column) and passes the returned processor to `model.generate`. With vLLM,
        use `GRPORoleConfig`-level `vllm` guided decoding instead (see docs/training.md).
        """

        logits_processor_factory: LogitsProcessorFactory | None = None
        drop_finished_rows: bool = True  # rollouts: finished rows leave the batch (same tokens, fewer forwards)
        # loss forward: a prompt's completions packed behind one copy of it (same function; shared_prompt.py)
        share_prompt_forward: bool = True
        # rollouts: each distinct prompt prefilled once, its KV cache repeated for its G copies (same tokens)
        share_prompt_prefill: bool = True
        _row_specs: list[Any] | None = None

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            targs, model = kwargs["args"], kwargs["model"]
            beta = targs.beta
            base_reference = beta != 0.0 and _is_multi_adapter(model)
            if base_reference:  # TRL would copy an adapter named "default" as its reference: ours has none
                targs.beta = 0.0
            try:
                super().__init__(*args, **kwargs)
            finally:
                targs.beta = beta
            if base_reference:
                # No "ref" adapter, so TRL takes the reference log-probs with every adapter off: the base
                # model π₀, whichever iteration this is (docs/training.md).
                self.beta = beta

        def _load_optimizer_and_scheduler(self, checkpoint):  # noqa: ANN001 - transformers signature
            # Under CPU DDP transformers maps the optimizer state to args.device, an indexed "cpu:N" that
            # torch.load cannot restore to: load it on the CPU (the only place it can go there).
            if checkpoint is None or self.args.device.type != "cpu":
                return super()._load_optimizer_and_scheduler(checkpoint)
            import torch

            original = torch.load

            def load_on_cpu(*args, **kwargs):  # noqa: ANN002, ANN003
                kwargs["map_location"] = "cpu"
                return original(*args, **kwargs)

            torch.load = load_on_cpu
            try:
                return super()._load_optimizer_and_scheduler(checkpoint)
            finally:
                torch.load = original

        def _get_per_token_logps_and_entropies(  # noqa: ANN001, ANN202 - TRL signature
            self, model, input_ids, attention_mask, logits_to_keep, batch_size=None, compute_entropy=False,
            compute_aux_loss=False, **extra,
        ):
            from toolr0.training import shared_prompt as sp

            if self.share_prompt_forward and not compute_aux_loss and sp.can_pack(model, extra):
                with self.accelerator.autocast():
                    done = sp.shared_prompt_logps(  # TRL's forward count: ranks stay in step under ZeRO-3
                        model, input_ids, attention_mask, logits_to_keep, compute_entropy, batch_size
                    )
                if done is not None:
                    return done[0], done[1], None
            return super()._get_per_token_logps_and_entropies(
                model, input_ids, attention_mask, logits_to_keep, batch_size, compute_entropy, compute_aux_loss,
                **extra,
            )

        def _generate_and_score_completions(self, inputs):  # noqa: ANN001 - TRL signature
            if self.logits_processor_factory is not None:
                from toolr0.training.data import spec_of

                self._row_specs = [spec_of(x.get("spec_json")) for x in inputs]
            return super()._generate_and_score_completions(inputs)

        def _generate_single_turn(self, prompt_ids, *args, **kwargs):  # noqa: ANN001 - TRL signature
            # TRL's transformers rollout calls `model.generate()`; it is routed through our decode loop, which
            # drops finished rows (same tokens under a seed, inference/decode.py), plus the grammar processor.
            if self.use_vllm or getattr(self, "use_transformers_continuous_batching", False):
                return super()._generate_single_turn(prompt_ids, *args, **kwargs)
            procs: list[Any] = []
            if self.logits_processor_factory is not None:
                rows = self._row_specs
                specs = rows if rows and len(rows) == len(prompt_ids) else None
                processor = self.logits_processor_factory(specs or [None] * len(prompt_ids))
                if processor is not None:
                    procs = processor if isinstance(processor, list) else [processor]
            if not procs and not self.drop_finished_rows:
                return super()._generate_single_turn(prompt_ids, *args, **kwargs)
            from transformers import LogitsProcessorList

            from toolr0.inference.decode import generate_dropping, prefill_repeated

            target = self.accelerator.unwrap_model(self.model_wrapped)
            original = target.generate
            drop, share = self.drop_finished_rows, self.share_prompt_prefill

            def generate(*a: Any, **k: Any) -> Any:
                if procs:
                    k.setdefault("logits_processor", LogitsProcessorList(procs))
                if drop and not a and set(k) <= {"input_ids", "attention_mask", "generation_config", "logits_processor"}:
                    rest = {key: v for key, v in k.items() if key not in ("input_ids", "attention_mask")}
                    ids, mask = k["input_ids"], k["attention_mask"]
                    cache = prefill_repeated(target, ids, mask) if share else None
                    done = generate_dropping(target, ids, mask, cache=cache, **rest)
                    if done is not None:
                        return done[0]
                return original(*a, **k)

            target.generate = generate  # instance attribute shadows the method for this round only
            try:
                return super()._generate_single_turn(prompt_ids, *args, **kwargs)
            finally:
                del target.generate

    return ToolR0GRPOTrainer


def build_trainer(
    model: Any,
    tokenizer: Any,
    train_dataset: Any,
    reward_funcs: list[Callable[..., list[float]]],
    cfg: GRPORoleConfig,
    output_dir: str | os.PathLike,
    *,
    reward_weights: Sequence[float] | None = None,
    callbacks: Sequence[Any] = (),
    logits_processor_factory: LogitsProcessorFactory | None = None,
    n_processes: int | None = None,
    run_name: str | None = None,
    device: str | None = None,
    seed: int = 0,
    args: Any = None,
) -> Any:
    """THE one place a `GRPOTrainer` is built for a role: explicit `GRPOConfig`, our reward functions
    (each logged by TRL under `rewards/<name>/mean`), completion-marker checkpoints, optional structured
    decoding. `model` is a PeftModel with the role's adapter active, or a full model. `args`: the `GRPOConfig`
    already built for this run (`run.fit` builds it before loading models, as ZeRO-3 needs), else built here."""
    from toolr0.training.checkpoint import completion_callback

    if args is None:
        args = build_grpo_config(
            cfg,
            Path(output_dir),
            reward_weights=reward_weights,
            n_processes=world_size() if n_processes is None else n_processes,
            run_name=run_name,
            device=device,
            seed=seed,
        )
    if args.reward_weights is not None and len(args.reward_weights) != len(reward_funcs):
        raise ConfigError(
            f"reward_weights has {len(args.reward_weights)} entries but there are {len(reward_funcs)} reward functions"
        )
    cls = _trainer_class()
    trainer = cls(
        model=model,
        reward_funcs=list(reward_funcs),
        args=args,
        train_dataset=train_dataset,
        processing_class=tokenizer,
        callbacks=[completion_callback(), *callbacks],
    )
    trainer.logits_processor_factory = logits_processor_factory
    return trainer


def _is_multi_adapter(model: Any) -> bool:
    """A PEFT model whose adapters are not TRL's single "default" (our LoRA layout: "generator" and "solver")."""
    cfgs = getattr(model, "peft_config", None)
    return isinstance(cfgs, dict) and (len(cfgs) > 1 or "default" not in cfgs)
