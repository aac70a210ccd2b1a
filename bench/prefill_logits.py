"""Prompt prefill with logits for every position (what HFSampler's cache prefill computed) vs. ``logits_to_keep=1``.

A prefill only has to fill the KV cache, yet a causal LM's forward computes the lm_head over every position by
default: for the 0.5B default model (a 151,936 × 896 head against ~358 M other weights) about a quarter of the
FLOPs, plus a batch × width × vocab float tensor. Runs both on the same ``--prompts`` Solver prompts, interleaved,
and prints seconds, the ratio and whether the two caches are identical.

    OMP_NUM_THREADS=2 python bench/prefill_logits.py --prompts 8 --repeats 2
"""

from __future__ import annotations

import argparse
import time

import torch
from _inference_util import cpu_line, solver_batch

from toolr0.inference.hf import HFSampler
from toolr0.inference.kv_cache import new_cache


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="default")
    ap.add_argument("--prompts", type=int, default=8)
    ap.add_argument("--repeats", type=int, default=2)
    args = ap.parse_args()

    sampler = HFSampler.from_pretrained(args.model, dtype="auto")
    model = sampler.model
    ids, mask = solver_batch(sampler, args.prompts)
    n_tokens = int(mask.sum())
    print(
        f"model {args.model} ({next(model.parameters()).dtype}), {torch.get_num_threads()} threads, CPU {cpu_line()}; "
        f"{args.prompts} prompts, width {ids.shape[1]}, {n_tokens} prompt tokens"
    )

    def prefill(keep: int) -> tuple[float, object]:
        cache = new_cache(model)
        with torch.no_grad():
            t0 = time.perf_counter()
            model(
                input_ids=ids, attention_mask=mask, past_key_values=cache, use_cache=True, logits_to_keep=keep
            )
            return time.perf_counter() - t0, cache

    for rep in range(args.repeats):
        t_all, a = prefill(0)
        t_one, b = prefill(1)
        same = all(
            torch.equal(x.keys, y.keys) and torch.equal(x.values, y.values)
            for x, y in zip(a.layers, b.layers, strict=True)
        )
        print(
            f"repeat {rep}: every position {t_all:.1f} s ({n_tokens / t_all:.0f} tok/s), logits_to_keep=1 "
            f"{t_one:.1f} s ({n_tokens / t_one:.0f} tok/s), {t_all / t_one:.2f}x, identical caches {same}",
            flush=True,
        )


if __name__ == "__main__":
    main()
