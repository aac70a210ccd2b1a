"""What a Generator grammar costs xgrammar: compile seconds and mask+accept milliseconds per token.

Compares the grammar as ``inference.grammar.build_ebnf`` writes it (capped repetitions such as
``[^<...]{1,40}``, which xgrammar expands into one state per character) with the same language written in
O(sqrt(n)) states (blocks of ``isqrt(n)`` characters in helper rules), on one hand-written valid completion
tokenized by the real tokenizer. Both runs in the same process, one after the other; the ratio is the
number to read. Needs xgrammar (``scripts/install_structured.sh``) and the default model's tokenizer.

    python bench/grammar_cost.py                      # default model, budget 384 (the cpu preset)
"""

from __future__ import annotations

import argparse
import math
import re
import time

from toolr0.inference.grammar import StructuredConfig, build_ebnf

_REPEAT = re.compile(r"(\[(?:\\.|[^\]\\])*\])\{(\d+),(\d+)\}")
_SMALL = 6  # repetitions up to this many characters stay as they are

TEXT = (
    "<think>Weather lookup for one city needed here.</think>\n<question>What is the weather in Lisbon today, "
    "in celsius, and should I bring an umbrella?</question>\n<available_tools>"
    '[{"name": "get_weather", "description": "Weather of a city", "parameters": {"city": {"type": "string", '
    '"description": "City name"}}, "required": ["city"]}, {"name": "get_time", "description": "Time in a city", '
    '"parameters": {"city": {"type": "string", "description": "City name"}}, "required": ["city"]}]'
    '</available_tools>\n<tool_call_answer>[{"name": "get_weather", "arguments": {"city": "Lisbon"}}]'
    "</tool_call_answer>"
)


def _exact(cls: str, n: int, name: str, rules: list[str]) -> str:
    if n <= _SMALL:
        return f"{cls}{{{n}}}" if n else ""
    b = max(2, math.isqrt(n))
    q, r = divmod(n, b)
    rules.append(f"{name}_e ::= {cls}{{{b}}}")
    return f"{name}_e{{{q}}}" + (f" {cls}{{{r}}}" if r else "")


def blocked(cls: str, lo: int, hi: int, name: str) -> tuple[str, list[str]]:
    """``cls{lo,hi}`` as an expression plus helper rules in O(sqrt(hi)) states: the same language."""
    if hi - lo <= _SMALL and lo <= _SMALL:
        return f"{cls}{{{lo},{hi}}}", []
    rules: list[str] = []
    pre, n = _exact(cls, lo, name, rules), hi - lo
    if n <= _SMALL:
        free = f"{cls}{{0,{n}}}" if n else ""
    else:
        b = max(2, math.isqrt(n))
        q, r = divmod(n, b)
        rules.append(f"{name}_b ::= {cls}{{{b}}}")
        upto_qb = f"{name}_b{{0,{q - 1}}} {cls}{{0,{b}}}" if q > 1 else f"{cls}{{0,{b}}}"
        alts = [upto_qb] + ([f"{name}_b{{{q}}} {cls}{{1,{r}}}"] if r else [])
        rules.append(f"{name}_f ::= " + " | ".join(f"({a})" for a in alts))
        free = f"{name}_f"
    return " ".join(x for x in (pre, free) if x), rules


def rewrite_blocked(ebnf: str) -> str:
    """Every capped character-class repetition of ``ebnf`` rewritten by :func:`blocked`."""
    lines, extra = [], []
    for line in ebnf.strip().splitlines():
        rule, count = line.split("::=")[0].strip(), [0]

        def sub(m: re.Match, rule: str = rule, count: list[int] = count) -> str:
            count[0] += 1
            expr, rules = blocked(m.group(1), int(m.group(2)), int(m.group(3)), f"{rule}_{count[0]}")
            extra.extend(rules)
            return expr

        lines.append(_REPEAT.sub(sub, line))
    return "\n".join(lines + extra) + "\n"


def measure(info: object, tokenizer: object, ebnf: str, ids: list[int]) -> tuple[float, float, bool]:
    import xgrammar as xgr

    compiler = xgr.GrammarCompiler(info, max_threads=1, cache_enabled=False)
    t0 = time.perf_counter()
    compiled = compiler.compile_grammar(ebnf)
    compile_s = time.perf_counter() - t0
    matcher, mask = xgr.GrammarMatcher(compiled), xgr.allocate_token_bitmask(1, info.vocab_size)
    ok, t0 = True, time.perf_counter()
    for i in ids:
        matcher.fill_next_token_bitmask(mask)
        ok = matcher.accept_token(i) and ok
    per_token_ms = (time.perf_counter() - t0) / len(ids) * 1000
    return compile_s, per_token_ms, ok and matcher.accept_token(tokenizer.eos_token_id)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="default", help="'default' or a model folder (for its tokenizer)")
    ap.add_argument("--budget", type=int, default=384, help="structured.budget_tokens (cpu preset: 384)")
    args = ap.parse_args()
    import xgrammar as xgr
    from transformers import AutoConfig, AutoTokenizer

    from toolr0.inference.models import resolve_model

    path = resolve_model(args.model)
    tok = AutoTokenizer.from_pretrained(path)
    info = xgr.TokenizerInfo.from_huggingface(tok, vocab_size=AutoConfig.from_pretrained(path).vocab_size)
    ebnf = build_ebnf(None, StructuredConfig(enabled=True, budget_tokens=args.budget, ground_calls=True))
    ids = tok.encode(TEXT)
    rows = {"as built (capped)": measure(info, tok, ebnf, ids)}
    rows["sqrt(n) blocks"] = measure(info, tok, rewrite_blocked(ebnf), ids)
    base_c, base_t, _ = rows["as built (capped)"]
    print(f"| grammar | compile s | mask+accept ms/token ({len(ids)} tokens) | accepts the text | ratio compile / per token |")
    print("|---|---|---|---|---|")
    for name, (c, t, ok) in rows.items():
        print(f"| {name} | {c:.1f} | {t:.2f} | {ok} | {c / base_c:.2f} / {t / base_t:.2f} |")


if __name__ == "__main__":
    main()
