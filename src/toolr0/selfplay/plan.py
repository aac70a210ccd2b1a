"""`--dry-run` plan: the stages of every iteration, their counts and a rough cost estimate, with no model.

`memory_layouts` adds a per-GPU memory estimate of a training phase (weights, gradients, AdamW states over the
ZeRO-3 shards) for the chosen model and role layout.

Costs come from a few per-token constants (measured on the 2-core CPU development machine for the 0.5B
default model, see docs/models.md and bench/RESULTS.md; GPU numbers are order-of-magnitude guesses) scaled
linearly with the parameter count. Treat the estimate as ±3×: it exists to catch a preset that would take
days instead of minutes, not to schedule a cluster.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from toolr0.config import ToolR0Config

# tokens per second for a 0.5B model: (decode, batched sum) and (training fwd+bwd)
CPU_DECODE_TOK_S = 30.0  # batched sum; ~27 tok/s measured for structured candidates in the quickstart
CPU_TRAIN_TOK_S = 180.0
# The CPU rates above were measured with bf16 on AMX; an AVX2-only CPU runs fp32 and took 2.3-3.0x longer per
# stage in the quickstart (bench/RESULTS.md, "AVX2-only CPU"); with finished rows dropped and decode matmuls on
# oneDNN the quickstart took 19.6 min there against 22 min estimated at 2.5x (bench/RESULTS.md, issue 15).
CPU_FP32_SLOWDOWN = 2.2
GPU_DECODE_TOK_S = 4000.0  # vLLM, one GPU (guess)
GPU_TRAIN_TOK_S = 20000.0  # one GPU, bf16 (guess)
# typical completion lengths (tokens) when the max is larger
TYP_GEN_TOKENS = 350
TYP_SOLVER_TOKENS = 120
TYP_GEN_PROMPT = {"reference": 600, "compact": 300}
TYP_SOLVER_PROMPT = 400
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


def model_billions(name: str) -> float:
    """Parameter count in billions guessed from the model name ("default" = the 0.5B packaged model)."""
    if name == "default":
        return 0.5
    m = re.search(r"(\d+(?:\.\d+)?)\s*[bB]\b", name.replace("_", "-").replace("-", " "))
    return float(m.group(1)) if m else 0.5


def uses_gpu(cfg: ToolR0Config) -> bool:
    return cfg.inference.backend in ("vllm", "openai") or cfg.generator.use_vllm


def _rates(cfg: ToolR0Config, cpu_bf16: bool) -> tuple[float, float]:
    scale = max(model_billions(cfg.model.name), 0.01) / 0.5
    if uses_gpu(cfg):
        return GPU_DECODE_TOK_S / scale, GPU_TRAIN_TOK_S / scale
    scale *= 1.0 if cpu_bf16 else CPU_FP32_SLOWDOWN
    return CPU_DECODE_TOK_S / scale, CPU_TRAIN_TOK_S / scale


def _gen_prompt_tokens(cfg: ToolR0Config) -> int:
    return TYP_GEN_PROMPT.get(str(getattr(cfg.prompts, "generator_variant", "reference")), 600)


def build_plan(cfg: ToolR0Config, cpu_bf16: bool = True) -> list[PlanRow]:
    """One row per stage per iteration, with expected counts under the assumed filter rates; ``cpu_bf16`` False
    (a CPU without AMX/AVX512-BF16, which runs fp32) slows the CPU rates by ``CPU_FP32_SLOWDOWN``."""
    lp = cfg.loop
    dec, tr = _rates(cfg, cpu_bf16)
    ss = cfg.solver_sampling  # the same K samples per task in phase A's r_diff and stage B's pass@K
    solver_tok = min(ss.max_tokens, TYP_SOLVER_TOKENS)
    gen_tok = min(cfg.generator.max_completion_length, TYP_GEN_TOKENS)
    cand_tok = min(lp.gen_max_tokens, TYP_GEN_TOKENS)
    sol_tok = min(cfg.solver.max_completion_length, TYP_SOLVER_TOKENS)
    n_final = int(getattr(cfg.curriculum, "n_final", 2000))
    rows: list[PlanRow] = []
    for t in range(1, lp.iterations + 1):
        g = cfg.generator
        if lp.freeze_generator:
            rows.append(PlanRow(t, "A generator GRPO", "skipped", 0, 0.0, "freeze_generator"))
        else:
            comps = g.max_steps * g.per_device_train_batch_size * g.gradient_accumulation_steps
            decode = comps * gen_tok
            # frozen-Solver pass rates for r_curr: K samples per completion (upper bound: every task valid)
            solver_q = comps * ss.k * solver_tok
            # the loss forward runs each prompt once per group of num_generations (training/shared_prompt.py)
            train = comps * gen_tok + (comps // max(1, g.num_generations)) * _gen_prompt_tokens(cfg)
            secs = (decode + solver_q) / dec + train / tr
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
        rows.append(PlanRow(t, "B1 generate", f"{n} candidates", n * cand_tok, n * cand_tok / dec))
        n_v = int(n * ASSUMED_PASS["verify"])
        rows.append(PlanRow(t, "B2 verify", f"~{n_v} pass", 0, 0.0, f"assumed {ASSUMED_PASS['verify']:.0%}"))
        n_d = int(n_v * ASSUMED_PASS["dedup"])
        rows.append(PlanRow(t, "B3 dedup", f"~{n_d} unique", 0, 0.0))
        if lp.cross_verify:
            vt = n_d * lp.k_verify * min(lp.verify_max_tokens, TYP_SOLVER_TOKENS)
            n_c = int(n_d * ASSUMED_PASS["cross_verify"])
            rows.append(
                PlanRow(
                    t,
                    "B4 cross-verify",
                    f"{n_d}×k={lp.k_verify} → ~{n_c}",
                    vt,
                    vt / dec,
                    f"{lp.cross_verify_mode}, τ={lp.tau}",
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
                pt / dec,
                cfg.curriculum.difficulty_source,
            )
        )
        rows.append(PlanRow(t, "B6 select", f"{min(n_final, n_l)} of ~{n_l}", 0, 0.0, f"n_final={n_final}"))
        s = cfg.solver
        comps = s.max_steps * s.per_device_train_batch_size * s.gradient_accumulation_steps
        decode = comps * sol_tok
        train = comps * sol_tok + (comps // max(1, s.num_generations)) * TYP_SOLVER_PROMPT
        rows.append(
            PlanRow(
                t,
                "C solver GRPO",
                f"{s.max_steps} steps × {comps // s.max_steps} compl.",
                decode + train,
                decode / dec + train / tr,
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


# ------------------------------------------------------------------------------------- memory estimate
GB = 1e9
#: LoRA parameters per rank unit as a share of the base model (r=16 on every attention/MLP projection:
#: Qwen2.5-0.5B 8.8 M = 1.8 %, Qwen2.5-1.5B 18.5 M = 1.2 %, i.e. ~0.075-0.11 % per unit of r)
LORA_SHARE_PER_RANK = 0.001


@dataclass
class MemoryRow:
    """Estimated memory per GPU of one GRPO training phase (GB). An estimate from parameter counts only."""

    layout: str
    processes: int
    weights_gb: float
    grads_gb: float
    optimizer_gb: float
    other_gb: float
    note: str = ""

    @property
    def total_gb(self) -> float:
        return self.weights_gb + self.grads_gb + self.optimizer_gb + self.other_gb


def _full_training(cfg: ToolR0Config) -> bool:
    mode = cfg.roles.mode
    return mode == "full" or (mode == "shared" and not cfg.roles.shared_use_lora)


def memory_estimate(cfg: ToolR0Config, processes: int = 1, zero3: bool = False) -> MemoryRow:
    """Bytes per parameter for weights, gradients and AdamW states of the trained role, divided over the
    ZeRO-3 shards; plus the frozen Solver when it runs in the training process (Generator phase, hf
    backend, full layout) and the KL reference model when beta > 0. Activations, the rollout KV cache,
    a colocated vLLM engine and the CUDA context are not included."""
    p = max(model_billions(cfg.model.name), 0.01) * 1e9
    shards = processes if zero3 else 1
    notes: list[str] = []
    other = 0.0
    if _full_training(cfg):
        if zero3:  # DeepSpeed bf16: bf16 weights + grads, fp32 master weights + Adam m, v (all sharded)
            weights, grads, optim = 2 * p / shards, 2 * p / shards, (4 + 8) * p / shards
        else:  # fp32 weights and grads with bf16 autocast, AdamW m and v in fp32
            weights, grads, optim = 4 * p, 4 * p, 8 * p
        if cfg.generator.beta > 0 or cfg.solver.beta > 0:
            other += 2 * p / shards
            notes.append("bf16 reference model (beta > 0)")
        if cfg.inference.backend == "hf" and cfg.roles.mode == "full":
            other += 2 * p
            notes.append("Generator phase: + in-process frozen Solver (bf16)")
    else:
        lora = p * LORA_SHARE_PER_RANK * cfg.roles.lora_r
        adapters = 1 if cfg.roles.mode == "shared" else 2
        base_bytes = 4 if cfg.model.dtype == "fp32" else 2
        weights = (base_bytes * p) / shards + 4 * lora * adapters  # frozen base + fp32 adapters
        grads, optim = 4 * lora, 8 * lora  # only the trained adapter
        notes.append(f"LoRA r={cfg.roles.lora_r}: ~{lora / 1e6:.0f} M trainable parameters per adapter")
    if cfg.generator.use_vllm and cfg.generator.vllm_mode == "colocate":
        notes.append(f"+ colocated vLLM: {cfg.generator.vllm_gpu_memory_utilization:.0%} of the GPU")
    layout = f"ZeRO-3 × {processes}" if zero3 else ("1 process" if processes == 1 else f"DDP × {processes}")
    return MemoryRow(layout, processes, weights / GB, grads / GB, optim / GB, other / GB, "; ".join(notes))


def memory_layouts(cfg: ToolR0Config) -> list[MemoryRow]:
    """The estimate for the layouts worth comparing: one process, and for full fine-tuning ZeRO-3 over the
    reference 3 training GPUs, one 8-GPU node and two nodes."""
    rows = [memory_estimate(cfg, 1)]
    if _full_training(cfg):
        rows += [memory_estimate(cfg, n, zero3=True) for n in (3, 8, 16)]
    return rows


def memory_lines(cfg: ToolR0Config) -> list[str]:
    """The memory section of the `--dry-run` plan, one line per layout."""
    lines = [
        f"memory per GPU of a training phase (estimate from {model_billions(cfg.model.name):g} B parameters, "
        f"roles {cfg.roles.mode}; excludes activations, rollout KV cache and CUDA context):"
    ]
    for r in memory_layouts(cfg):
        lines.append(
            f"  {r.layout:<12} {r.total_gb:6.1f} GB = weights {r.weights_gb:.1f} + grads {r.grads_gb:.1f} "
            f"+ AdamW {r.optimizer_gb:.1f}"
            + (f" + other {r.other_gb:.1f}" if r.other_gb else "")
            + (f"  ({r.note})" if r.note else "")
        )
    return lines
