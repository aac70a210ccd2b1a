"""Sampling throughput of the transformers backend (generated tokens/s) at batch 1, 8 and 32, against a
naive loop of single `model.generate` calls measured in the same run. Target: batch 8 >= 2.5x batch 1.

Prompts are made-up Solver prompts (~300-400 tokens). Run it alone (heavy):
    OMP_NUM_THREADS=2 flock /tmp/toolr0_heavy.lock python bench/throughput.py --max-new-tokens 64
"""

from __future__ import annotations

import argparse

import torch
from _inference_util import Timer, append_results, solver_tasks

from toolr0.core.prompts import solver_messages
from toolr0.inference.base import SamplingParams
from toolr0.inference.hf import HFSampler


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="default")
    ap.add_argument("--dtype", default="auto")
    ap.add_argument("--max-new-tokens", type=int, default=64)
    ap.add_argument("--naive-prompts", type=int, default=4, help="prompts in the naive loop / batch-1 runs")
    ap.add_argument("--batches", default="1,8,32")
    ap.add_argument("--no-results", action="store_true", help="do not append to bench/RESULTS.md")
    args = ap.parse_args()

    sampler = HFSampler.from_pretrained(args.model, dtype=args.dtype)
    model, tok = sampler.model, sampler.tokenizer
    batches = [int(b) for b in args.batches.split(",")]
    tasks = solver_tasks(max(max(batches), args.naive_prompts))
    convs = [solver_messages(t.question, t.tools) for t in tasks]
    params = SamplingParams(n=1, temperature=0.7, max_new_tokens=args.max_new_tokens, seed=0)
    plen = sum(len(sampler.encode(c)) for c in convs[: max(batches)]) / max(batches)
    print(
        f"model {args.model} dtype {model.dtype}, mean prompt {plen:.0f} tokens, max_new_tokens {args.max_new_tokens}"
    )

    sampler.generate(convs[:1], params.replace(max_new_tokens=4))  # warm-up

    # Baseline: a naive loop of single model.generate calls (batch 1, no batching, nothing shared).
    naive_tokens = 0
    with Timer() as t:
        for c in convs[: args.naive_prompts]:
            ids = tok(sampler.render(c), return_tensors="pt", add_special_tokens=False)
            with torch.no_grad():
                out = model.generate(
                    **ids,
                    do_sample=True,
                    temperature=0.7,
                    top_p=1.0,
                    top_k=0,
                    max_new_tokens=args.max_new_tokens,
                    pad_token_id=sampler.pad_id,
                )
            naive_tokens += out.shape[1] - ids["input_ids"].shape[1]
    naive = naive_tokens / t.s
    print(
        f"naive loop: {args.naive_prompts} x generate(), {naive_tokens} tokens in {t.s:.1f} s = {naive:.1f} tok/s"
    )

    rows = [("naive loop of single generate()", args.naive_prompts, naive_tokens, t.s, naive)]
    tps: dict[int, float] = {}
    for b in batches:
        sampler.batch_size = b
        n_prompts = args.naive_prompts if b == 1 else b
        res = sampler.generate_detailed(convs[:n_prompts], params)
        st = res.stats
        tps[b] = st.tokens_per_second
        rows.append((f"HFSampler batch {b}", n_prompts, st.completion_tokens, st.seconds, tps[b]))
        print(
            f"batch {b}: {st.completion_tokens} tokens in {st.seconds:.1f} s = {tps[b]:.1f} tok/s "
            f"({tps[b] / naive:.2f}x naive)"
        )

    lines = [
        f"Model `{args.model}` ({model.dtype}), mean Solver prompt {plen:.0f} tokens, T=0.7, "
        f"max_new_tokens={args.max_new_tokens} (rows may stop early at eos; only generated tokens count).",
        "",
        "| run | prompts | generated tokens | seconds | tok/s | vs naive |",
        "|---|---|---|---|---|---|",
    ]
    for name, n, tokens, secs, rate in rows:
        lines.append(f"| {name} | {n} | {tokens} | {secs:.1f} | {rate:.1f} | {rate / naive:.2f}x |")
    if 1 in tps and 8 in tps:
        ratio = tps[8] / tps[1]
        verdict = "meets" if ratio >= 2.5 else "misses"
        lines += ["", f"Batch 8 / batch 1 throughput: **{ratio:.2f}x** ({verdict} the 2.5x target)."]
        print(f"batch-8 / batch-1 = {ratio:.2f}x")
    if not args.no_results:
        append_results("Sampling throughput (bench/throughput.py)", lines)


if __name__ == "__main__":
    main()
