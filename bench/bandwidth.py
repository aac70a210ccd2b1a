"""Decode memory-bandwidth limit of this machine for a model, and our batch-1 decode speed as a fraction.

Batch-1 decoding reads every weight once per generated token, so tokens/s <= bandwidth / weight bytes.
Bandwidth is measured with large-array read (sum) and copy, in numpy (1 thread) and torch (all threads);
the best figure is the limit's denominator. Our decode speed excludes prefill: (time for 1+M tokens −
time for 1 token) / M, greedy, no early stop.

    OMP_NUM_THREADS=2 flock /tmp/toolr0_heavy.lock python bench/bandwidth.py
"""

from __future__ import annotations

import argparse

import numpy as np
import torch
from _inference_util import Timer, append_results

from toolr0.inference.base import SamplingParams
from toolr0.inference.hf import HFSampler


def _best(fn, repeats: int = 5) -> float:
    best = float("inf")
    for _ in range(repeats):
        with Timer() as t:
            fn()
        best = min(best, t.s)
    return best


def measure_bandwidth(mib: int) -> dict[str, float]:
    n = mib * (1 << 20) // 8
    a = np.ones(n, dtype=np.float64)
    b = np.empty_like(a)
    nbytes = a.nbytes
    out = {
        "numpy read (sum)": nbytes / _best(lambda: a.sum()) / 1e9,
        "numpy copy (read+write)": 2 * nbytes / _best(lambda: np.copyto(b, a)) / 1e9,
    }
    ta, tb = torch.from_numpy(a), torch.from_numpy(b)
    out["torch read (sum)"] = nbytes / _best(lambda: ta.sum()) / 1e9
    out["torch copy (read+write)"] = 2 * nbytes / _best(lambda: tb.copy_(ta)) / 1e9
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="default")
    ap.add_argument("--dtype", default="auto")
    ap.add_argument("--mib", type=int, default=1024, help="array size for the bandwidth test")
    ap.add_argument("--tokens", type=int, default=64)
    ap.add_argument("--no-results", action="store_true")
    args = ap.parse_args()

    bw = measure_bandwidth(args.mib)
    for k, v in bw.items():
        print(f"{k}: {v:.1f} GB/s")
    read_bw, best_bw = max(bw["numpy read (sum)"], bw["torch read (sum)"]), max(bw.values())

    sampler = HFSampler.from_pretrained(args.model, dtype=args.dtype)
    model = sampler.model
    # bytes read per decoded token: every parameter once (tied embedding read once, by the output layer)
    weight_bytes = sum(p.numel() * p.element_size() for p in model.parameters())
    conv = [{"role": "user", "content": "Write a long story about a lighthouse keeper."}]
    greedy = SamplingParams(n=1, temperature=0.0, max_new_tokens=1)
    sampler.eos_ids = set()  # decode exactly the requested number of tokens
    sampler.generate([conv], greedy.replace(max_new_tokens=4))  # warm-up
    t1 = min(_timed(sampler, conv, greedy) for _ in range(2))
    tm = _timed(sampler, conv, greedy.replace(max_new_tokens=1 + args.tokens))
    ours = args.tokens / (tm - t1)
    lim_read, lim_best = read_bw * 1e9 / weight_bytes, best_bw * 1e9 / weight_bytes
    print(
        f"weights {weight_bytes / 1e9:.3f} GB ({model.dtype}); decode limit {lim_read:.1f} tok/s (read bw) / "
        f"{lim_best:.1f} tok/s (best bw); ours {ours:.1f} tok/s = {ours / lim_read:.0%} / {ours / lim_best:.0%}"
    )

    lines = [
        f"Model `{args.model}`, {weight_bytes / 1e9:.3f} GB of weights ({model.dtype}) read per decoded token.",
        "",
        "| bandwidth test | GB/s |",
        "|---|---|",
    ]
    lines += [f"| {k} ({args.mib} MiB array) | {v:.1f} |" for k, v in bw.items()]
    lines += [
        "",
        "| figure | value |",
        "|---|---|",
        f"| decode limit at read bandwidth ({read_bw:.1f} GB/s) | {lim_read:.1f} tok/s |",
        f"| decode limit at best bandwidth ({best_bw:.1f} GB/s) | {lim_best:.1f} tok/s |",
        f"| our batch-1 greedy decode (prefill excluded, {args.tokens} tokens) | {ours:.1f} tok/s |",
        f"| fraction of the limit | **{ours / lim_read:.0%}** (read) / **{ours / lim_best:.0%}** (best) |",
    ]
    if not args.no_results:
        append_results("Decode memory-bandwidth limit (bench/bandwidth.py)", lines)


def _timed(sampler: HFSampler, conv: list[dict[str, str]], params: SamplingParams) -> float:
    with Timer() as t:
        sampler.generate([conv], params)
    return t.s


if __name__ == "__main__":
    main()
