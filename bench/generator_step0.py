"""Step-0 Generator benchmark: how productive is the untrained Generator (spec §5, §6.2)?

For one model and each (prompt variant, decoding) configuration, sample ``--group`` completions for each of
``--specs`` sampled TaskSpecs and report: share passing structural verification (``core.verify.verify_task``),
share of complete valid grounded tasks (verified and validity reward == 1), format/validity reward means
and mean in-group variance, refusal share, tokens per completion, seconds per valid task; then, for the
valid tasks, the frozen Solver's pass rates (K samples, ``inference.solver_service``) and the share inside
the difficulty band [p_low, p_high]. Appends a table and the command to ``bench/RESULTS.md``.

Heavy: run it as ``OMP_NUM_THREADS=2 flock /tmp/toolr0_heavy.lock python bench/generator_step0.py ...``.
"""

from __future__ import annotations

import argparse
import json
import shlex
import statistics
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).with_name("RESULTS.md")


def _pvar(xs: list[float]) -> float:
    return statistics.pvariance(xs) if len(xs) > 1 else 0.0


def run_config(
    sampler: Any, specs: list[Any], variant: str, decoding: str, args: argparse.Namespace, gen_sampler: Any = None
) -> dict:
    """One (prompt variant, decoding): Generator samples from ``gen_sampler`` (default: ``sampler``), the frozen
    Solver's from ``sampler``."""
    from toolr0.core.frozen_solver import FrozenSolverConfig

    gen_sampler = gen_sampler or sampler
    from toolr0.core.matching import names_match, partial_call_score
    from toolr0.core.prompts import generator_messages, generator_order, generator_stop
    from toolr0.core.references import load_references, pick_references, reject_copies
    from toolr0.core.rewards.config import RewardConfig
    from toolr0.core.rewards.generator import format_reward, validity_reward
    from toolr0.core.solver_format import SolverFormat
    from toolr0.core.verify import verify_task
    from toolr0.inference.base import SamplingParams
    from toolr0.inference.grammar import StructuredConfig
    from toolr0.inference.solver_service import SolverService
    from toolr0.inference.structured import constrained

    budget = None if args.budget == 0 else (args.budget or args.max_new_tokens)
    scfg = StructuredConfig(
        enabled=decoding in ("structured", "grounded"),
        budget_tokens=budget,
        ground_calls=decoding == "grounded",
        order=generator_order(variant),
    )
    pool = load_references(args.references) if args.references else []
    refs = [pick_references(pool, s, args.references_k, args.seed, str(i)) for i, s in enumerate(specs)]
    prompts = [generator_messages(s, variant, r) for s, r in zip(specs, refs, strict=True)]
    params = SamplingParams(
        n=args.group,
        temperature=args.temperature,
        top_p=1.0,
        max_new_tokens=args.max_new_tokens,
        stop=generator_stop(variant),
        seed=args.seed,
    )
    t0 = time.perf_counter()
    with constrained(gen_sampler, specs, scfg):
        result = gen_sampler.generate_detailed(prompts, params)
    gen_s = time.perf_counter() - t0

    rows: list[dict[str, Any]] = []
    valid_tasks = []
    fmt_groups, val_groups = [], []
    task_rows: list[dict[str, Any]] = []  # the row of each valid task, for its per-format p̂ below
    for spec, comps, shown in zip(specs, result.completions, refs, strict=True):
        fg, vg = [], []
        for c in comps:
            v = reject_copies(verify_task(c.text, spec), c.text, shown)
            f, val = format_reward(c.text).value, validity_reward(c.text).value
            complete = v.ok and val >= 1.0 - 1e-9
            rows.append(
                {
                    "spec": spec.to_dict(),
                    "text": c.text,
                    "tokens": c.completion_tokens,
                    "finish": c.finish_reason,
                    "verify": v.reason,
                    "spec_ok": bool(v.details.get("menu_size_ok")) and bool(v.details.get("num_calls_ok")),
                    "fmt": f,
                    "valid": val,
                    "complete": complete,
                    "task": v.task,
                    "calls": len(v.task.calls) if v.task is not None else None,
                    "references": [r.question for r in shown],
                }
            )
            fg.append(f)
            vg.append(val)
            if complete and v.task is not None:
                valid_tasks.append(v.task)
                task_rows.append(rows[-1])
        fmt_groups.append(fg)
        val_groups.append(vg)

    rcfg = RewardConfig(allow_unclosed_answer=True)
    fs_cfg = FrozenSolverConfig(k=args.k, max_tokens=args.solver_max_tokens)
    p_hats: list[float] = []
    solve_s = 0.0
    frontier: dict[str, dict[str, Any]] = {}
    formats = [f.strip() for f in args.solver_formats.split(",") if f.strip()]
    # the funnel's tasks: every verified call task (validity aside), asked of the frozen Solver
    call_rows = [r for r in rows if r["verify"] == "ok" and r["task"] is not None and r["task"].calls]
    call_tasks = [r["task"] for r in call_rows]
    if call_tasks and args.k > 0:
        for fmt_name in formats:  # the same call tasks, the frozen Solver asked in each format
            t1 = time.perf_counter()
            fmt = SolverFormat(fmt_name)
            service = SolverService(sampler, fs_cfg, seed=args.seed, solver_format=fmt, allow_unclosed=True)
            detailed = service.pass_rates_detailed(call_tasks, K=args.k)
            replies = service.pass_samples(call_tasks, K=args.k)  # cached: the same samples
            secs = time.perf_counter() - t1
            for row, task, d, texts in zip(call_rows, call_tasks, detailed, replies, strict=True):
                parses = [fmt.parse(t, allow_unclosed=True) for t in texts]
                names = [p.parsed and names_match(p.calls, task.calls) for p in parses]
                partial = [partial_call_score(p.calls, task.calls) if p.parsed else 0.0 for p in parses]
                row.setdefault("solver", {})[fmt_name] = {
                    "p_hat": d.p_hat,
                    "p_names": sum(names) / len(names),
                    "partial": statistics.fmean(partial),
                    "reasons": list(d.reasons),
                    "replies": texts[: args.keep_replies],
                }
            frontier[fmt_name] = _funnel(rows, call_rows, fmt_name, rcfg, secs)
        if formats:
            p_hats = frontier[formats[0]]["p_hats"]
            solve_s = frontier[formats[0]]["seconds"]
    n = len(rows)
    n_complete = sum(r["complete"] for r in rows)
    in_band = [p for p in p_hats if rcfg.p_low <= p <= rcfg.p_high]
    summary = {
        "variant": variant,
        "decoding": decoding,
        "samples": n,
        "specs": len(specs),
        "verified": sum(r["verify"] == "ok" for r in rows) / n,
        "spec_compliant": sum(r["verify"] == "ok" and r["spec_ok"] for r in rows) / n,
        "complete_valid": n_complete / n,
        "fmt_mean": statistics.fmean(r["fmt"] for r in rows),
        "valid_mean": statistics.fmean(r["valid"] for r in rows),
        "fmt_group_var": statistics.fmean(_pvar(g) for g in fmt_groups),
        "valid_group_var": statistics.fmean(_pvar(g) for g in val_groups),
        "refusal": sum(r["verify"] == "refusal" for r in rows) / n,
        "cut_at_limit": sum(r["finish"] == "length" for r in rows) / n,
        "tokens_mean": statistics.fmean(r["tokens"] for r in rows),
        "gen_seconds": gen_s,
        "s_per_valid": gen_s / n_complete if n_complete else float("inf"),
        "p_hats": p_hats,
        "p_hat_hist": dict(sorted(Counter(round(p, 3) for p in p_hats).items())),
        "in_band": len(in_band) / len(p_hats) if p_hats else 0.0,
        "solver_seconds": solve_s,
        "frontier": frontier,
        "reasons": dict(Counter(r["verify"] for r in rows).most_common()),
    }
    if args.out:
        out = Path(args.out) / f"{variant}_{decoding}.jsonl"
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(
            "".join(json.dumps(_row_json(r), ensure_ascii=False) + "\n" for r in rows)
        )
    return summary


def _row_json(row: dict[str, Any]) -> dict[str, Any]:
    out = {k: v for k, v in row.items() if k != "task"}
    task = row.get("task")
    if task is not None:
        out["parsed_task"] = task.to_dict() if hasattr(task, "to_dict") else str(task)
    return out


def _funnel(
    rows: list[dict[str, Any]], call_rows: list[dict[str, Any]], fmt: str, rcfg: Any, secs: float
) -> dict[str, Any]:
    """completions → verified → call tasks → p̂ > 0 → 0 < p̂ < 1 (exact full-call p̂), the share of ≥ 2-call tasks
    at each step, and p̂ three ways on the same call tasks (exact, names only, mean partial score)."""
    from toolr0.core.rewards.generator import difficulty_reward

    verified = [r for r in rows if r["verify"] == "ok"]
    ps = [r["solver"][fmt]["p_hat"] for r in call_rows]
    pn = [r["solver"][fmt]["p_names"] for r in call_rows]
    partial = [r["solver"][fmt]["partial"] for r in call_rows]
    solved = [r for r in call_rows if r["solver"][fmt]["p_hat"] > 0]
    between = [r for r in solved if r["solver"][fmt]["p_hat"] < 1]

    def multi(rs: list[dict[str, Any]]) -> float:
        return sum((r.get("calls") or 0) >= 2 for r in rs) / len(rs) if rs else 0.0

    r_diff = [difficulty_reward(p, rcfg).value for p in ps]
    n_call = len(call_rows) or 1
    return {
        "p_hats": ps,
        "hist": dict(sorted(Counter(round(p, 3) for p in ps).items())),
        "funnel": {
            "completions": len(rows),
            "verified": len(verified),
            "call_tasks": len(call_rows),
            "solved": len(solved),
            "between": len(between),
        },
        "multi_share": {
            "completions": multi(rows),
            "verified": multi(verified),
            "call_tasks": multi(call_rows),
            "solved": multi(solved),
            "between": multi(between),
        },
        "solved_share": len(solved) / n_call,
        "between": len(between) / n_call,
        "in_band": sum(rcfg.p_low <= p <= rcfg.p_high for p in ps) / n_call,
        "names_solved_share": sum(p > 0 for p in pn) / n_call,
        "names_between": sum(0 < p < 1 for p in pn) / n_call,
        "p_exact_mean": statistics.fmean(ps) if ps else 0.0,
        "p_names_mean": statistics.fmean(pn) if pn else 0.0,
        "partial_mean": statistics.fmean(partial) if partial else 0.0,
        # every other Generator sample has no verified call task, so its curriculum reward is 0
        "rdiff_pos_share_samples": sum(r > 0 for r in r_diff) / len(rows),
        "rdiff_mean_samples": sum(r_diff) / len(rows),
        "seconds": secs,
    }


def _table(summaries: list[dict], header: str) -> str:
    cols = (
        "| prompt | decoding | samples | verified | complete valid | fmt mean | valid mean | fmt var (grp) | "
        "valid var (grp) | refusal | cut at limit | tokens | s / valid task | Solver p̂ (valid tasks) | "
        "in band |\n|" + "---|" * 15 + "\n"
    )
    lines = []
    for s in summaries:
        hist = ", ".join(f"{k}: {v}" for k, v in s["p_hat_hist"].items()) or "–"
        spv = f"{s['s_per_valid']:.0f}" if s["s_per_valid"] != float("inf") else "∞"
        lines.append(
            f"| {s['variant']} | {s['decoding']} | {s['samples']} | {s['verified']:.0%} | {s['complete_valid']:.0%} "
            f"| {s['fmt_mean']:.2f} | {s['valid_mean']:.2f} | {s['fmt_group_var']:.3f} | {s['valid_group_var']:.3f} "
            f"| {s['refusal']:.0%} | {s['cut_at_limit']:.0%} | {s['tokens_mean']:.0f} | {spv} | {hist} "
            f"| {s['in_band']:.0%} of {len(s['p_hats'])} |"
        )
    reasons = "\n".join(f"- {s['variant']}/{s['decoding']}: {s['reasons']}" for s in summaries)
    front = [
        f"| {s['variant']}/{s['decoding']} | {name} | {len(f['p_hats'])} | "
        + (", ".join(f"{k}: {v}" for k, v in f["hist"].items()) or "–")
        + f" | {f['between']:.0%} | {f['in_band']:.0%} | {f['rdiff_pos_share_samples']:.1%} "
        f"| {f['rdiff_mean_samples']:.3f} | {f['seconds']:.0f} |"
        for s in summaries
        for name, f in s.get("frontier", {}).items()
    ]
    funnel_rows = []
    for s_ in summaries:
        for name, f in s_.get("frontier", {}).items():
            fu, ms = f["funnel"], f["multi_share"]
            cells = " → ".join(
                f"{fu[k]} ({ms[k]:.0%})" for k in ("completions", "verified", "call_tasks", "solved", "between")
            )
            funnel_rows.append(
                f"| {s_['variant']}/{s_['decoding']} | {name} | {cells} | {f['solved_share']:.0%} | "
                f"{f['between']:.0%} | {f['in_band']:.0%} | {f['names_solved_share']:.0%} / {f['names_between']:.0%} "
                f"| {f['p_exact_mean']:.2f} / {f['p_names_mean']:.2f} / {f['partial_mean']:.2f} |"
            )
    funnel_table = (
        "\n\nThe funnel (count, share with ≥ 2 calls): completions → verified → call tasks → p̂ > 0 → 0 < p̂ < 1 "
        "(exact full-call p̂); shares of the verified call tasks; p̂ three ways on the same tasks:\n\n"
        "| Generator | Solver format | funnel | p̂ > 0 | 0 < p̂ < 1 | in [p_low, p_high] | names-only p̂ > 0 / "
        "0 < p̂ < 1 | mean p̂ exact / names / partial |\n|" + "---|" * 8 + "\n" + "\n".join(funnel_rows)
        if funnel_rows
        else ""
    )
    front_table = (
        "\n\nThe frozen Solver on the same valid tasks, per Solver format (docs/solver_format.md):\n\n"
        "| Generator | Solver format | valid tasks | p̂ histogram | 0 < p̂ < 1 | in band | Generator samples "
        "with r_diff > 0 | mean r_diff (all samples) | Solver s |\n|" + "---|" * 9 + "\n" + "\n".join(front)
        if front
        else ""
    )
    return (
        f"{header}\n\n{cols}" + "\n".join(lines) + funnel_table + front_table + f"\n\nVerification outcomes:\n{reasons}\n"
    )


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="default", help="'default', a model folder or a cached HF id")
    p.add_argument("--dtype", default="auto", choices=["auto", "bf16", "fp32"])
    p.add_argument("--variants", default="compact", help="comma list of prompt variants (reference,compact)")
    p.add_argument(
        "--decodings",
        default="structured",
        help="comma list of decodings: free, structured, grounded (structured + structured.ground_calls)",
    )
    p.add_argument(
        "--configs",
        default="",
        help="comma list of variant:decoding pairs, run in order (overrides the two above)",
    )
    p.add_argument("--specs", type=int, default=16, help="sampled TaskSpecs")
    p.add_argument("--group", type=int, default=4, help="completions per spec (GRPO group)")
    p.add_argument("--max-new-tokens", type=int, default=384, help="Generator budget (cpu preset: 384)")
    p.add_argument(
        "--budget",
        type=int,
        default=None,
        help="structured.budget_tokens (default: --max-new-tokens; 0: none)",
    )
    p.add_argument("--temperature", type=float, default=1.0)
    p.add_argument("--k", type=int, default=4, help="frozen-Solver samples per valid task (0: skip)")
    p.add_argument("--solver-max-tokens", type=int, default=192, help="cpu preset: 192")
    p.add_argument(
        "--solver-formats",
        default="reference,native",
        help="comma list of Solver formats for the frozen Solver's pass rates (the first fills the main table)",
    )
    p.add_argument(
        "--generator-model",
        default="",
        help="model or LoRA folder for the Generator's samples (default: --model); the Solver stays --model",
    )
    p.add_argument(
        "--references",
        default="",
        help="JSONL of the Generator's own solved tasks (bench/references_pool.py) shown as earlier turns",
    )
    p.add_argument("--references-k", type=int, default=2, help="references per prompt (with --references)")
    p.add_argument("--keep-replies", type=int, default=3, help="Solver replies kept per task in --out")
    p.add_argument("--spec-file", default="", help="task-spec file ('' = the default spec; cpu preset: no_call)")
    p.add_argument("--gen-temperature", type=float, default=None, help="alias of --temperature")
    p.add_argument("--batch-size", type=int, default=8, help="prompts per generate() chunk")
    p.add_argument("--max-batch-sequences", type=int, default=32)
    p.add_argument("--seed", type=int, default=13)
    p.add_argument("--out", default="", help="folder for per-sample JSONL (optional)")
    p.add_argument("--no-results", action="store_true", help="do not append to bench/RESULTS.md")
    args = p.parse_args(argv)

    import torch

    from toolr0.core.spec import SpecSampler, load_spec_file
    from toolr0.inference.hf import HFSampler
    from toolr0.inference.models import resolve_model

    torch.set_num_threads(2)
    model_dir = resolve_model(args.model)
    sampler = HFSampler.from_pretrained(
        str(model_dir),
        dtype=args.dtype,
        batch_size=args.batch_size,
        max_batch_sequences=args.max_batch_sequences,
    )
    gen_sampler = None
    if args.generator_model:  # a trained Generator (e.g. a run's LoRA folder, folded in) against the base Solver
        gen_sampler = HFSampler.from_pretrained(
            args.generator_model,
            dtype=args.dtype,
            batch_size=args.batch_size,
            max_batch_sequences=args.max_batch_sequences,
            merge_adapter=True,
        )
    if args.gen_temperature is not None:
        args.temperature = args.gen_temperature
    specs = SpecSampler(load_spec_file(args.spec_file or None), seed=args.seed).sample(args.specs)
    if args.configs:
        plan = [tuple(c.strip().split(":", 1)) for c in args.configs.split(",")]
    else:
        plan = [(v.strip(), d.strip()) for v in args.variants.split(",") for d in args.decodings.split(",")]
    summaries = []
    stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime())
    cmd = "OMP_NUM_THREADS=2 flock /tmp/toolr0_heavy.lock python bench/generator_step0.py " + shlex.join(
        argv if argv is not None else sys.argv[1:]
    )
    header = (
        f"## Generator step 0 — {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}\n\n"
        f"Model `{args.model}` ({model_dir.name}), dtype {args.dtype}, {args.specs} specs × {args.group} "
        f"completions, T={args.temperature}, {args.max_new_tokens} new tokens (stop at `</tool_call_answer>`), "
        f"frozen Solver K={args.k} at T=0.7 with {args.solver_max_tokens} tokens ({args.solver_formats} "
        f"formats), unclosed answers accepted, "
        f"seed {args.seed}.\n\n`{cmd}`"
    )
    for i, (variant, decoding) in enumerate(plan):
        s = run_config(sampler, specs, variant, decoding, args, gen_sampler)
        summaries.append(s)
        print(json.dumps({k: v for k, v in s.items() if k != "p_hats"}, indent=1), flush=True)
        text = _table(
            summaries,
            header + (f"\n\n(partial: {i + 1} of {len(plan)} configurations)" if i + 1 < len(plan) else ""),
        )
        if not args.no_results:  # rewritten after each configuration, so a cut-short run keeps its rows
            _write_section(text, stamp)
    print(text)
    return 0


def _write_section(text: str, stamp: str) -> None:
    """Insert or replace this run's section (between its own markers; others' sections are kept)."""
    begin, end = f"<!-- generator_step0 {stamp} -->\n", f"<!-- /generator_step0 {stamp} -->\n"
    old = RESULTS.read_text() if RESULTS.exists() else ""
    if begin in old and end in old:
        a, b = old.index(begin), old.index(end) + len(end)
        RESULTS.write_text(old[:a] + begin + text + end + old[b:])
    else:
        RESULTS.write_text(old + "\n" + begin + text + end)


if __name__ == "__main__":
    raise SystemExit(main())
