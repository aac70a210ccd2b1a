"""transformers' SDPA vs. grouped-query decode attention (``model.cpu_attention: grouped``) on three shapes.

Times, alternating the two attention functions on one loaded model: a prefill of ``--prompts`` Solver prompts, a
training forward+backward of 4 × 400 of their tokens, and a decode step at 4 × ``--prompts`` rows.

    OMP_NUM_THREADS=2 python bench/attention_shapes.py --prompts 8 --repeats 2
"""

from __future__ import annotations

import argparse
import time

import torch
from _inference_util import cpu_line, solver_batch
from transformers import DynamicCache

from toolr0.inference import attention
from toolr0.inference.hf import HFSampler


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="default")
    ap.add_argument("--prompts", type=int, default=8)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--decode-only", action="store_true", help="skip the prefill and training timings")
    args = ap.parse_args()

    sampler = HFSampler.from_pretrained(args.model, dtype="auto")
    model = sampler.model
    ids, mask = solver_batch(sampler, args.prompts)
    print(
        f"{next(model.parameters()).dtype}, {torch.get_num_threads()} threads, CPU {cpu_line()}; width {ids.shape[1]}"
    )

    def prefill() -> None:
        with torch.no_grad():
            model(
                input_ids=ids,
                attention_mask=mask,
                past_key_values=DynamicCache(config=model.config),
                logits_to_keep=1,
            )

    def train() -> None:
        model.train()
        model(input_ids=ids[:4, :400], attention_mask=mask[:4, :400]).logits.float().mean().backward()
        model.zero_grad(set_to_none=True)
        model.eval()

    def decode() -> float:
        big, m = ids.repeat(4, 1), mask.repeat(4, 1)
        with torch.no_grad():
            cache = DynamicCache(config=model.config)
            nxt = model(input_ids=big, attention_mask=m, past_key_values=cache, logits_to_keep=1).logits[
                :, -1
            ]
            nxt = nxt.argmax(-1, keepdim=True)
            t0 = time.perf_counter()
            for _ in range(3):
                m = torch.cat([m, m.new_ones((m.shape[0], 1))], -1)
                out = model(input_ids=nxt, attention_mask=m, past_key_values=cache, logits_to_keep=1)
                nxt = out.logits[:, -1].argmax(-1, keepdim=True)
            return (time.perf_counter() - t0) / 3

    for rep in range(args.repeats):
        for impl in ("sdpa", attention.register()):
            model.set_attn_implementation(impl)
            t_prefill = t_train = float("nan")
            if not args.decode_only:
                t0 = time.perf_counter()
                prefill()
                t_prefill = time.perf_counter() - t0
                t0 = time.perf_counter()
                train()
                t_train = time.perf_counter() - t0
            print(
                f"repeat {rep} {impl:12s} prefill {t_prefill:6.2f} s  train fwd+bwd {t_train:6.2f} s  "
                f"decode step ({4 * args.prompts} rows) {decode():6.3f} s",
                flush=True,
            )


if __name__ == "__main__":
    main()
