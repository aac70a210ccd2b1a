"""Cost of one K=8 pass-rate estimate (SolverService, one batched call, prompt prefilled once) against
8 independent generations of the same Solver prompt, measured in the same run. Target: >= 3x faster.
Also reports the batched call without the prefill-once KV expansion (n copies prefilled).

    OMP_NUM_THREADS=2 flock /tmp/toolr0_heavy.lock python bench/passrate_k8.py --max-new-tokens 128
"""

from __future__ import annotations

import argparse

from _inference_util import Timer, append_results, solver_tasks

from toolr0.core.frozen_solver import FrozenSolverConfig
from toolr0.core.prompts import solver_messages
from toolr0.core.solver_format import REFERENCE_STOP
from toolr0.inference.base import SamplingParams
from toolr0.inference.hf import HFSampler
from toolr0.inference.solver_service import SolverService


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="default")
    ap.add_argument("--dtype", default="auto")
    ap.add_argument("--K", type=int, default=8)
    ap.add_argument("--max-new-tokens", type=int, default=128)
    ap.add_argument("--task", type=int, default=0, help="index of the made-up task")
    ap.add_argument("--no-results", action="store_true")
    args = ap.parse_args()

    sampler = HFSampler.from_pretrained(args.model, dtype=args.dtype, batch_size=8)
    task = solver_tasks(args.task + 1)[args.task]
    conv = solver_messages(task.question, task.tools)
    cfg = FrozenSolverConfig(k=args.K, max_tokens=args.max_new_tokens)
    sampler.generate([conv], SamplingParams(max_new_tokens=4))  # warm-up
    plen = len(sampler.encode(conv))
    print(f"task: {task.question!r}, prompt {plen} tokens, K={args.K}, T={cfg.temperature}")

    # Baseline: K independent generations (one generate() each, batch 1).
    single = SamplingParams(
        n=1, temperature=cfg.temperature, max_new_tokens=args.max_new_tokens, stop=REFERENCE_STOP
    )
    base_tokens = 0
    with Timer() as tb:
        for i in range(args.K):
            sampler.generate([conv], single.replace(seed=1000 + i))
            base_tokens += sampler.last_stats.completion_tokens
    print(f"{args.K} independent generations: {tb.s:.1f} s, {base_tokens} tokens")

    results = []
    for prefill_once in (True, False):
        sampler.prefill_once = prefill_once
        svc = SolverService(sampler, cfg, checkpoint_id="bench", seed=7)
        with Timer() as t:
            detail = svc.pass_rates_detailed([task], K=args.K)[0]
        st = sampler.last_stats
        results.append((prefill_once, t.s, st.completion_tokens, detail))
        print(
            f"batched K={args.K} (prefill_once={prefill_once}): {t.s:.1f} s, {st.completion_tokens} tokens, "
            f"p_hat={detail.p_hat:.3f}, speed-up {tb.s / t.s:.2f}x"
        )

    best = results[0][1]
    lines = [
        f"Model `{args.model}` ({sampler.model.dtype}); made-up task {task.question!r}, Solver prompt {plen} tokens, "
        f"K={args.K}, T={cfg.temperature}, max_new_tokens={args.max_new_tokens}, stop `{REFERENCE_STOP[0]}`.",
        "",
        "| method | seconds | generated tokens | speed-up vs independent |",
        "|---|---|---|---|",
        f"| {args.K} independent generate() calls (baseline) | {tb.s:.1f} | {base_tokens} | 1.00x |",
    ]
    for prefill_once, secs, tokens, _detail in results:
        name = (
            "SolverService.pass_rates, one batched call, prompt prefilled once"
            if prefill_once
            else "one batched call, K prompt copies prefilled (num_return_sequences-style)"
        )
        lines.append(f"| {name} | {secs:.1f} | {tokens} | {tb.s / secs:.2f}x |")
    verdict = "meets" if tb.s / best >= 3 else "misses"
    lines += [
        "",
        f"K={args.K} estimate speed-up: **{tb.s / best:.2f}x** ({verdict} the 3x target); "
        f"p_hat of this task = {results[0][3].p_hat:.3f}.",
    ]
    if not args.no_results:
        append_results(f"K={args.K} pass-rate estimate (bench/passrate_k8.py)", lines)


if __name__ == "__main__":
    main()
