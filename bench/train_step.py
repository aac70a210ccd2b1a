"""Seconds per GRPO step and peak RSS per role on the packaged default model (TRL GRPOTrainer, CPU).

Each role runs in its own subprocess (so peak RSS is per role): N Generator steps (real format/validity/
curriculum rewards; the curriculum reward queries the frozen Solver adapter in-process) and N Solver steps
on made-up tasks. LoRA per role on one frozen bf16 base, small lengths. Run it alone (heavy):
    OMP_NUM_THREADS=2 flock /tmp/toolr0_heavy.lock python bench/train_step.py --steps 2 --max-len 256
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent


def overrides(args: argparse.Namespace, role: str) -> list[str]:
    r = role
    out = [
        f"{r}.max_steps={args.steps}",
        f"{r}.max_completion_length={args.max_len}",
        f"{r}.num_generations={args.group}",
        f"{r}.per_device_train_batch_size={args.group * args.prompts}",
        f"{r}.gradient_accumulation_steps=1",
        f"{r}.save_steps={args.steps}",
        f"{r}.precision={args.precision}",
        f"{r}.learning_rate=1e-5",
        "roles.mode=lora",
        "model.name=default",
        f"model.dtype={args.precision}",
        f"frozen_solver.k={args.k}",
        f"frozen_solver.max_tokens={args.solver_tokens}",
        f"loop.generator_prompts={max(8, args.steps * args.prompts)}",
    ]
    if args.no_structured:
        out.append("structured.enabled=false")
    return out


def run_role(args: argparse.Namespace) -> dict:
    """Child process: train one role and return its measurements."""
    sys.path.insert(0, str(HERE))
    from _inference_util import solver_tasks

    from toolr0.config import load_config
    from toolr0.training.run import train_role

    cfg = load_config(args.config, overrides(args, args.role))
    out = Path(args.out) / args.role
    data = solver_tasks(max(8, args.steps * args.prompts)) if args.role == "solver" else None
    res = train_role(args.role, cfg, out, data=data, echo=lambda s: print(s, flush=True))
    logs = [h for h in res.log_history if "reward" in h]
    return {
        "role": args.role,
        "steps": res.global_step,
        "seconds_per_step": res.seconds_per_step,
        "step_times": [h.get("step_time") for h in logs],
        "peak_rss_gb": res.peak_rss_gb,
        "precision": res.precision,
        "rewards": [
            {k: v for k, v in h.items() if k.startswith("rewards/") and k.endswith("/mean")} for h in logs
        ],
        "extra": [{k: v for k, v in h.items() if k.startswith(("generator/", "solver/"))} for h in logs],
        "completion_mean_length": [h.get("completions/mean_length") for h in logs],
        "structured": bool(cfg.structured.enabled) and args.role == "generator",
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", default=str(HERE.parent / "configs" / "cpu.yaml"))
    ap.add_argument("--steps", type=int, default=2)
    ap.add_argument("--max-len", type=int, default=256, help="max_completion_length of both roles")
    ap.add_argument("--group", type=int, default=4, help="num_generations")
    ap.add_argument("--prompts", type=int, default=1, help="prompts per step")
    ap.add_argument("--k", type=int, default=2, help="frozen-Solver samples per task (r_diff)")
    ap.add_argument("--solver-tokens", type=int, default=128, help="max tokens of each frozen-Solver sample")
    ap.add_argument("--precision", default="bf16", choices=["bf16", "fp32"])
    ap.add_argument("--no-structured", action="store_true", help="turn off the Generator's grammar hook")
    ap.add_argument("--roles", default="generator,solver")
    ap.add_argument("--role", help=argparse.SUPPRESS)
    ap.add_argument("--out", help=argparse.SUPPRESS)
    ap.add_argument("--json", help=argparse.SUPPRESS)
    ap.add_argument("--no-results", action="store_true", help="do not append to bench/RESULTS.md")
    args = ap.parse_args()

    if args.role:  # child
        Path(args.json).write_text(json.dumps(run_role(args)))
        return

    results = []
    with tempfile.TemporaryDirectory(prefix="toolr0_bench_train_") as tmp:
        for role in args.roles.split(","):
            js = Path(tmp) / f"{role}.json"
            cmd = [sys.executable, __file__, *sys.argv[1:], "--role", role, "--out", tmp, "--json", str(js)]
            subprocess.run(cmd, check=True, env={**os.environ, "TOKENIZERS_PARALLELISM": "false"})
            results.append(json.loads(js.read_text()))
    lines = [
        f"{args.steps} GRPO steps per role, LoRA r=16 on the default model (Qwen2.5-Coder-0.5B-Instruct), "
        f"{args.precision}, {args.prompts} prompt × {args.group} completions per step, max_completion_length "
        f"{args.max_len}, frozen-Solver K={args.k} × {args.solver_tokens} tokens, config {Path(args.config).name}.",
        "",
        "| role | s/step (mean) | step times (TRL step_time, s) | peak RSS (GB) | mean completion tokens | rewards (mean per step) |",
        "|---|---|---|---|---|---|",
    ]
    for r in results:
        rw = "; ".join(", ".join(f"{k[8:-5]}={v:.2f}" for k, v in step.items()) for step in r["rewards"])
        st = ", ".join(f"{t:.0f}" for t in r["step_times"] if t is not None)
        ml = ", ".join(f"{x:.0f}" for x in r["completion_mean_length"] if x is not None)
        name = r["role"] + (" (structured)" if r["structured"] else "")
        lines.append(
            f"| {name} | {r['seconds_per_step']:.0f} | {st} | {r['peak_rss_gb']:.1f} | {ml} | {rw} |"
        )
    print("\n".join(lines))
    print(json.dumps(results, indent=1))
    if not args.no_results:
        sys.path.insert(0, str(HERE))
        from _inference_util import append_results

        append_results("GRPO train step per role (bench/train_step.py)", lines)


if __name__ == "__main__":
    main()
