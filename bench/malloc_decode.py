"""Candidate sampling with glibc's default allocator settings vs. keeping freed memory in the process.

A CPU decode step of a batch allocates tensors far above glibc's mmap threshold (transformers' grouped-query
attention copies every KV head 7x per layer: ~150 MB per layer at 24 rows of ~900 tokens in fp32), so every step
maps fresh pages and the kernel zero-fills them one 4 KiB fault at a time; a self-play run on 2 AVX2 cores spent
~45 % of its CPU time in the kernel (315,000 minor faults/s). Each mode runs in its own child process (allocator
settings hold per process), on the same Generator prompts, greedy, so the tokens must be identical:

- ``default``: glibc as it comes;
- ``heap``: ``mallopt(M_MMAP_MAX, 0)`` and a 2 GB ``M_TRIM_THRESHOLD``: big blocks come from the heap and freed
  ones are reused, not unmapped (``keep_freed_memory`` below);
- ``thp``: ``GLIBC_TUNABLES=glibc.malloc.hugetlb=1``: mapped blocks get transparent huge pages (2 MiB faults).

Prints wall time, user / system CPU seconds, minor faults and peak RSS per mode, and the ratio of each mode's
tokens/s to ``default``'s, measured in the same run (modes interleaved, ``--repeats`` rounds).

    OMP_NUM_THREADS=2 python bench/malloc_decode.py --prompts 24 --gen-tokens 48 --modes default,heap,thp
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time

M_TRIM_THRESHOLD, M_MMAP_MAX = -1, -4  # glibc's mallopt parameter numbers (malloc.h)


def keep_freed_memory() -> bool:
    """Make glibc's malloc serve every block from the heap and keep freed memory for reuse, instead of mapping
    each block above its mmap threshold afresh and unmapping it on free: a CPU decode step allocates tensors of
    ~150 MB per layer, and re-mapping them costs a zero-filled 4 KiB page fault each.
    Returns whether it applied (glibc on Linux only; elsewhere nothing changes)."""
    if not sys.platform.startswith("linux"):
        return False
    import ctypes
    import ctypes.util

    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # musl and other libcs have no mallopt
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    return bool(mallopt(M_MMAP_MAX, 0)) and bool(mallopt(M_TRIM_THRESHOLD, 2**31 - 1))


def child(mode: str, prompts: int, gen_tokens: int, seed: int) -> dict:
    if mode == "heap":
        keep_freed_memory()
    import torch

    from toolr0.core.prompts import generator_messages
    from toolr0.core.spec import SpecSampler, load_spec_file
    from toolr0.inference.base import SamplingParams
    from toolr0.inference.hf import HFSampler

    sampler = HFSampler.from_pretrained("default", dtype="auto")
    specs = SpecSampler(load_spec_file("kinds"), seed=seed).sample(prompts)
    msgs = [generator_messages(s, "answer_first") for s in specs]
    params = SamplingParams(n=1, temperature=0.0, max_new_tokens=gen_tokens, seed=seed)
    r0, t0 = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter()
    res = sampler.generate_detailed(msgs, params)
    wall, r1 = time.perf_counter() - t0, resource.getrusage(resource.RUSAGE_SELF)
    texts = res.texts()
    return {
        "mode": mode,
        "dtype": str(next(sampler.model.parameters()).dtype),
        "threads": torch.get_num_threads(),
        "wall_s": wall,
        "user_s": r1.ru_utime - r0.ru_utime,
        "sys_s": r1.ru_stime - r0.ru_stime,
        "minflt": r1.ru_minflt - r0.ru_minflt,
        "peak_rss_gb": r1.ru_maxrss / 1e6,
        "tokens": res.stats.completion_tokens,
        "texts_hash": hash(json.dumps(texts)),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--prompts", type=int, default=24)
    ap.add_argument("--gen-tokens", type=int, default=48)
    ap.add_argument("--modes", default="default,heap,thp")
    ap.add_argument("--repeats", type=int, default=1)
    ap.add_argument("--seed", type=int, default=13)
    ap.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        print(json.dumps(child(args.child, args.prompts, args.gen_tokens, args.seed)))
        return
    from _inference_util import cpu_line

    rows = []
    for rep in range(args.repeats):
        for mode in args.modes.split(","):
            env = {**os.environ, "PYTHONHASHSEED": "0"}
            if mode == "thp":
                env["GLIBC_TUNABLES"] = "glibc.malloc.hugetlb=1"
            cmd = [sys.executable, __file__, "--child", mode, "--prompts", str(args.prompts),
                   "--gen-tokens", str(args.gen_tokens), "--seed", str(args.seed)]  # fmt: skip
            out = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True).stdout
            row = {**json.loads(out.strip().splitlines()[-1]), "repeat": rep}
            rows.append(row)
            print(json.dumps(row), flush=True)
    base = [r for r in rows if r["mode"] == "default"]
    base_tps = sum(r["tokens"] / r["wall_s"] for r in base) / len(base) if base else None
    print(f"\nCPU {cpu_line()}; {rows[0]['dtype']}, {rows[0]['threads']} threads; {args.prompts} answer_first "
          f"Generator prompts, greedy, {args.gen_tokens} new tokens, prefill included")  # fmt: skip
    print(
        "| mode | repeat | wall s | user s | sys s | minor faults | peak RSS GB | tok/s | vs default | same text |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    ref_hash = base[0]["texts_hash"] if base else None
    for r in rows:
        tps = r["tokens"] / r["wall_s"]
        ratio = f"{tps / base_tps:.2f}x" if base_tps else "-"
        print(f"| {r['mode']} | {r['repeat']} | {r['wall_s']:.1f} | {r['user_s']:.1f} | {r['sys_s']:.1f} | "
              f"{r['minflt']:,} | {r['peak_rss_gb']:.2f} | {tps:.2f} | {ratio} | {r['texts_hash'] == ref_hash} |")  # fmt: skip


if __name__ == "__main__":
    main()
