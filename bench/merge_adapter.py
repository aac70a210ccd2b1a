"""Evaluating a LoRA Solver: adapter merged into the base weights against the adapter served unmerged
(the baseline, measured in the same run on the same prompts). Reports generated tokens/s of each, the
speed-up, and how many greedy outputs are identical (merging changes rounding, not the function).

Prompts are made-up Solver prompts (no benchmark data). Run it alone (heavy):
    OMP_NUM_THREADS=2 flock /tmp/toolr0_heavy.lock python bench/merge_adapter.py \
        --adapter runs/cpu/iter_01/solver/checkpoints/checkpoint-8/solver
"""

from __future__ import annotations

import argparse
import sys

from _inference_util import append_results, solver_tasks

from toolr0.core.prompts import solver_messages
from toolr0.eval.runner import resolve_eval_model
from toolr0.inference.base import SamplingParams
from toolr0.inference.hf import HFSampler
from toolr0.inference.models import is_adapter_dir


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--adapter", required=True, help="LoRA adapter folder or self-play run directory")
    ap.add_argument("--dtype", default="auto")
    ap.add_argument("--prompts", type=int, default=16)
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--max-new-tokens", type=int, default=128)
    ap.add_argument("--no-results", action="store_true", help="do not append to bench/RESULTS.md")
    args = ap.parse_args()

    path = resolve_eval_model(args.adapter)
    if not is_adapter_dir(path):
        sys.exit(f"{path} is not a LoRA adapter folder (no adapter_config.json)")
    convs = [solver_messages(t.question, t.tools) for t in solver_tasks(args.prompts)]
    params = SamplingParams(n=1, temperature=0.0, max_new_tokens=args.max_new_tokens, seed=0)

    results = {}
    for label, merge in (
        ("adapter served unmerged (baseline)", False),
        ("adapter merged into the base", True),
    ):
        sampler = HFSampler.from_pretrained(
            path, dtype=args.dtype, batch_size=args.batch_size, merge_adapter=merge
        )
        adapter = None if merge else "default"
        sampler.generate(convs[:1], params.replace(max_new_tokens=4), adapter=adapter)  # warm-up
        res = sampler.generate_detailed(convs, params, adapter=adapter)
        texts = [row[0].text for row in res.completions]
        results[label] = (res.stats, texts, str(sampler.model.dtype))
        st = res.stats
        print(
            f"{label}: {st.completion_tokens} tokens in {st.seconds:.1f} s = {st.tokens_per_second:.1f} tok/s"
        )
        del sampler

    (base_label, (base, base_texts, dtype)), (merged_label, (merged, merged_texts, _)) = results.items()
    same = sum(a == b for a, b in zip(base_texts, merged_texts, strict=True))
    ratio = merged.tokens_per_second / base.tokens_per_second
    print(f"speed-up {ratio:.2f}x; identical greedy outputs {same}/{len(convs)}")
    lines = [
        f"Adapter `{path}` ({dtype}), {len(convs)} made-up Solver prompts, greedy, batch {args.batch_size}, "
        f"max_new_tokens={args.max_new_tokens}.",
        "",
        "| serving | tokens | seconds | tok/s |",
        "|---|---|---|---|",
        *(
            f"| {label} | {st.completion_tokens} | {st.seconds:.1f} | {st.tokens_per_second:.1f} |"
            for label, (st, _, _) in results.items()
        ),
        "",
        f"Merged / unmerged: **{ratio:.2f}x** tokens/s; identical greedy outputs: {same} of {len(convs)}.",
    ]
    if not args.no_results:
        append_results("LoRA adapter merged vs unmerged for evaluation (bench/merge_adapter.py)", lines)


if __name__ == "__main__":
    main()
