"""`--dry-run` memory estimate per GPU of a GRPO phase, from parameter counts and the config: weights,
gradients and AdamW states (over the ZeRO-3 shards), plus what else sits on the training GPU: the KL
reference model, the in-process frozen Solver (fp32, with its KV cache), the weights ZeRO-3 gathers for
generation and the vLLM weight sync, one micro-batch of logits, and a colocated vLLM engine's share.

The layouts are the plan's own (`launch.mode: processes`: each phase at its `launch.<phase>.processes`, under
ZeRO-3 when its accelerate config says `zero_stage: 3`; in-process: one process) and, for comparison, ZeRO-3
over 3, 8 and 16 GPUs. Activations, the CUDA context and allocator fragmentation are left out: an estimate,
not a measurement (none has been compared with a GPU run yet).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from toolr0.config import ToolR0Config

GB = 1e9
#: LoRA parameters per rank unit as a share of the base model (r=16 on every attention/MLP projection:
#: Qwen2.5-0.5B 8.8 M = 1.8 %, Qwen2.5-1.5B 18.5 M = 1.2 %, i.e. ~0.075-0.11 % per unit of r)
LORA_SHARE_PER_RANK = 0.001
#: the card a colocated vLLM share is taken of (an 80 GB A100 / H100)
GPU_GB = 80.0
#: Qwen2.5 sizes (billions): layers, KV heads, head dim, vocabulary (the models' config.json)
QWEN_ARCH = {
    0.5: (24, 2, 64, 151936),
    1.5: (28, 2, 128, 151936),
    3.0: (36, 2, 128, 151936),
    7.0: (28, 4, 128, 152064),
}
#: the Solver prompt the KV cache holds besides the completion (tokens; plan.TYP_SOLVER_PROMPT's upper end)
SOLVER_PROMPT_TOKENS = 440


def model_billions(name: str) -> float:
    """Parameter count in billions guessed from the model name ("default" = the 0.5B packaged model)."""
    if name == "default":
        return 0.5
    m = re.search(r"(\d+(?:\.\d+)?)\s*[bB]\b", name.replace("_", "-").replace("-", " "))
    return float(m.group(1)) if m else 0.5


def _arch(billions: float) -> tuple[int, int, int, int]:
    return QWEN_ARCH[min(QWEN_ARCH, key=lambda b: abs(b - billions))]


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
    phase: str = ""  # "A" (Generator) / "C" (Solver); "" for the comparison rows
    parts: dict[str, float] = field(default_factory=dict)  # other_gb, item by item

    @property
    def total_gb(self) -> float:
        return self.weights_gb + self.grads_gb + self.optimizer_gb + self.other_gb


def _full_training(cfg: ToolR0Config) -> bool:
    mode = cfg.roles.mode
    return mode == "full" or (mode == "shared" and not cfg.roles.shared_use_lora)


def _in_process_solver(cfg: ToolR0Config) -> bool:
    """Phase A keeps a full frozen Solver in the training process unless it is queried over HTTP."""
    return _full_training(cfg) and cfg.inference.backend != "openai"


def memory_estimate(
    cfg: ToolR0Config, processes: int = 1, zero3: bool = False, phase: str = "generator"
) -> MemoryRow:
    """Memory per GPU of `phase` ("generator" or "solver") over `processes` processes (module docstring)."""
    b = max(model_billions(cfg.model.name), 0.01)
    p = b * 1e9
    layers, kv_heads, head_dim, vocab = _arch(b)
    role = cfg.generator if phase == "generator" else cfg.solver
    shards = processes if zero3 else 1
    parts: dict[str, float] = {}
    notes: list[str] = []
    if _full_training(cfg):
        if zero3:  # DeepSpeed bf16: bf16 weights + grads, fp32 master weights + Adam m, v (all sharded)
            weights, grads, optim = 2 * p / shards, 2 * p / shards, (4 + 8) * p / shards
            parts["ZeRO-3 gathered weights (bf16)"] = 2 * p  # generation and the vLLM weight sync gather all
        else:  # fp32 weights and grads with bf16 autocast, AdamW m and v in fp32
            weights, grads, optim = 4 * p, 4 * p, 8 * p
        if role.beta > 0:
            parts["bf16 reference model (beta > 0)"] = 2 * p / shards
        if phase == "generator" and _in_process_solver(cfg):
            parts["in-process frozen Solver (fp32)"] = 4 * p
            rows = min(cfg.inference.batch_size * cfg.frozen_solver.k, cfg.inference.max_batch_sequences)
            tokens = SOLVER_PROMPT_TOKENS + cfg.frozen_solver.max_tokens
            parts["frozen Solver KV cache"] = rows * tokens * 2 * layers * kv_heads * head_dim * 4
            notes.append(f"Solver KV: {rows} rows × {tokens} tokens")
    else:
        lora = p * LORA_SHARE_PER_RANK * cfg.roles.lora_r
        adapters = 1 if cfg.roles.mode == "shared" else 2
        base_bytes = 4 if cfg.model.dtype == "fp32" else 2
        weights = (base_bytes * p) / shards + 4 * lora * adapters  # frozen base + fp32 adapters
        grads, optim = 4 * lora, 8 * lora  # only the trained adapter
        notes.append(f"LoRA r={cfg.roles.lora_r}: ~{lora / 1e6:.0f} M trainable parameters per adapter")
    # logits and their log-softmax over the completion tokens of one micro-batch, fp32
    parts["logits (one micro-batch, fp32)"] = (
        2 * role.per_device_train_batch_size * role.max_completion_length * vocab * 4
    )
    if role.use_vllm and role.vllm_mode == "colocate":
        share = role.vllm_gpu_memory_utilization
        parts[f"colocated vLLM ({share:.0%} of {GPU_GB:g} GB)"] = share * GPU_GB * GB
    layout = f"ZeRO-3 × {processes}" if zero3 else ("1 process" if processes == 1 else f"DDP × {processes}")
    parts_gb = {k: v / GB for k, v in parts.items()}
    return MemoryRow(
        layout,
        processes,
        weights / GB,
        grads / GB,
        optim / GB,
        sum(parts_gb.values()),
        "; ".join(notes),
        parts=parts_gb,
    )


def _is_zero3(path: str | None, phase: str) -> bool:
    if not path:
        return False
    from toolr0.selfplay.launch import resolve_accelerate_config

    try:
        text = Path(resolve_accelerate_config(path, phase)).read_text(encoding="utf-8")
    except Exception:  # noqa: BLE001 - the dry-run names the file problem elsewhere
        return "zero3" in path
    return re.search(r"^\s*zero_stage:\s*3\b", text, re.M) is not None


def memory_layouts(cfg: ToolR0Config) -> list[MemoryRow]:
    """The plan's own layout per phase (A, C), then for full fine-tuning ZeRO-3 over 3, 8 and 16 GPUs."""
    rows = []
    for phase, tag in (("generator", "A"), ("solver", "C")):
        pl = getattr(cfg.launch, phase)
        if cfg.launch.mode == "processes" and not pl.cpu:
            row = memory_estimate(cfg, pl.processes, zero3=_is_zero3(pl.accelerate_config, phase), phase=phase)
        else:
            row = memory_estimate(cfg, 1, phase=phase)
        row.phase = tag
        rows.append(row)
    if _full_training(cfg):
        rows += [memory_estimate(cfg, n, zero3=True) for n in (3, 8, 16)]
    return rows


def memory_lines(cfg: ToolR0Config) -> list[str]:
    """The memory section of the `--dry-run` plan, one line per layout and one per extra item."""
    where = "processes per launch.*" if cfg.launch.mode == "processes" else "one process"
    lines = [
        f"memory per GPU of a training phase (estimate from {model_billions(cfg.model.name):g} B parameters, "
        f"roles {cfg.roles.mode}; the plan: {where}; excludes activations and the CUDA context):"
    ]
    for r in memory_layouts(cfg):
        head = f"plan {r.phase}" if r.phase else "Generator, if"
        lines.append(
            f"  {head:<13} {r.layout:<12} {r.total_gb:6.1f} GB = weights {r.weights_gb:.1f} + grads "
            f"{r.grads_gb:.1f} + AdamW {r.optimizer_gb:.1f}"
            + (f" + other {r.other_gb:.1f}" if r.other_gb else "")
            + (f"  ({r.note})" if r.note else "")
        )
        if r.phase:
            lines += [f"      {k}: {v:.1f} GB" for k, v in r.parts.items()]
    return lines
