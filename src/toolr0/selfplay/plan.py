"""`--dry-run` plan: the stages of every iteration, their counts and a rough cost estimate, with no model.

Costs come from a few per-token constants (measured on the 2-core CPU development machine for the 0.5B
default model, see ../shared/notes/default-model.md; GPU numbers are order-of-magnitude guesses) scaled
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
# stage in the quickstart (bench/RESULTS.md, "AVX2-only CPU").
CPU_FP32_SLOWDOWN = 2.5
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
    k_curr = int(getattr(cfg.rewards, "K", 8))
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
            solver_q = comps * k_curr * min(cfg.rewards.solver_max_tokens, TYP_SOLVER_TOKENS)
            train = comps * (gen_tok + _gen_prompt_tokens(cfg))
            secs = (decode + solver_q) / dec + train / tr
            rows.append(
                PlanRow(
                    t,
                    "A generator GRPO",
                    f"{g.max_steps} steps × {comps // g.max_steps} compl.",
                    decode + solver_q + train,
                    secs,
                    f"K={k_curr} frozen-Solver samples per valid task",
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
        pt = n_c * lp.k_passk * min(lp.passk_max_tokens, TYP_SOLVER_TOKENS)
        n_l = int(n_c * ASSUMED_PASS["difficulty"])
        rows.append(
            PlanRow(
                t,
                "B5 difficulty",
                f"{n_c}×K={lp.k_passk} → ~{n_l}",
                pt,
                pt / dec,
                cfg.curriculum.difficulty_source,
            )
        )
        rows.append(PlanRow(t, "B6 select", f"{min(n_final, n_l)} of ~{n_l}", 0, 0.0, f"n_final={n_final}"))
        s = cfg.solver
        comps = s.max_steps * s.per_device_train_batch_size * s.gradient_accumulation_steps
        decode = comps * sol_tok
        train = comps * (sol_tok + TYP_SOLVER_PROMPT)
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
