"""Sampling through a role's LoRA adapter in the self-play layout (one base, a generator and a solver adapter):
PEFT's unmerged layers (the baseline) against ``inference.merge_lora`` (a merged copy), measured in the same run on
the same Generator prompts. Reports generated tokens/s of each, the speed-up, the one-off merge time, and how many
seeded samples are identical (merging changes rounding, not the function), and each sampler's peak RSS over the
timed batch and a few adapter switches. No grammar: it costs both the same.

Run it alone (heavy):
    OMP_NUM_THREADS=2 flock /tmp/toolr0_heavy.lock python bench/lora_sampling.py \
        --adapter runs/cpu/iter_01/generator/final
"""

from __future__ import annotations

import argparse
import gc
import time

from _inference_util import PeakRSS, append_results, cpu_line

from toolr0.core.prompts import generator_messages
from toolr0.core.spec import SpecSampler, load_spec_file
from toolr0.inference.base import SamplingParams
from toolr0.inference.hf import HFSampler
from toolr0.inference.models import load_model


def _two_adapter_model(adapter_dir: str, dtype: str):
    """The base with the given adapter as "generator" and a fresh r=16 "solver" beside it (roles.mode lora)."""
    from peft import LoraConfig, PeftModel

    base, tok = load_model("default", dtype=dtype)
    model = PeftModel.from_pretrained(base, adapter_dir, adapter_name="generator")
    targets = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
    model.add_adapter("solver", LoraConfig(r=16, lora_alpha=32, target_modules=targets))
    model.set_adapter("solver")
    return model, tok


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "--adapter", required=True, help="a Generator LoRA adapter folder (iter_XX/generator/final)"
    )
    ap.add_argument("--dtype", default="auto")
    ap.add_argument("--prompts", type=int, default=24)
    ap.add_argument("--batch-size", type=int, default=24)
    ap.add_argument("--max-new-tokens", type=int, default=256)
    ap.add_argument(
        "--alternations",
        type=int,
        default=6,
        help="after the timed batch, this many 2-token calls alternating solver / generator adapters (memory)",
    )
    ap.add_argument("--no-results", action="store_true", help="do not append to bench/RESULTS.md")
    args = ap.parse_args()

    model, tok = _two_adapter_model(args.adapter, args.dtype)
    specs = SpecSampler(load_spec_file("kinds"), seed=13)
    convs = [generator_messages(specs.sample_one(i), "answer_first") for i in range(args.prompts)]
    params = SamplingParams(n=1, temperature=0.7, max_new_tokens=args.max_new_tokens, seed=0)
    results = {}
    for label, merge in (("unmerged PEFT layers (baseline)", False), ("merged copy (merge_lora)", True)):
        sampler = HFSampler(model, tok, batch_size=args.batch_size, max_batch_sequences=args.batch_size)
        sampler.merge_lora = merge
        with PeakRSS() as mem:
            t0 = time.perf_counter()
            warm = params.replace(max_new_tokens=2)
            sampler.generate(convs[:1], warm, adapter="generator")  # warm-up (and the merge)
            setup = time.perf_counter() - t0
            res = sampler.generate_detailed(convs, params, adapter="generator")
            for r in range(args.alternations):  # the roles take turns, as in stage B with references
                sampler.generate(convs[:4], warm, adapter="solver" if r % 2 == 0 else "generator")
        st = res.stats
        results[label] = (st, [row[0].text for row in res.completions], setup, mem)
        print(
            f"{label}: {st.completion_tokens} tokens in {st.seconds:.1f} s = {st.tokens_per_second:.2f} tok/s; "
            f"RSS {mem.start_gb:.2f} GB at start, peak {mem.peak_gb:.2f} GB"
        )
        del sampler
        gc.collect()

    (_, (base, base_texts, _, _)), (_, (merged, merged_texts, merge_s, _)) = results.items()
    same = sum(a == b for a, b in zip(base_texts, merged_texts, strict=True))
    ratio = merged.tokens_per_second / base.tokens_per_second
    print(f"speed-up {ratio:.2f}x; merge + warm-up {merge_s:.1f} s; identical samples {same}/{len(convs)}")
    lines = [
        cpu_line(),
        "",
        f"Generator adapter `{args.adapter}` beside a fresh solver adapter ({model.dtype}), {len(convs)} "
        f"`answer_first` prompts of the `kinds` spec file, T = 0.7 seed 0, batch {args.batch_size}, "
        f"max_new_tokens={args.max_new_tokens}, no grammar; then {args.alternations} short calls alternating "
        "the solver and generator adapters (the merged copy is remade at each switch). Peak RSS per sampler "
        "(/proc/self/statm every 20 ms; the first sampler's memory is freed before the second starts).",
        "",
        "| sampling | tokens | seconds | tok/s | setup s (warm-up, merge) | RSS at start GB | peak RSS GB |",
        "|---|---|---|---|---|---|---|",
        *(
            f"| {label} | {st.completion_tokens} | {st.seconds:.1f} | {st.tokens_per_second:.2f} | {s:.1f} | "
            f"{m.start_gb:.2f} | {m.peak_gb:.2f} |"
            for label, (st, _, s, m) in results.items()
        ),
        "",
        f"Merged / unmerged: **{ratio:.2f}x** tokens/s; identical seeded samples: {same} of {len(convs)}.",
    ]
    if not args.no_results:
        append_results("LoRA role adapter sampled merged vs unmerged (bench/lora_sampling.py)", lines)


if __name__ == "__main__":
    main()
