"""Grammar-constrained Generator sampling at several decode batch sizes, same prompts, interleaved.

On CPU a decode step reads every weight once whatever the batch, so more rows per step should buy tokens/s
until the per-row work (attention over the prompt, the grammar mask, the sampling draw) dominates. This runs the
quickstart's candidate stage (``compact_noexample`` prompts, ground_calls grammar, T=0.7, stop at the answer
tag) over ``--prompts`` TaskSpecs with ``inference.batch_size`` set to each of ``--batches``, and prints
generated tokens/s and the ratio to the first batch size (the baseline, measured in the same run).

    OMP_NUM_THREADS=2 python bench/gen_batch.py --prompts 24 --batches 8,24 --gen-tokens 160
"""

from __future__ import annotations

import argparse

import torch
from _inference_util import cpu_line

from toolr0.core.prompts import generator_messages
from toolr0.core.spec import SpecSampler, load_spec_file
from toolr0.inference.base import SamplingParams
from toolr0.inference.grammar import StructuredConfig
from toolr0.inference.hf import HFSampler
from toolr0.inference.structured import constrained


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="default")
    ap.add_argument("--prompts", type=int, default=24)
    ap.add_argument("--batches", default="8,24")
    ap.add_argument("--gen-tokens", type=int, default=160)
    ap.add_argument("--repeats", type=int, default=1)
    ap.add_argument("--seed", type=int, default=13)
    ap.add_argument("--cpu-attention", default="default", choices=["default", "grouped"])
    args = ap.parse_args()

    sampler = HFSampler.from_pretrained(args.model, dtype="auto", cpu_attention=args.cpu_attention)
    specs = SpecSampler(load_spec_file(None), seed=args.seed).sample(args.prompts)
    prompts = [generator_messages(s, "compact_noexample") for s in specs]
    scfg = StructuredConfig(enabled=True, budget_tokens=args.gen_tokens, ground_calls=True)
    params = SamplingParams(
        n=1, temperature=0.7, max_new_tokens=args.gen_tokens, stop=("</tool_call_answer>",), seed=args.seed
    )
    batches = [int(b) for b in args.batches.split(",")]
    print(
        f"model {args.model} ({next(sampler.model.parameters()).dtype}, attention {args.cpu_attention}), "
        f"{torch.get_num_threads()} threads, CPU {cpu_line()}; {args.prompts} Generator prompts, "
        f"{args.gen_tokens} tokens, grammar budget {args.gen_tokens}"
    )
    with constrained(sampler, specs, scfg):  # compile the grammars once, outside the timings
        sampler.generate_detailed(prompts, params.replace(max_new_tokens=1))
    tps: dict[int, list[float]] = {b: [] for b in batches}
    for rep in range(args.repeats):
        for b in batches:
            sampler.batch_size = sampler.max_batch_sequences = b
            with constrained(sampler, specs, scfg):
                st = sampler.generate_detailed(prompts, params.replace(seed=args.seed + rep)).stats
            tps[b].append(st.completion_tokens / st.seconds)
            print(
                f"repeat {rep} batch {b}: {st.completion_tokens} tokens in {st.seconds:.1f} s = "
                f"{tps[b][-1]:.2f} tok/s (prefilled {getattr(st, 'prefill_tokens', st.prompt_tokens)} tokens)",
                flush=True,
            )
    base = sum(tps[batches[0]]) / len(tps[batches[0]])
    for b in batches:
        mean = sum(tps[b]) / len(tps[b])
        print(f"batch {b}: {mean:.2f} tok/s, {mean / base:.2f}x batch {batches[0]}")


if __name__ == "__main__":
    main()
