"""Each sampling stage of a self-play iteration against its own bound, measured side by side in one run.

Stages (small fixed sizes, the quickstart's settings): ``generate`` (grammar-constrained Generator
candidates, one per TaskSpec, T=0.7, ground_calls on), ``passk`` (K Solver samples per task, T=0.7),
``verify`` (cross-verification: k near-greedy Solver samples per task) and, with ``--grpo``, the GRPO
update (forward+backward of a group's tokens, LoRA) against the rollout that produces those tokens.

The bound of a sampling stage is the same engine on the same prompts, batch and n, decoding without the
grammar, stop strings or eos for exactly as many steps as the stage's longest row: the most generated
tokens per second this engine gives for that batch. Per stage it prints generated tokens/s, the prompt
tokens actually prefilled, ratio = stage tok/s / bound tok/s, and the same stage as a static batch
(``drop_finished=False``: ``model.generate()`` decoding every row until the longest ends, the engine before
finished rows were dropped), with whether both gave the same tokens. Row fill = generated tokens / (rows ×
decode steps): the share of a static batch's slots that are real tokens; row-steps run = the share of those
slots the stage's forward passes actually computed. Stage, static and bound runs are interleaved and
repeated (``--repeats``) so a shared machine's noise hits all alike; read the ratios, not the seconds.

    OMP_NUM_THREADS=2 flock /tmp/toolr0_heavy.lock python bench/iteration.py --label after
    python bench/iteration.py --model tiny --no-results      # smoke run on a random tiny model (seconds)
"""

from __future__ import annotations

import argparse
import statistics
import time
from dataclasses import dataclass, field
from typing import Any

import torch
from _inference_util import append_results, cpu_line, solver_tasks

from toolr0.core.prompts import generator_messages, solver_messages
from toolr0.core.spec import SpecSampler, load_spec_file
from toolr0.inference import cpu_matmul
from toolr0.inference.base import GenerationResult, SamplingParams
from toolr0.inference.grammar import StructuredConfig, build_ebnf
from toolr0.inference.hf import HFSampler
from toolr0.inference.structured import compile_grammar, constrained

STOP_TASK = ("</tool_call_answer>",)


@dataclass
class Row:
    """Totals of one stage (or its bound) over the repeats."""

    seconds: list[float] = field(default_factory=list)
    tokens: int = 0
    prompt_tokens: int = 0
    prefill_tokens: int = 0
    steps: int = 0
    rows: int = 0
    slots: int = 0  # rows × decode steps: what the batch could have generated
    row_steps: int = 0  # rows × steps the forward passes actually ran (finished rows dropped or not)

    def add(self, res: GenerationResult, rows: int) -> None:
        st = res.stats
        self.seconds.append(st.seconds)
        self.tokens += st.completion_tokens
        self.prompt_tokens += st.prompt_tokens
        self.prefill_tokens += getattr(st, "prefill_tokens", st.prompt_tokens)
        self.row_steps += st.decoded_row_steps
        steps = max((c.completion_tokens for row in res.completions for c in row), default=0)
        self.steps += steps
        self.rows += rows
        self.slots += rows * steps

    @property
    def tps(self) -> float:
        return self.tokens / sum(self.seconds) if self.seconds else 0.0


def _suppress_eos_factory(sampler: HFSampler) -> Any:
    """A logits-processor factory banning every eos id: the bound decodes exactly max_new_tokens."""
    from transformers import SuppressTokensLogitsProcessor

    eos = sorted(sampler.eos_ids)

    def factory(indices: list[int], n: int) -> list[Any]:
        return [SuppressTokensLogitsProcessor(eos)]

    return factory


def run_stage(
    sampler: HFSampler,
    prompts: list[list[dict[str, str]]],
    params: SamplingParams,
    repeats: int,
    specs: list[Any] | None = None,
    scfg: StructuredConfig | None = None,
) -> tuple[Row, Row, Row, list[list[str]], bool]:
    """(stage, stage without dropping finished rows, bound, first stage texts, same tokens both ways):
    interleaved stage, static-batch stage and bound runs, `repeats` times each."""
    stage, static, bound = Row(), Row(), Row()
    texts: list[list[str]] = []
    same = True
    sampler.batch_size = len(prompts)
    sampler.max_batch_sequences = len(prompts) * params.n
    for r in range(repeats):
        p = params.replace(seed=(params.seed or 0) + r)
        runs = []
        for drop in (True, False):
            sampler.drop_finished = drop
            try:
                with constrained(sampler, specs or [], scfg):
                    runs.append(sampler.generate_detailed(prompts, p))
            finally:
                sampler.drop_finished = True
        res = runs[0]
        stage.add(res, len(prompts) * p.n)
        static.add(runs[1], len(prompts) * p.n)
        same = same and res.texts() == runs[1].texts()
        texts = texts or res.texts()
        steps = max((c.completion_tokens for row in res.completions for c in row), default=1)
        previous = sampler.logits_processor_factory
        sampler.logits_processor_factory = _suppress_eos_factory(sampler)
        try:
            b = sampler.generate_detailed(prompts, p.replace(stop=(), max_new_tokens=max(1, steps)))
        finally:
            sampler.logits_processor_factory = previous
        bound.add(b, len(prompts) * p.n)
    return stage, static, bound, texts, same


def grpo_bound(sampler: HFSampler, prompts: list[list[dict[str, str]]], completions: list[str]) -> float:
    """Seconds of one forward+backward (LoRA r=16, as roles.mode=lora) over the prompt+completion tokens."""
    from peft import LoraConfig, get_peft_model

    tok = sampler.tokenizer
    texts = [sampler.render(p) + c for p, c in zip(prompts, completions, strict=True)]
    enc = tok(texts, return_tensors="pt", padding=True, add_special_tokens=False)
    model = get_peft_model(
        sampler.model, LoraConfig(r=16, lora_alpha=32, target_modules="all-linear", task_type="CAUSAL_LM")
    )
    model.train()
    t0 = time.perf_counter()
    out = model(**enc, labels=enc["input_ids"])
    out.loss.backward()
    secs = time.perf_counter() - t0
    model.zero_grad(set_to_none=True)
    sampler.model = model.unload()
    sampler.model.eval()
    return secs


def load_sampler(args: argparse.Namespace) -> HFSampler:
    if args.model == "tiny":
        from toolr0.inference.tiny import tiny_random_model

        model, tok = tiny_random_model()
        return HFSampler(model, tok, checkpoint_id="tiny")
    return HFSampler.from_pretrained(
        args.model,
        dtype=args.dtype,
        threads=args.threads,
        cpu_matmul=args.cpu_matmul,
        cpu_attention=args.cpu_attention,
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="default", help="'default', a folder, or 'tiny' (random, smoke run)")
    ap.add_argument("--dtype", default="auto")
    ap.add_argument("--cpu-matmul", default="auto", choices=["auto", "onednn", "default"])
    ap.add_argument("--cpu-attention", default="default", choices=["default", "grouped"])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--prompts", type=int, default=8, help="prompts per stage (one batch)")
    ap.add_argument("--gen-tokens", type=int, default=96, help="Generator max_new_tokens and grammar budget")
    ap.add_argument("--k", type=int, default=4, help="pass@K samples per task")
    ap.add_argument("--k-verify", type=int, default=2, help="cross-verification samples per task")
    ap.add_argument("--solver-tokens", type=int, default=48)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--stages", default="generate,passk", help="of generate, passk, verify")
    ap.add_argument("--grpo", action="store_true", help="also time forward+backward of a GRPO group")
    ap.add_argument("--label", default="", help="name of this measurement in RESULTS.md (before/after)")
    ap.add_argument("--seed", type=int, default=13)
    ap.add_argument("--no-results", action="store_true", help="do not append to bench/RESULTS.md")
    args = ap.parse_args()

    sampler = load_sampler(args)
    dtype = str(next(sampler.model.parameters()).dtype).replace("torch.", "")
    onednn = cpu_matmul.switched(sampler.model)
    print(
        f"model {args.model} ({dtype}, {onednn} layers on oneDNN), {torch.get_num_threads()} threads; CPU: {cpu_line()}"
    )
    specs = SpecSampler(load_spec_file(None), seed=args.seed).sample(args.prompts)
    tasks = solver_tasks(args.prompts)
    scfg = StructuredConfig(enabled=True, budget_tokens=args.gen_tokens, ground_calls=True)
    plan = {
        "generate": (
            [generator_messages(s, "compact_noexample") for s in specs],
            SamplingParams(
                n=1, temperature=0.7, max_new_tokens=args.gen_tokens, stop=STOP_TASK, seed=args.seed
            ),
            specs,
            scfg,
        ),
        "passk": (
            [solver_messages(t.question, t.tools) for t in tasks],
            SamplingParams(
                n=args.k, temperature=0.7, max_new_tokens=args.solver_tokens, stop=STOP_TASK, seed=1
            ),
            None,
            None,
        ),
        "verify": (
            [solver_messages(t.question, t.tools) for t in tasks],
            SamplingParams(
                n=args.k_verify, temperature=0.001, max_new_tokens=args.solver_tokens, stop=STOP_TASK, seed=2
            ),
            None,
            None,
        ),
    }
    sampler.generate([plan["passk"][0][0]], SamplingParams(max_new_tokens=2))  # warm-up
    # The Generator's grammars are compiled up front and timed on their own (in the pipeline this is paid
    # once per process, or once per machine with a disk cache); the stage rows are steady-state decoding.
    vocab = int(sampler.model.get_output_embeddings().weight.shape[0])
    ebnfs = sorted({build_ebnf(s, scfg) for s in specs})
    t0 = time.perf_counter()
    for e in ebnfs:
        compile_grammar(sampler.tokenizer, e, vocab)
    compile_s = time.perf_counter() - t0
    compile_line = f"grammar compile of the {len(ebnfs)} distinct Generator grammars: {compile_s:.1f} s"
    print(compile_line, flush=True)
    table = []
    gen_texts: list[list[str]] = []
    for name in args.stages.split(","):
        prompts, params, sp, cfg = plan[name]
        stage, static, bound, texts, same = run_stage(sampler, prompts, params, args.repeats, sp, cfg)
        if name == "generate":
            gen_texts = texts
        fill = stage.tokens / max(1, stage.slots)
        rows_run = stage.row_steps / max(1, stage.slots)
        ratio = stage.tps / bound.tps if bound.tps else 0.0
        static_ratio = static.tps / bound.tps if bound.tps else 0.0
        table.append((name, stage, bound, ratio, fill, static, static_ratio, rows_run, same))
        print(
            f"{name}: {stage.tokens} tokens in {sum(stage.seconds):.1f} s = {stage.tps:.2f} tok/s; static batch "
            f"{sum(static.seconds):.1f} s = {static.tps:.2f} tok/s; bound {bound.tokens} in "
            f"{sum(bound.seconds):.1f} s = {bound.tps:.2f} tok/s; ratio {ratio:.2f} (static {static_ratio:.2f}); "
            f"row fill {fill:.2f}, row-steps run {rows_run:.2f} of the static batch's; same tokens {same}; "
            f"prefilled {stage.prefill_tokens} of {stage.prompt_tokens} prompt tokens",
            flush=True,
        )
    grpo_line = None
    if args.grpo:
        prompts = plan["generate"][0][:1] * 4
        comps = (gen_texts[:1] * 4) if gen_texts else ["<think>x</think>"] * 4
        comps = [c[0] if isinstance(c, list) else c for c in comps]
        secs = [grpo_bound(sampler, prompts, comps) for _ in range(args.repeats)]
        grpo_line = (
            f"forward+backward of one group (4 × one candidate, LoRA r=16): {statistics.median(secs):.1f} s"
        )
        print(grpo_line)

    lines = [
        f"{args.label + ': ' if args.label else ''}model `{args.model}` ({dtype}, cpu_matmul {args.cpu_matmul}, attention {args.cpu_attention}: "
        f"{onednn} layers on oneDNN), {torch.get_num_threads()} "
        f"threads, CPU {cpu_line()}; {args.prompts} prompts per stage in one batch, {args.repeats} interleaved "
        f"repeats; Generator {args.gen_tokens} tokens (grammar budget {args.gen_tokens}, ground_calls), "
        f"Solver {args.solver_tokens} tokens, K={args.k}, k_verify={args.k_verify}. Stage = finished rows "
        "dropped (HFSampler default); static = the same call with `drop_finished=False` (model.generate(), "
        "every row to the end); bound = the same prompts unconstrained, eos banned, as many steps as the "
        "stage's longest row. Stage, static and bound runs are interleaved.",
        "",
        "| stage | rows | generated tokens | s | tok/s | static-batch s | static tok/s | bound tok/s "
        "| ratio | static ratio | row fill | row-steps run | same tokens | prompt tokens | prefilled |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, st, bd, ratio, fill, sta, sratio, run, same in table:
        lines.append(
            f"| {name} | {st.rows} | {st.tokens} | {sum(st.seconds):.1f} | {st.tps:.2f} | "
            f"{sum(sta.seconds):.1f} | {sta.tps:.2f} | {bd.tps:.2f} | **{ratio:.2f}** | {sratio:.2f} | "
            f"{fill:.2f} | {run:.2f} | {'yes' if same else 'NO'} | {st.prompt_tokens} | {st.prefill_tokens} |"
        )
    lines += ["", compile_line + " (cold process; not in the stage rows)"]
    if grpo_line:
        lines += ["", grpo_line]
    if not args.no_results:
        append_results("Iteration stages against their bounds (bench/iteration.py)", lines)


if __name__ == "__main__":
    main()
