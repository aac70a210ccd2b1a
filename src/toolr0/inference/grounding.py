"""The grammar's second stages (``structured.ground_calls``): once a row has written a block, its grammar for the
rest is rebuilt from its own text so far.

- ``question_first`` (the paper's order): after ``<tool_call_answer>``, calls to menu tools with values copied
  from the question (:func:`toolr0.inference.grammar.grounded_calls_ebnf`).
- ``answer_first``: after ``<tool_call_answer>``, calls to menu tools (each tool's required parameters, values
  of the parameter's JSON type) (:func:`answer_first_calls_ebnf`); then after ``<question>``, a question that
  must state every argument value of those calls verbatim, each at a word boundary, in call order
  (:func:`question_with_values_ebnf`). So every gold value is written in the question by construction, and the
  validity reward's grounding holds without cutting spans out of an unplanned question.

Pure text, like :mod:`toolr0.inference.grammar`; the logits processor in :mod:`toolr0.inference.structured`
calls :func:`stage_grammar` whenever a row may have closed a tag.
"""

from __future__ import annotations

import json
import re

from toolr0.inference.grammar import (
    _CJK,
    _CTRL,
    CALLS_OPEN,
    StructuredConfig,
    _lit,
    call_alternatives,
    grounded_calls_ebnf,
    row_num_calls,
)

QUESTION_AFTER_CALLS = "</tool_call_answer>\n<question>"
TAIL_MAX_CHARS = 80  # most characters after the question's last value


def _not(*excluded: str) -> str:
    """An EBNF class of any character but '<', control, CJK and the given ones."""
    return f"[^<{''.join(excluded)}{_CTRL}{_CJK}]"


def _class_char(ch: str) -> str:
    return "\\" + ch if ch in "\\]^-" else ch


def _rep(cls: str, lo: int, hi: int) -> str:
    return f"{cls}{{{lo},{hi}}}" if hi > 0 else '""'


def _cases(ch: str) -> str:
    """``ch`` in both letter cases, escaped for a character class."""
    return "".join(_class_char(c) for c in dict.fromkeys(ch.lower() + ch.upper()))


def _ci(ch: str) -> str:
    """One character of a banned opening, in either letter case."""
    return f"[{_cases(ch)}]" if ch.isalpha() else _lit(ch)


def free_without_opening(excluded: tuple[str, ...], lo: int, hi: int, banned: str) -> str:
    """EBNF expression: ``lo``..``hi`` characters of ``_not(*excluded)`` that do not begin with ``banned`` (in any
    letter case): shorter than it, or an opening of its length that differs from it somewhere, then the rest.
    The long repetition appears once (one per alternative made xgrammar's compile 3x slower)."""
    n = len(banned)
    cls = _not(*excluded)
    if not banned or hi < n:
        return _rep(cls, lo, hi)
    openings = []
    for i, ch in enumerate(banned):
        parts = [*(_ci(c) for c in banned[:i]), _not(*excluded, _cases(ch))]
        if n - i - 1:
            parts.append(f"{cls}{{{n - i - 1}}}")
        openings.append(" ".join(parts))
    long = f"({' | '.join(openings)})" + (f" {cls}{{{max(0, lo - n)},{hi - n}}}" if hi > n else "")
    return f"({_rep(cls, lo, n - 1)} | {long})" if lo < n else long


_FREE = _not()
# a value starts and ends at a word boundary (the grounding check's \b): no letter, Latin, Greek or Cyrillic
# included, may touch it (round 5 hid "en" and "fr" in "enız" and "früsh")
_LETTERS = r"a-zA-Z0-9\u00c0-\u024f\u0370-\u03ff\u0400-\u04ff\u1e00-\u1eff"
_SEP = _not(_LETTERS)
# A one-message question: no line break, and its only '?' ends it. Round 3 of the step-0 benchmark asked run-on
# questions ("Is it zero? Is it negative? Is it zero or 123456?") around a value stated late (bench/RESULTS.md).
_ONE_MESSAGE = "?\\n\\t"  # excluded from a one-message question's characters
_TYPED = {"string": "string", "integer": "integer", "number": "number", "boolean": "gbool"}


def stage_markers(order: str) -> tuple[str, ...]:
    """The markers at which a row's grammar is rebuilt, in order."""
    return (CALLS_OPEN, QUESTION_AFTER_CALLS) if order == "answer_first" else (CALLS_OPEN,)


def stage_grammar(row_ebnf: str, stage: int, prefix: str, cfg: StructuredConfig) -> str | None:
    """The grammar for the text after marker ``stage`` of a row whose structural grammar is ``row_ebnf``
    (``prefix``: the completion up to that marker)."""
    num_calls = row_num_calls(row_ebnf)
    if cfg.order != "answer_first":
        return grounded_calls_ebnf(prefix, num_calls, cfg)
    one_message = "\nconversation ::=" not in row_ebnf  # a multi_turn chat needs its lines
    q_max = _question_max(row_ebnf, cfg)
    if num_calls == 0:  # a no-call task: the structural grammar already says []; its question is one message
        return no_call_question_ebnf(cfg, q_max) if stage == 1 and one_message else None
    if stage == 0:
        return answer_first_calls_ebnf(prefix, num_calls, cfg, q_max)
    return question_with_values_ebnf(prefix + "</tool_call_answer>", cfg, q_max, one_message=one_message)


def no_call_question_ebnf(cfg: StructuredConfig | None = None, question_max: int | None = None) -> str:
    """EBNF for the text after ``<question>`` of a single-turn no-call task in answer-first order: one message
    (no line break, its only '?' last) that does not begin with ``question_banned_opening``."""
    cfg = cfg or StructuredConfig()
    q_max = question_max or cfg.question_max_chars
    lo = min(cfg.question_min_chars, q_max)
    body = free_without_opening((_ONE_MESSAGE,), lo, q_max, cfg.question_banned_opening)
    return f'root ::= {body} "?"? {_lit("</question>")}\n'


def _question_max(row_ebnf: str, cfg: StructuredConfig) -> int:
    """The question's length cap in a row's structural grammar (doubled there for multi_turn specs)."""
    m = re.search(r"^(?:question|conversation) ::= .*\{\d+,(\d+)\}$", row_ebnf, re.M)
    return int(m.group(1)) if m else cfg.question_max_chars


def answer_first_calls_ebnf(
    prefix: str, num_calls: int, cfg: StructuredConfig | None = None, question_max: int | None = None
) -> str | None:
    """EBNF for the text after ``<tool_call_answer>`` in answer-first order: exactly ``num_calls`` calls to menu
    tools, each with its required parameters (then optional ones), values of the declared JSON type; then the
    question block, free here (the next stage constrains it). None when the menu cannot be read."""
    cfg = cfg or StructuredConfig()
    try:
        t0 = prefix.rindex("<available_tools>") + len("<available_tools>")
        tools = json.loads(prefix[t0 : prefix.index("</available_tools>", t0)])
    except (ValueError, json.JSONDecodeError):
        return None
    alts = call_alternatives(tools, lambda t: _TYPED.get(t, "string"), cfg)
    if not alts:
        return None
    q_max = question_max or cfg.question_max_chars
    v = max(2, cfg.value_max_chars)
    rest = f'(", " call){{{num_calls - 1},{num_calls - 1}}} ' if num_calls > 1 else ""
    d = cfg.number_max_digits
    rules = [
        f'root ::= "[" call {rest}"]" {_lit(QUESTION_AFTER_CALLS)} question {_lit("</question>")}',
        "call ::= " + " | ".join(f"({a})" for a in alts),
        # a value starts or ends with a letter or digit (so the question can state it at a word boundary) and
        # has no outer spaces (a gold " NYC" matched no Solver sample)
        f'string ::= "\\"" ([a-zA-Z0-9] | [a-zA-Z0-9] vchar{{0,{v - 2}}} vend | vend vchar{{0,{v - 2}}} [a-zA-Z0-9]) "\\""',
        f'vchar ::= [^"\\\\<\\0-\\x1f{_CJK}]',
        f'vend ::= [^ "\\\\<\\0-\\x1f{_CJK}]',
        f'integer ::= "-"? ("0" | [1-9] [0-9]{{0,{d - 1}}})',
        'number ::= integer ("." [0-9]{1,6})?',
        'gbool ::= "true" | "false"',
        f"question ::= {_FREE}{{{min(cfg.question_min_chars, q_max)},{q_max}}}",
    ]
    return "\n".join(rules) + "\n"


def call_values(calls_text: str) -> list[str]:
    """The texts the question must state for a gold call list: every string value and every number as
    written, in order, each once; booleans and nulls are exempt (as in the grounding check)."""
    try:
        calls = json.loads(calls_text)
    except json.JSONDecodeError:
        return []
    out: dict[str, None] = {}
    for call in calls if isinstance(calls, list) else []:
        args = call.get("arguments") if isinstance(call, dict) else None
        for v in (args if isinstance(args, dict) else {}).values():
            if isinstance(v, bool) or v is None:
                continue
            if isinstance(v, int | float):
                out[json.dumps(v)] = None
            elif isinstance(v, str) and v.strip():
                out[v] = None
    return list(out)


def question_with_values_ebnf(
    prefix: str,
    cfg: StructuredConfig | None = None,
    question_max: int | None = None,
    one_message: bool = False,
) -> str | None:
    """EBNF for the text after ``<question>`` in answer-first order: a question that states each value of the
    gold calls (read from ``prefix``) verbatim, each between word boundaries, in call order, then
    ``</question>``. ``one_message``: one line whose only '?' is its last character. None when the calls cannot
    be read or hold no value to state (the free question stays)."""
    cfg = cfg or StructuredConfig()
    try:
        c0 = prefix.rindex(CALLS_OPEN) + len(CALLS_OPEN)
        values = call_values(prefix[c0 : prefix.index("</tool_call_answer>", c0)])
    except ValueError:
        return None
    values = [v for v in values if "<" not in v and all(ord(ch) >= 0x20 for ch in v)]
    if not values:
        return None
    q_max = question_max or cfg.question_max_chars
    # the text around the values is bounded so the question ends soon after its last value: with one cap for
    # every gap the 0.5B model kept asking ("what about Seoul? what about Tokyo? ...") up to the limit
    head, mid, tail = q_max // 2, q_max // 3, min(TAIL_MAX_CHARS, q_max // 3)
    parts = ["head"] + [f"{_lit(v)} {'mid' if i < len(values) - 1 else 'tail'}" for i, v in enumerate(values)]
    excluded = (_ONE_MESSAGE,) if one_message else ()
    free, sep = _not(*excluded), _not(*excluded, _LETTERS)
    end = ' "?"?' if one_message else ""
    rules = [
        f"root ::= {' '.join(parts)}{end} {_lit('</question>')}",
        f'head ::= "" | {free_without_opening(excluded, 0, head, cfg.question_banned_opening)} {sep}',
        f"mid ::= {sep} | {sep} {free}{{0,{mid}}} {sep}",
        f'tail ::= "" | {sep} {free}{{0,{tail}}}',
    ]
    return "\n".join(rules) + "\n"
