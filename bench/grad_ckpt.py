"""A GRPO-shaped LoRA forward+backward with activation checkpointing on vs. off: seconds, peak RSS, same gradients.

The GRPO phases run TRL with ``gradient_checkpointing`` (the training config's default, TRL's too): every layer's
forward runs twice per step so that activations need not be kept. On a CPU box with RAM to spare that is compute
paid for memory nobody is short of. This times the loss TRL computes (log-probabilities of the completion tokens
of ``--rows`` sequences in one forward, LoRA r=16 on every projection, fp32 on CPU) both ways, each variant in its
own process so that its peak RSS is its own, alternating, and checks that the LoRA gradients agree.

    OMP_NUM_THREADS=2 python bench/grad_ckpt.py --rows 4 --prompt 600 --completion 320 --repeats 2
    python bench/grad_ckpt.py --model tiny --prompt 32 --completion 16 --no-results   # smoke run (seconds)
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

from _inference_util import append_results, cpu_line


def one_variant(args: argparse.Namespace) -> dict:
    import torch
    from peft import get_peft_model

    from toolr0.inference.hf import HFSampler
    from toolr0.training.config import RolesConfig
    from toolr0.training.roles import lora_config

    torch.manual_seed(0)
    if args.model == "tiny":  # smoke run: a random 2-layer model, seconds
        from toolr0.inference.tiny import tiny_random_model

        model = tiny_random_model()[0]
    else:
        model = HFSampler.from_pretrained(args.model, dtype="auto").model
    model = get_peft_model(model, lora_config(RolesConfig(mode="lora", lora_r=16, lora_alpha=32)))
    for name, p in model.named_parameters():  # a trained adapter: B != 0, so gradients reach every LoRA pair
        if "lora_B" in name:
            torch.nn.init.normal_(p, std=0.01)
    if args.checkpointing:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        model.enable_input_require_grads()
    model.train()
    vocab = model.config.vocab_size
    gen = torch.Generator().manual_seed(1)
    width = args.prompt + args.completion
    ids = torch.randint(3, min(vocab, 150000), (args.rows, width), generator=gen)
    mask = torch.ones_like(ids)
    for r in range(args.rows):  # left padding as in a real batch: rows' prompts differ in length
        mask[r, : r * args.prompt // (4 * args.rows)] = 0
    times = []
    for _ in range(args.steps):
        t0 = time.perf_counter()
        logits = model(input_ids=ids, attention_mask=mask, logits_to_keep=args.completion + 1).logits[:, :-1]
        target = ids[:, -args.completion :]
        logp = torch.gather(logits.float().log_softmax(-1), 2, target[..., None]).squeeze(-1)
        (-logp.mean()).backward()
        times.append(time.perf_counter() - t0)
        grads = [p.grad.detach().clone() for n, p in model.named_parameters() if p.grad is not None]
        model.zero_grad(set_to_none=True)
    flat = torch.cat([g.flatten() for g in grads])
    return {
        "checkpointing": args.checkpointing,
        "times": times,
        "peak_rss_gb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6,
        "grad_norm": float(flat.norm()),
        "grad_head": flat[:4096].tolist(),
        "dtype": str(next(model.parameters()).dtype),
        "threads": torch.get_num_threads(),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="default")
    ap.add_argument("--rows", type=int, default=4, help="sequences per forward (per_device_train_batch_size)")
    ap.add_argument("--prompt", type=int, default=600, help="prompt tokens per row")
    ap.add_argument("--completion", type=int, default=320, help="completion tokens per row")
    ap.add_argument("--steps", type=int, default=2, help="steps per process (the first warms up)")
    ap.add_argument("--repeats", type=int, default=2, help="off/on pairs, alternating")
    ap.add_argument("--no-results", action="store_true", help="do not append to bench/RESULTS.md")
    ap.add_argument("--checkpointing", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        print("RESULT " + json.dumps(one_variant(args)))
        return

    runs = []
    base = [sys.executable, str(Path(__file__).resolve()), "--child", "--model", args.model]
    base += ["--rows", str(args.rows), "--prompt", str(args.prompt), "--completion", str(args.completion)]
    base += ["--steps", str(args.steps)]
    for rep in range(args.repeats):
        for ckpt in (False, True):
            out = subprocess.run(base + (["--checkpointing"] if ckpt else []), capture_output=True, text=True)
            line = next((x for x in out.stdout.splitlines() if x.startswith("RESULT ")), None)
            if line is None:
                why = (
                    f"killed by signal {-out.returncode} (9: most likely out of memory)"
                    if out.returncode < 0
                    else ""
                )
                sys.exit(f"variant checkpointing={ckpt} failed {why}:\n{out.stderr[-3000:]}")
            res = json.loads(line[7:]) | {"repeat": rep}
            runs.append(res)
            print(
                f"rep {rep} checkpointing {'on ' if ckpt else 'off'}: step s {' '.join(f'{t:.1f}' for t in res['times'])}, "
                f"peak RSS {res['peak_rss_gb']:.2f} GB, grad norm {res['grad_norm']:.6f}",
                flush=True,
            )
    ref = runs[0]["grad_head"]
    same = all(r["grad_head"] == ref for r in runs)
    close = all(max(abs(a - b) for a, b in zip(r["grad_head"], ref, strict=True)) < 1e-6 for r in runs)
    lines = [
        "| checkpointing | repeat | last step s | peak RSS GB | LoRA grad norm |",
        "|---|---|---|---|---|",
    ]
    for r in runs:
        lines.append(
            f"| {'on' if r['checkpointing'] else 'off'} | {r['repeat']} | {r['times'][-1]:.1f} | "
            f"{r['peak_rss_gb']:.2f} | {r['grad_norm']:.6f} |"
        )
    off = [r["times"][-1] for r in runs if not r["checkpointing"]]
    on = [r["times"][-1] for r in runs if r["checkpointing"]]
    ratio = (sum(on) / len(on)) / (sum(off) / len(off))
    lines += [
        "",
        f"Checkpointing on / off, mean last-step time: **{ratio:.2f}x**; gradients bit-identical: {same} "
        f"(within 1e-6: {close}).",
    ]
    table = "\n".join(lines)
    print(table)
    if not args.no_results:
        head = (
            f"CPU {cpu_line()}, {runs[0]['dtype']}; LoRA r=16 on every projection, {args.rows} rows × "
            f"({args.prompt} prompt + {args.completion} completion) tokens, loss on the completion tokens' "
            "log-probabilities (TRL's per-token log-probs), each variant in its own process, alternating."
        )
        append_results(
            "GRPO forward+backward with activation checkpointing on vs. off (bench/grad_ckpt.py)",
            [head, "", *lines],
        )


if __name__ == "__main__":
    main()
