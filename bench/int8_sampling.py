"""int8 sampling (``model.cpu_matmul: int8``) against fp32 (``auto``), measured in the same run on the same
native-format Solver prompts: generated tokens/s of each, the speed-up, identical greedy outputs, and how many
replies call the right tools with the right arguments in each (made-up tasks, no benchmark data; the paired
benchmark check is an ``eval run --cpu-matmul int8`` beside an fp32 one, bench/RESULTS.md).

Run it alone (heavy):
    OMP_NUM_THREADS=2 flock /tmp/toolr0_heavy.lock python bench/int8_sampling.py
"""

from __future__ import annotations

import argparse

from _inference_util import append_results, cpu_line, solver_tasks

from toolr0.core.rewards.solver import solver_accuracy_score
from toolr0.core.solver_format import SolverFormat
from toolr0.inference.base import SamplingParams
from toolr0.inference.hf import HFSampler


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="default")
    ap.add_argument("--prompts", type=int, default=16)
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--max-new-tokens", type=int, default=96)
    ap.add_argument("--no-results", action="store_true", help="do not append to bench/RESULTS.md")
    args = ap.parse_args()

    fmt = SolverFormat("native")
    tasks = solver_tasks(args.prompts)
    convs = [fmt.messages(t.question, t.tools) for t in tasks]
    params = SamplingParams(n=1, temperature=0.0, max_new_tokens=args.max_new_tokens, seed=0)
    results = {}
    for label, mode in (("fp32 (cpu_matmul auto, baseline)", "auto"), ("int8 (cpu_matmul int8)", "int8")):
        sampler = HFSampler.from_pretrained(
            args.model, dtype="fp32", batch_size=args.batch_size, cpu_matmul=mode
        )
        sampler.generate(convs[:1], params.replace(max_new_tokens=4))  # warm-up (packs the weights)
        res = sampler.generate_detailed(convs, params)
        texts = [row[0].text for row in res.completions]
        right = sum(
            solver_accuracy_score(x, t.calls, fmt=fmt) == 1.0 for x, t in zip(texts, tasks, strict=True)
        )
        results[label] = (res.stats, texts, right)
        st = res.stats
        print(
            f"{label}: {st.completion_tokens} tokens in {st.seconds:.1f} s = {st.tokens_per_second:.1f} tok/s; "
            f"right {right}/{len(tasks)}",
            flush=True,
        )
        del sampler

    (_, (base, base_texts, base_right)), (_, (q, q_texts, q_right)) = results.items()
    same = sum(a == b for a, b in zip(base_texts, q_texts, strict=True))
    ratio = q.tokens_per_second / base.tokens_per_second
    print(f"speed-up {ratio:.2f}x; identical greedy outputs {same}/{len(convs)}")
    lines = [
        f"CPU: {cpu_line()}. Model `{args.model}` fp32, {len(convs)} made-up native-format Solver prompts, greedy, "
        f"batch {args.batch_size}, max_new_tokens={args.max_new_tokens}.",
        "",
        "| matmuls | tokens | seconds | tok/s | right calls |",
        "|---|---|---|---|---|",
        *(
            f"| {label} | {st.completion_tokens} | {st.seconds:.1f} | {st.tokens_per_second:.1f} | {r}/{len(tasks)} |"
            for label, (st, _, r) in results.items()
        ),
        "",
        f"int8 / fp32: **{ratio:.2f}x** tokens/s; identical greedy outputs: {same} of {len(convs)}.",
    ]
    if not args.no_results:
        append_results("int8 sampling vs fp32 (bench/int8_sampling.py)", lines)


if __name__ == "__main__":
    main()
