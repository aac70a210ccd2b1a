"""Config sections owned by the training layer: `roles` (how the two roles' parameters are laid out) and
`generator` / `solver` (`GRPORoleConfig`: every GRPO knob, reference-run values as defaults, spec §8.1/§11).

Pure pydantic (no torch/TRL import) so `toolr0.config` and the CLI can validate configs cheaply. Nothing is
left to a TRL default: `toolr0.training.grpo.build_grpo_config` passes every field below explicitly.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator


class RolesConfig(BaseModel):
    """Where each role's trainable parameters live (spec §1: the two roles have separate weights)."""

    model_config = ConfigDict(extra="forbid")

    mode: Literal["lora", "full", "shared"] = Field(
        "lora",
        description="lora: one frozen base + one LoRA adapter per role (CPU default, fits 24 GiB); "
        "full: full fine-tune, one model folder per role (GPU, paper); "
        "shared: the paper's shared-weights ablation, one set of parameters plays both roles "
        "(LoRA on a frozen base when shared_use_lora, else full).",
    )
    shared_use_lora: bool = Field(
        True, description="shared mode: train one LoRA adapter (True) or the full model."
    )
    generator_adapter: str = Field("generator", description="Name of the Generator's LoRA adapter.")
    solver_adapter: str = Field("solver", description="Name of the Solver's LoRA adapter.")
    shared_adapter: str = Field("shared", description="Name of the single adapter in shared mode.")
    lora_r: int = Field(16, ge=1, description="LoRA rank.")
    lora_alpha: int = Field(32, ge=1, description="LoRA alpha (scaling = alpha / r).")
    lora_dropout: float = Field(0.0, ge=0.0, lt=1.0, description="LoRA dropout.")
    lora_target_modules: list[str] = Field(
        default_factory=lambda: ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"],
        description="Module names that get LoRA weights (all attention and MLP projections).",
    )
    lora_bias: Literal["none", "all", "lora_only"] = Field("none", description="PEFT bias setting.")


class GRPORoleConfig(BaseModel):
    """Every GRPO knob for one role, defaults = the reference run (spec §8.1) / our best reading (spec §11).

    Batch semantics are TRL >= 0.18 / 1.16: `per_device_train_batch_size` counts COMPLETIONS per device per
    micro-step; one generation batch = per_device × processes × grad-accum completions = prompts × N_gen.
    """

    model_config = ConfigDict(extra="forbid")

    # schedule and batch arithmetic
    learning_rate: float = Field(1e-6, gt=0, description="Peak learning rate (reference 1e-6).")
    max_steps: int = Field(50, ge=1, description="Optimizer steps per phase (reference 50).")
    per_device_train_batch_size: int = Field(
        2, ge=1, description="Completions per device per micro-step (TRL >= 0.18 semantics; reference 2)."
    )
    gradient_accumulation_steps: int = Field(
        4, ge=1, description="Micro-steps per optimizer step (reference 4)."
    )
    num_generations: int = Field(
        4, ge=2, description="Group size N_gen: completions per prompt (reference 4)."
    )
    generation_batch_size: int | None = Field(
        None,
        ge=1,
        description="Completions per generation round (must be a multiple of num_generations). "
        "None: per_device × processes × grad-accum, resolved and logged explicitly at build time.",
    )
    steps_per_generation: int | None = Field(
        None, ge=1, description="Alternative to generation_batch_size (None: = gradient_accumulation_steps)."
    )
    num_iterations: int = Field(1, ge=1, description="PPO epochs per generation batch (1 = on-policy).")
    max_completion_length: int = Field(
        2048, ge=1, description="Max new tokens per completion (reference 2048)."
    )
    max_prompt_length: int | None = Field(
        None,
        description="TRL 1.16 has no prompt truncation: prompts are never truncated. Kept only as a guard: if "
        "set, a prompt longer than this raises a ConfigError instead of being silently cut (spec §10.8).",
    )

    # objective
    loss_type: Literal["grpo", "dr_grpo", "dapo", "bnpo"] = Field(
        "grpo", description="GRPO loss aggregation; TRL 1.16 defaults to dapo, the paper uses grpo."
    )
    beta: float = Field(0.0, ge=0.0, description="KL coefficient (0: no reference model; LoRA layouts: the base with adapters off).")
    epsilon: float = Field(0.2, gt=0.0, description="Lower clip range ε_low.")
    epsilon_high: float | None = Field(None, gt=0.0, description="Upper clip range ε_high (None: = epsilon).")
    scale_rewards: Literal["group", "batch", "none"] = Field(
        "group", description="Advantage scaling: group = divide by the group's reward std (reference)."
    )
    mask_truncated_completions: bool = Field(
        False, description="Exclude truncated completions from the loss."
    )

    # sampling
    temperature: float = Field(1.0, gt=0.0, description="Rollout sampling temperature.")
    top_p: float = Field(1.0, gt=0.0, le=1.0, description="Rollout nucleus sampling.")
    top_k: int = Field(0, ge=0, description="Rollout top-k (0: disabled).")
    min_p: float | None = Field(None, ge=0.0, le=1.0, description="Rollout min-p (None: disabled).")
    repetition_penalty: float = Field(1.0, gt=0.0, description="Rollout repetition penalty (1.0: none).")

    # optimizer and schedule
    optim: str = Field("adamw_torch", description="transformers optimizer name (AdamW).")
    adam_beta1: float = Field(0.9, ge=0.0, lt=1.0)
    adam_beta2: float = Field(0.999, ge=0.0, lt=1.0)
    adam_epsilon: float = Field(1e-8, gt=0.0)
    weight_decay: float = Field(0.0, ge=0.0)
    lr_scheduler_type: str = Field("linear", description="transformers LR scheduler name.")
    warmup_steps: int = Field(0, ge=0)
    max_grad_norm: float = Field(1.0, gt=0.0)

    # numerics and memory
    precision: Literal["auto", "bf16", "fp16", "fp32"] = Field(
        "auto", description="auto: bf16 on a GPU with bf16 or a CPU with AMX/AVX512-BF16, else fp32 (logged)."
    )
    gradient_checkpointing: bool = Field(True, description="Activation checkpointing (TRL 1.16 default on).")

    # data order (the seed is the config's master `seed`, toolr0.core.seeds)
    shuffle: bool = Field(True, description="Shuffle the training prompts (off for easy_to_hard curricula).")

    # checkpoints and logging
    save_steps: int = Field(2, ge=1, description="Save a checkpoint every N optimizer steps (reference 2).")
    save_total_limit: int | None = Field(
        None,
        ge=1,
        description="Keep only the newest N checkpoints (None: keep all; the paper preset keeps 2).",
    )
    save_only_model: bool = Field(
        False,
        description="Checkpoints hold the weights only (no optimizer, scheduler or RNG state: several times "
        "smaller for full fine-tuning with AdamW); without DeepSpeed a resume then restarts the optimizer and is "
        "not exact; under DeepSpeed it is refused (resume needs the global_step* folder it does not write).",
    )
    logging_steps: int = Field(1, ge=1, description="Log every N optimizer steps (reference 1).")
    log_completions: bool = Field(
        False, description="Print/log a table of sampled completions each log step."
    )
    report_to: list[str] = Field(default_factory=list, description='Trackers, e.g. ["tensorboard"].')

    # generation backends
    use_vllm: bool = Field(False, description="Generate rollouts with vLLM (GPU only).")
    vllm_mode: Literal["server", "colocate"] = Field(
        "colocate", description="server: a separate `trl vllm-serve` process; colocate: in the trainer."
    )
    vllm_server_base_url: str | None = Field(None, description="vllm server mode: base URL of the server.")
    vllm_gpu_memory_utilization: float = Field(
        0.3, gt=0.0, le=1.0, description="vllm colocate: memory share."
    )
    vllm_tensor_parallel_size: int = Field(1, ge=1, description="vllm colocate: tensor-parallel size.")

    @model_validator(mode="before")
    @classmethod
    def _removed_reward_weights(cls, data: Any) -> Any:
        if isinstance(data, dict) and "reward_weights" in data:
            raise ValueError(
                "reward_weights was removed: set the weights in the rewards section "
                "(rewards.generator_*_weight / rewards.solver_*_weight)"
            )
        return data

    @model_validator(mode="after")
    def _check(self) -> GRPORoleConfig:
        if self.generation_batch_size is not None and self.steps_per_generation is not None:
            raise ValueError("set at most one of generation_batch_size and steps_per_generation")
        if self.generation_batch_size is not None and self.generation_batch_size % self.num_generations:
            raise ValueError(
                f"generation_batch_size ({self.generation_batch_size}) must be a multiple of "
                f"num_generations ({self.num_generations})"
            )
        return self

