"""The GRPO loss forward+backward of one group (G completions of one prompt) on the default model: TRL's layout
(one left-padded row per completion, the baseline) against the shared-prompt packing our trainer uses
(training/shared_prompt.py), measured in the same process on the same tokens. Reports seconds per
forward+backward of each, the speed-up, the largest log-prob difference and the relative gradient difference.

LoRA r=16 on every projection (a trained adapter: B != 0), activation checkpointing on as in the presets, TRL's
fused LM head. Random token ids (the cost does not depend on them). Run it alone (heavy):
    OMP_NUM_THREADS=2 flock /tmp/toolr0_heavy.lock python bench/shared_prompt.py --prompt 600 --completions 40,60,120,192
"""

from __future__ import annotations

import argparse
import time

from _inference_util import append_results, cpu_line


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="default")
    ap.add_argument("--prompt", type=int, default=600, help="prompt tokens")
    ap.add_argument(
        "--completions", default="40,60,120,192", help="completion lengths of the group, comma-separated"
    )
    ap.add_argument("--repeats", type=int, default=2, help="timed repeats of each layout (after one warm-up)")
    ap.add_argument("--no-results", action="store_true", help="do not append to bench/RESULTS.md")
    args = ap.parse_args()

    import torch
    from peft import get_peft_model
    from trl.trainer.utils import add_fused_lm_head

    from toolr0.inference.hf import HFSampler
    from toolr0.training.config import RolesConfig
    from toolr0.training.roles import lora_config
    from toolr0.training.shared_prompt import shared_prompt_logps

    torch.manual_seed(0)
    if args.model == "tiny":  # smoke run: a random 2-layer model, seconds
        from toolr0.inference.tiny import tiny_random_model

        model = tiny_random_model()[0]
    else:
        model = HFSampler.from_pretrained(args.model, dtype="auto", cpu_matmul="default").model
    add_fused_lm_head(model, outputs=("log_probs", "entropy"))
    model = get_peft_model(model, lora_config(RolesConfig(mode="lora", lora_r=16, lora_alpha=32)))
    for name, p in model.named_parameters():
        if "lora_B" in name:
            torch.nn.init.normal_(p, std=0.01)
    model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    model.enable_input_require_grads()
    model.train()

    lengths = [int(x) for x in args.completions.split(",")]
    keep = max(lengths)
    gen = torch.Generator().manual_seed(1)
    prompt = torch.randint(3, min(150000, model.config.vocab_size), (args.prompt,), generator=gen)
    rows = len(lengths)
    ids = torch.zeros(rows, args.prompt + keep, dtype=torch.long)
    mask = torch.zeros_like(ids)
    for r, n in enumerate(lengths):
        ids[r, : args.prompt] = prompt
        ids[r, args.prompt : args.prompt + n] = torch.randint(
            3, min(150000, model.config.vocab_size), (n,), generator=gen
        )
        mask[r, : args.prompt + n] = 1
    comp_mask = mask[:, -keep:].bool()

    def trl_layout():
        labels = ids.masked_fill(mask == 0, -100)
        labels[:, :-keep] = -100
        return model(input_ids=ids, attention_mask=mask, labels=labels, fused_lm_head=True).log_probs[
            :, -keep:
        ]

    def packed():
        return shared_prompt_logps(model, ids, mask, keep, compute_entropy=True)[0]

    out = {}
    for label, fn in (
        ("TRL layout, one row per completion (baseline)", trl_layout),
        ("shared prompt, packed", packed),
    ):
        times = []
        for i in range(args.repeats + 1):
            model.zero_grad(set_to_none=True)
            t0 = time.perf_counter()
            logp = fn()
            (-(logp * comp_mask).sum() / comp_mask.sum()).backward()
            if i:
                times.append(time.perf_counter() - t0)
        grad = torch.cat([p.grad.flatten() for p in model.parameters() if p.grad is not None])
        out[label] = (min(times), logp.detach(), grad)
        print(f"{label}: {' '.join(f'{t:.1f}' for t in times)} s", flush=True)
    (base_s, base_lp, base_g), (pack_s, pack_lp, pack_g) = out.values()
    dlp = float((base_lp - pack_lp)[comp_mask].abs().max())
    dg = float((base_g - pack_g).norm() / base_g.norm())
    ratio = base_s / pack_s
    tokens_trl = rows * (args.prompt + keep)
    tokens_packed = args.prompt + sum(n + 1 for n in lengths) - 1
    print(f"speed-up {ratio:.2f}x; max |d logp| {dlp:.2e}; relative grad difference {dg:.2e}")
    lines = [
        f"CPU {cpu_line()}, {next(model.parameters()).dtype}, {torch.get_num_threads()} threads. One group: prompt "
        f"{args.prompt} tokens, completions {args.completions} (positions run: TRL {tokens_trl}, packed "
        f"{tokens_packed}); LoRA r=16 on every projection, activation checkpointing on, fused LM head.",
        "",
        "| layout | forward+backward s (best of repeats) |",
        "|---|---|",
        *(f"| {label} | {s:.1f} |" for label, (s, _, _) in out.items()),
        "",
        f"Packed / TRL layout: **{ratio:.2f}x** faster; largest log-prob difference {dlp:.1e}, relative gradient "
        f"difference {dg:.1e} (float rounding).",
    ]
    if not args.no_results:
        append_results("GRPO loss forward+backward: shared prompt vs one row per completion", lines)


if __name__ == "__main__":
    main()
