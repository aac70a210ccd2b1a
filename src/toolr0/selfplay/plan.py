"""`--dry-run` plan: the stages of every iteration, their counts and a rough cost estimate, with no model.

`memory_layouts` (in `memory.py`) adds a per-GPU memory estimate of each training phase.

Costs come from a few per-token constants (measured on the 2-core CPU development machine for the 0.5B
default model, see docs/models.md and bench/RESULTS.md; GPU numbers are order-of-magnitude guesses) scaled
linearly with the parameter count. Treat the estimate as ±3×: it exists to catch a preset that would take
days instead of minutes, not to schedule a cluster.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from toolr0.config import ToolR0Config
from toolr0.selfplay.memory import (  # the memory estimate has its own module; importable from here too
    LORA_SHARE_PER_RANK,
    MemoryRow,
    memory_estimate,
    memory_layouts,
    memory_lines,
    model_billions,
)

__all__ = ["LORA_SHARE_PER_RANK", "MemoryRow", "memory_estimate", "memory_layouts", "memory_lines", "model_billions"]

# Rates of the 0.5B default model in fp32 on the 2-core AVX2 development machine (oneDNN decode matmuls, 2 threads),
# fitted to the stage times of whole runs at main ac8b386: the quickstart (bench/RESULTS.md, "Quickstart before /
# after, issue 15's whole set of changes") and one `cpu` iteration (RESULTS.md, "native format, v2");
# tests/test_selfplay_rundir.py pins the plan to those measurements.
CPU_SAMPLE_TOK_S = 30.0  # generated tokens/s summed over a sampler batch (24 candidates, K samples × tasks)
CPU_ROLLOUT_TOK_S = 13.0  # generated tokens/s of a GRPO rollout (one micro-batch of a few rows)
CPU_PREFILL_TOK_S = 150.0  # prompt tokens/s of a forward pass
# positions/s of the GRPO loss forward + backward (packed shared prompt, activation checkpointing)
CPU_TRAIN_TOK_S = 35.0
# A CPU with AMX / AVX512-BF16 runs bf16; it ran the quickstart's stages 2.3-3.0x faster than fp32 on an
# AVX2-only CPU at the time (bench/RESULTS.md, "AVX2-only CPU"); bf16 rates = fp32 rates × this factor.
CPU_FP32_SLOWDOWN = 2.2
GPU_DECODE_TOK_S = 4000.0  # vLLM, one GPU (guess)
GPU_PREFILL_TOK_S = 40000.0  # (guess)
GPU_TRAIN_TOK_S = 20000.0  # one GPU, bf16 (guess)
# typical lengths in tokens of the default model's tokenizer (measured on the quickstart's tasks, 2026-12-03):
# completions run to ~80 % of their limit up to these caps (candidates: 260 of 320, 324 of 448); a Solver GRPO
# rollout to ~80 % of its limit whatever the cap (the cpu run's Solver drifted to 140-160 of 192 tokens)
TYP_GEN_TOKENS = 330
TYP_SOLVER_TOKENS = 100
TYP_GEN_PROMPT = {"reference": 520, "compact": 490, "compact_named": 300, "compact_noexample": 250}
# the menu in the chat template's tools= (native) vs as JSON in the user turn (reference)
TYP_SOLVER_PROMPT = {"native": 360, "reference": 440}
# assumed acceptance of each filter (dry-run only; real runs record measured rates)
ASSUMED_PASS = {"verify": 0.3, "dedup": 0.9, "cross_verify": 0.5, "difficulty": 0.6}


@dataclass
class PlanRow:
    iteration: int
    stage: str
    count: str
    tokens: int
    seconds: float
    note: str = ""


def uses_gpu(cfg: ToolR0Config) -> bool:
    return cfg.inference.backend in ("vllm", "openai") or cfg.generator.use_vllm


@dataclass(frozen=True)
class Rates:
    """Tokens per second of one engine on one machine for the model at hand."""

    sample: float  # batched sampling, generated tokens summed over the batch
    rollout: float  # GRPO rollout micro-batch
    prefill: float  # prompt tokens through a forward pass
    train: float  # positions through the loss forward + backward

    def seconds(self, sample: float = 0, rollout: float = 0, prefill: float = 0, train: float = 0) -> float:
        return sample / self.sample + rollout / self.rollout + prefill / self.prefill + train / self.train


def _rates(cfg: ToolR0Config, cpu_bf16: bool) -> Rates:
    scale = max(model_billions(cfg.model.name), 0.01) / 0.5
    if uses_gpu(cfg):
        return Rates(
            *(r / scale for r in (GPU_DECODE_TOK_S, GPU_DECODE_TOK_S, GPU_PREFILL_TOK_S, GPU_TRAIN_TOK_S))
        )
    speed = (CPU_FP32_SLOWDOWN if cpu_bf16 else 1.0) / scale
    return Rates(
        *(r * speed for r in (CPU_SAMPLE_TOK_S, CPU_ROLLOUT_TOK_S, CPU_PREFILL_TOK_S, CPU_TRAIN_TOK_S))
    )


def _gen_prompt_tokens(cfg: ToolR0Config) -> int:
    return TYP_GEN_PROMPT.get(
        str(getattr(cfg.prompts, "generator_variant", "reference")), TYP_GEN_PROMPT["reference"]
    )


def _solver_prompt_tokens(cfg: ToolR0Config) -> int:
    return TYP_SOLVER_PROMPT.get(
        str(cfg.prompts.solver_format), TYP_SOLVER_PROMPT["reference"]
    )


def _typical(limit: int, cap: float = math.inf) -> int:
    """Typical completion length under a token limit: ~80 % of it, at most ``cap``."""
    return int(min(0.8 * limit, cap))


def build_plan(cfg: ToolR0Config, cpu_bf16: bool = True) -> list[PlanRow]:
    """One row per stage per iteration, with expected counts under the assumed filter rates; ``cpu_bf16`` False
    (a CPU without AMX/AVX512-BF16, which runs fp32) uses the fp32 rates, ``CPU_FP32_SLOWDOWN`` slower.

    Each sampling stage costs its generated tokens at the batched rate plus one prefill per prompt (the K samples
    of a task share theirs); each GRPO step its rollout, one prompt prefill per group, the frozen Solver's K
    samples (phase A) and the loss forward + backward over completions and one prompt per group."""
    lp = cfg.loop
    rate = _rates(cfg, cpu_bf16)
    ss = cfg.frozen_solver  # the same K samples per task in phase A's r_diff and stage B's pass@K
    solver_tok = _typical(ss.max_tokens, TYP_SOLVER_TOKENS)
    gen_tok = _typical(cfg.generator.max_completion_length, TYP_GEN_TOKENS)
    cand_tok = _typical(lp.gen_max_tokens, TYP_GEN_TOKENS)
    sol_tok = _typical(cfg.solver.max_completion_length)
    gen_prompt, solver_prompt = _gen_prompt_tokens(cfg), _solver_prompt_tokens(cfg)
    n_final = int(getattr(cfg.curriculum, "n_final", 2000))
    # training processes per GRPO phase (launch.mode processes): completions per step scale with them
    procs = {
        ph: getattr(cfg.launch, ph).processes if cfg.launch.mode == "processes" else 1
        for ph in ("generator", "solver")
    }
    rows: list[PlanRow] = []
    for t in range(1, lp.iterations + 1):
        g = cfg.generator
        if lp.freeze_generator:
            rows.append(PlanRow(t, "A generator GRPO", "skipped", 0, 0.0, "freeze_generator"))
        else:
            comps = g.max_steps * g.per_device_train_batch_size * g.gradient_accumulation_steps * procs["generator"]
            groups = comps // max(1, g.num_generations)
            decode = comps * gen_tok
            # frozen-Solver pass rates for r_curr: K samples per completion (upper bound: every task valid)
            solver_q = comps * ss.k * solver_tok
            # the loss forward runs each prompt once per group of num_generations (training/shared_prompt.py)
            train = comps * gen_tok + groups * gen_prompt
            secs = rate.seconds(
                rollout=decode,
                sample=solver_q,
                prefill=groups * gen_prompt + comps * solver_prompt,
                train=train,
            ) / procs["generator"]
            rows.append(
                PlanRow(
                    t,
                    "A generator GRPO",
                    f"{g.max_steps} steps × {comps // g.max_steps} compl.",
                    decode + solver_q + train,
                    secs,
                    f"K={ss.k} frozen-Solver samples per valid task",
                )
            )
        n = lp.n_candidates
        secs = rate.seconds(sample=n * cand_tok, prefill=n * gen_prompt)
        rows.append(PlanRow(t, "B1 generate", f"{n} candidates", n * cand_tok, secs))
        n_v = int(n * ASSUMED_PASS["verify"])
        rows.append(PlanRow(t, "B2 verify", f"~{n_v} pass", 0, 0.0, f"assumed {ASSUMED_PASS['verify']:.0%}"))
        n_d = int(n_v * ASSUMED_PASS["dedup"])
        rows.append(PlanRow(t, "B3 dedup", f"~{n_d} unique", 0, 0.0))
        if lp.cross_verify:
            vc = ss.verify
            vt = n_d * vc.k * _typical(vc.max_tokens, TYP_SOLVER_TOKENS)
            n_c = int(n_d * ASSUMED_PASS["cross_verify"])
            rows.append(
                PlanRow(
                    t,
                    "B4 cross-verify",
                    f"{n_d}×k={vc.k} → ~{n_c}",
                    vt,
                    rate.seconds(sample=vt, prefill=n_d * solver_prompt),
                    f"{vc.mode}, τ={vc.tau}",
                )
            )
        else:
            n_c = n_d
            rows.append(PlanRow(t, "B4 cross-verify", "skipped", 0, 0.0, "loop.cross_verify off"))
        pt = n_c * ss.k * solver_tok
        n_l = int(n_c * ASSUMED_PASS["difficulty"])
        rows.append(
            PlanRow(
                t,
                "B5 difficulty",
                f"{n_c}×K={ss.k} → ~{n_l}",
                pt,
                rate.seconds(sample=pt, prefill=n_c * solver_prompt),
                cfg.curriculum.difficulty_source,
            )
        )
        rows.append(PlanRow(t, "B6 select", f"{min(n_final, n_l)} of ~{n_l}", 0, 0.0, f"n_final={n_final}"))
        s = cfg.solver
        comps = s.max_steps * s.per_device_train_batch_size * s.gradient_accumulation_steps * procs["solver"]
        groups = comps // max(1, s.num_generations)
        decode = comps * sol_tok
        train = comps * sol_tok + groups * solver_prompt
        rows.append(
            PlanRow(
                t,
                "C solver GRPO",
                f"{s.max_steps} steps × {comps // s.max_steps} compl.",
                decode + train,
                rate.seconds(rollout=decode, prefill=groups * solver_prompt, train=train) / procs["solver"],
            )
        )
    return rows


def format_seconds(s: float) -> str:
    if s < 90:
        return f"{s:.0f} s"
    if s < 5400:
        return f"{s / 60:.0f} min"
    return f"{s / 3600:.1f} h"


def plan_total(rows: list[PlanRow]) -> float:
    return math.fsum(r.seconds for r in rows)

