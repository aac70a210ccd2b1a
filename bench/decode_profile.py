"""Where one decode step's time goes: torch.profiler over a few decode steps of the default model.

Prefills a batch of Solver prompts, then profiles ``--steps`` single-token forward passes (KV cache on) plus
the sampling work HFSampler adds (top-k / top-p warpers over the vocabulary, the softmax and the draw), and
prints the ops by self CPU time with the machine, dtype and attention implementation. Also times a bare
matmul of the model's largest weight at the same batch, as the compute this machine can do.

    OMP_NUM_THREADS=2 python bench/decode_profile.py --batch 8 --steps 8
"""

from __future__ import annotations

import argparse
import time

import torch
from _inference_util import cpu_line, solver_tasks

from toolr0.core.prompts import solver_messages
from toolr0.inference import cpu_matmul
from toolr0.inference.hf import HFSampler


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="default")
    ap.add_argument("--dtype", default="auto")
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--steps", type=int, default=8)
    ap.add_argument("--top", type=int, default=18, help="ops to print")
    ap.add_argument("--cpu-matmul", default="auto", choices=["auto", "onednn", "default"])
    ap.add_argument("--cpu-attention", default="default", choices=["default", "grouped"])
    args = ap.parse_args()

    sampler = HFSampler.from_pretrained(
        args.model, dtype=args.dtype, cpu_matmul=args.cpu_matmul, cpu_attention=args.cpu_attention
    )
    model, tok = sampler.model, sampler.tokenizer
    dtype = next(model.parameters()).dtype
    attn = getattr(model.config, "_attn_implementation", "?")
    switched = cpu_matmul.switched(model)
    print(
        f"model {args.model} ({dtype}, attention {attn}, cpu_matmul {args.cpu_matmul}: {switched} layers on "
        f"oneDNN), {torch.get_num_threads()} threads; CPU {cpu_line()}"
    )
    prompts = [solver_messages(t.question, t.tools) for t in solver_tasks(args.batch)]
    enc = tok(
        [sampler.render(p) for p in prompts], return_tensors="pt", padding=True, add_special_tokens=False
    )
    ids, mask = enc["input_ids"], enc["attention_mask"]
    from transformers import DynamicCache, TopKLogitsWarper, TopPLogitsWarper

    warpers = [TopKLogitsWarper(20), TopPLogitsWarper(0.8)]
    with torch.no_grad():
        cache = DynamicCache(config=model.config)
        t0 = time.perf_counter()
        out = model(input_ids=ids, attention_mask=mask, past_key_values=cache, logits_to_keep=1)
        prefill = time.perf_counter() - t0
        nxt = out.logits[:, -1].argmax(-1, keepdim=True)

        def step(nxt, mask):
            mask = torch.cat([mask, mask.new_ones((mask.shape[0], 1))], dim=-1)
            pos = (mask.cumsum(-1) - 1)[:, -1:]
            out = model(input_ids=nxt, attention_mask=mask, position_ids=pos, past_key_values=cache)
            scores = out.logits[:, -1].float()
            for w in warpers:
                scores = w(ids, scores)
            draw = torch.multinomial(torch.softmax(scores, -1), 1)
            return draw, mask

        nxt, mask = step(nxt, mask)  # warm-up
        t0 = time.perf_counter()
        with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as prof:
            for _ in range(args.steps):
                nxt, mask = step(nxt, mask)
        wall = time.perf_counter() - t0
        w = max(
            (m.weight for m in model.modules() if isinstance(m, torch.nn.Linear)), key=lambda t: t.numel()
        )
        w = w.detach()
        x = torch.randn(args.batch, w.shape[1], dtype=w.dtype)
        t0 = time.perf_counter()
        for _ in range(10):
            torch.nn.functional.linear(x, w)
        mm = (time.perf_counter() - t0) / 10
    n_params = sum(p.numel() for p in model.parameters())
    print(
        f"batch {args.batch}, prompt width {ids.shape[1]}: prefill {prefill:.2f} s; {args.steps} decode steps "
        f"{wall:.2f} s = {wall / args.steps * 1000:.0f} ms/step (profiled)"
    )
    flops = 2 * w.numel() * args.batch
    print(
        f"largest weight {tuple(w.shape)} at batch {args.batch}: {mm * 1000:.1f} ms ({flops / mm / 1e9:.1f} "
        f"GFLOP/s); whole model at that rate: {2 * n_params * args.batch / (flops / mm) * 1000:.0f} ms/step"
    )
    print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=args.top))


if __name__ == "__main__":
    main()
