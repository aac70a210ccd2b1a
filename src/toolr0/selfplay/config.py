"""`loop` config section: counts and switches of the self-play loop (spec §2, §6, §11 ablations).

Pure pydantic, default-constructible; defaults are the paper's / reference code's values.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator


class LoopConfig(BaseModel):
    """Self-play loop: iterations, dataset-synthesis counts, filtering constants, the frozen-Generator ablation."""

    model_config = ConfigDict(extra="forbid")

    iterations: int = Field(3, ge=1, description="Self-play iterations N (paper: 3; reference script: 5).")

    # Phase A: Generator GRPO prompts (each a freshly sampled spec).
    generator_prompts: int = Field(
        2000, ge=1, description="Generator training prompts per iteration (each one fresh spec; spec §2)."
    )

    # Phase B.1: generation (spec §6.1).
    n_candidates: int = Field(10000, ge=0, description="Candidates generated per iteration (spec §6.1).")
    gen_batch_size: int = Field(
        256, ge=1, description="Prompts per generation batch (one JSONL append each)."
    )
    gen_temperature: float = Field(0.7, ge=0, description="Sampling temperature of the frozen Generator.")
    gen_top_p: float = Field(1.0, gt=0, le=1, description="Top-p of the frozen Generator.")
    gen_max_tokens: int = Field(4096, ge=1, description="Max new tokens per candidate.")

    # Phase B.1b: in-prompt references (not in the paper; 0 keeps the paper's Generator prompt).
    references: int = Field(
        0,
        ge=0,
        description="Earlier tasks of the Generator's own shown in each candidate prompt as earlier turns "
        "(core/references.py): verified call tasks of this and earlier iterations that the frozen Solver solved "
        "in a probe after their batch (pass@K, K = frozen_solver.k; p̂ >= 0.5, <= 40 words). A task lifted from a "
        "reference it was shown fails verification (copied_reference_*). 0: off, the paper's.",
    )

    # Phase B.2b: no-call tasks derived from call tasks (not in the paper; 0 keeps the paper's stage B).
    no_call_from_calls: float = Field(
        0.0,
        ge=0,
        le=1,
        description="Share of unique verified call tasks that also give a no-call task: the same question with "
        "its gold tools taken off the menu, gold [] (core/derive_no_call.py; skipped when a remaining tool "
        "takes every argument of a gold call). 0: off, the paper's.",
    )

    no_call_from_other_menus: float = Field(
        0.0,
        ge=0,
        le=1,
        description="Share of unique verified call tasks whose question, put with the whole menu of a call task "
        "of another domain, also gives a no-call task (gold []; core/derive_no_call.py; skipped when a tool there "
        "shares a gold tool's name or takes every argument of a gold call). 0: off, the paper's.",
    )

    # Phase B.4b: two-call tasks composed from solved one-call tasks (not in the paper; 0 keeps the paper's stage B).
    two_call_from_solved: int = Field(
        0,
        ge=0,
        description="Up to this many two-call tasks per iteration, each two one-call tasks the frozen Solver "
        "solved at least once (p̂ > 0) asked together with both tools on one menu, then given their own pass@K "
        "(core/compose_calls.py; needs curriculum.difficulty_source passk or both). 0: off, the paper's.",
    )

    # Phase B.3: cross-verification (spec §6.4).
    cross_verify: bool = Field(
        True,
        description="Run cross-verification with the frozen Solver (its settings: frozen_solver.verify).",
    )

    # Phase B.4: difficulty (spec §6.5, §11): source = curriculum.difficulty_source, sampling = frozen_solver.
    filter_batch_size: int = Field(
        64, ge=1, description="Tasks per cross-verification / pass@K batch (one JSONL append each)."
    )

    # Table 3 ablation (spec §11); the others are roles.mode: shared, rewards.difficulty_weight: 0 and
    # rewards.band_mode: hard.
    freeze_generator: bool = Field(
        False, description="Skip phase A: the base model generates every iteration."
    )

    # Solver training / robustness.
    min_curriculum: int = Field(
        1, ge=0, description="Skip Solver training (recorded with a reason) when fewer tasks were selected."
    )


class PhaseLaunch(BaseModel):
    """How one phase runs as a child process: processes, GPUs, nodes, accelerate config."""

    model_config = ConfigDict(extra="forbid")

    processes: int = Field(
        1, ge=1, description="Processes in all (accelerate --num_processes; one per GPU; stage B: 1)."
    )
    gpus: str | None = Field(
        None, description="CUDA_VISIBLE_DEVICES of the child, e.g. '0,1,2' (None: inherit)."
    )
    nodes: int = Field(1, ge=1, description="Machines (accelerate --num_machines; launch on every node).")
    accelerate_config: str | None = Field(
        None, description="accelerate config file, e.g. configs/accelerate/zero3.yaml (None: plain DDP)."
    )
    cpu: bool = Field(
        False,
        description="CPU processes: DDP over gloo (ACCELERATE_USE_CPU under accelerate's torchrun launcher).",
    )
    extra_args: list[str] = Field(
        default_factory=list,
        description="More `accelerate launch` arguments, e.g. ['--machine_rank', '0', '--main_process_ip', "
        "'10.0.0.1'].",
    )

    @field_validator("gpus", mode="before")
    @classmethod
    def _gpus_text(cls, v: object) -> object:
        return str(v) if isinstance(v, int) else v  # `--set launch.stage_b.gpus=3` reads as an int


class LaunchConfig(BaseModel):
    """`launch` section: run each phase in-process (default, as before) or as child processes."""

    model_config = ConfigDict(extra="forbid")

    mode: Literal["in_process", "processes"] = Field(
        "in_process",
        description="in_process: every phase in the loop's process; processes: each GRPO phase as a child "
        "`accelerate launch ... toolr0 train ...` and stage B as a child `toolr0 selfplay --stage-b`.",
    )
    generator: PhaseLaunch = Field(default_factory=PhaseLaunch, description="Phase A (Generator GRPO).")
    stage_b: PhaseLaunch = Field(default_factory=PhaseLaunch, description="Stage B (one process).")
    solver: PhaseLaunch = Field(default_factory=PhaseLaunch, description="Phase C (Solver GRPO).")
    main_process_port: int | None = Field(
        None, ge=0, le=65535, description="accelerate --main_process_port (None: accelerate's default)."
    )

    @model_validator(mode="after")
    def _stage_b_is_one_process(self) -> LaunchConfig:
        if self.stage_b.processes != 1 or self.stage_b.nodes != 1:
            raise ValueError("launch.stage_b runs as one process on one node (processes: 1, nodes: 1)")
        return self


def gpu_ids(gpus: str | None) -> list[str]:
    """The ids of a CUDA_VISIBLE_DEVICES string ('0,1,2' -> ['0', '1', '2']; None -> [])."""
    return [g.strip() for g in (gpus or "").split(",") if g.strip()]


def is_multi_gpu(launch: LaunchConfig) -> bool:
    """A launch plan whose GRPO phases use several GPUs (processes mode, a GPU phase of several processes
    or GPUs)."""
    if launch.mode != "processes":
        return False
    return any(
        not pl.cpu and (pl.processes > 1 or len(gpu_ids(pl.gpus)) > 1) for pl in (launch.generator, launch.solver)
    )


def server_gpu_problem(launch: LaunchConfig, server_gpus: str | None) -> str | None:
    """Why a managed Solver server's GPU set collides with phase A's training GPUs on a multi-GPU plan (the
    server runs beside the Generator's training), else None. An unset set inherits every GPU: vLLM then
    takes GPU 0, which a training rank also uses."""
    if not is_multi_gpu(launch):
        return None
    if server_gpus is None:
        return (
            "server.gpus is unset on a multi-GPU launch plan: the managed Solver server would inherit every GPU "
            "and take GPU 0 beside a training rank; give it GPUs outside launch.generator.gpus, e.g. "
            "server.gpus: '3' with launch.generator.gpus: '0,1,2'"
        )
    if launch.generator.gpus is None and not launch.generator.cpu:
        return (
            "launch.generator.gpus is unset on a multi-GPU launch plan with a managed Solver server: phase A "
            f"would inherit every GPU, the server's ({server_gpus}) included; list the training GPUs"
        )
    shared = [g for g in gpu_ids(server_gpus) if g in gpu_ids(launch.generator.gpus)]
    if shared and not launch.generator.cpu:
        return (
            f"server.gpus {server_gpus} overlaps launch.generator.gpus {launch.generator.gpus} "
            f"(GPU {','.join(shared)}): the Solver server runs beside the Generator's training"
        )
    return None
