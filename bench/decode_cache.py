"""Decode-step time with transformers' DynamicCache vs. the in-place KV cache (``inference/kv_cache.py``).

Prefills ``--prompts`` Solver prompts once, expands the cache ``--k``-fold (the pass@K shape), then runs
``--steps`` greedy decode steps from a copy of that cache for each kind, interleaved ``--repeats`` times, and
prints seconds per step, the ratio and whether both gave the same tokens.

    OMP_NUM_THREADS=2 python bench/decode_cache.py --prompts 8 --k 4 --steps 8 --cpu-attention grouped
"""

from __future__ import annotations

import argparse
import time

import torch
from _inference_util import cpu_line, solver_batch
from transformers import DynamicCache

from toolr0.inference.hf import HFSampler
from toolr0.inference.kv_cache import new_cache


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="default")
    ap.add_argument("--dtype", default="auto")
    ap.add_argument("--prompts", type=int, default=8)
    ap.add_argument("--k", type=int, default=4, help="cache expansion (samples per prompt)")
    ap.add_argument("--steps", type=int, default=8)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--cpu-attention", default="grouped", choices=["default", "grouped"])
    args = ap.parse_args()

    sampler = HFSampler.from_pretrained(args.model, dtype=args.dtype, cpu_attention=args.cpu_attention)
    model = sampler.model
    ids, mask = solver_batch(sampler, args.prompts)
    with torch.no_grad():
        base = DynamicCache(config=model.config)
        first = model(input_ids=ids, attention_mask=mask, past_key_values=base, logits_to_keep=1)
        first_tok = first.logits[:, -1].argmax(-1, keepdim=True)

    def run(kind: str) -> tuple[float, torch.Tensor]:
        cache = new_cache(model) if kind == "in place" else DynamicCache(config=model.config)
        for layer, src in zip(cache.layers, base.layers, strict=True):
            layer.update(src.keys, src.values)
        cache.batch_repeat_interleave(args.k)
        m, nxt = mask.repeat_interleave(args.k, 0), first_tok.repeat_interleave(args.k, 0)
        toks = []
        with torch.no_grad():
            t0 = time.perf_counter()
            for _ in range(args.steps):
                m = torch.cat([m, m.new_ones((m.shape[0], 1))], -1)
                out = model(input_ids=nxt, attention_mask=m, past_key_values=cache, logits_to_keep=1)
                nxt = out.logits[:, -1].argmax(-1, keepdim=True)
                toks.append(nxt)
            return (time.perf_counter() - t0) / args.steps, torch.cat(toks, 1)

    print(
        f"model {args.model} ({next(model.parameters()).dtype}, attention {model.config._attn_implementation}), "
        f"{torch.get_num_threads()} threads, CPU {cpu_line()}; {args.prompts} prompts × {args.k} rows, width "
        f"{ids.shape[1]}, {args.steps} greedy steps"
    )
    for rep in range(args.repeats):
        t_dyn, a = run("DynamicCache")
        t_own, b = run("in place")
        print(
            f"repeat {rep}: DynamicCache {t_dyn:.3f} s/step, in place {t_own:.3f} s/step, "
            f"ratio {t_dyn / t_own:.2f}x, same tokens {bool(torch.equal(a, b))}"
        )


if __name__ == "__main__":
    main()
