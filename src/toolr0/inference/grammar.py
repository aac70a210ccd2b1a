"""The Generator's task grammar (spec §4) as xgrammar EBNF text, and the `structured` config section.

The grammar makes the Generator's whole completion the four-tag task of spec §4, with size caps:

    <think>free text</think>\\n<question>free text, no '<'</question>\\n
    <available_tools>[exactly m flat-parameter tools]</available_tools>\\n
    <tool_call_answer>[exactly n calls with flat primitive arguments]</tool_call_answer>

or, with ``order: answer_first`` (the prompt variant's block order), tools and calls first and the question last.

It is built per TaskSpec (m = menu_size, n = num_calls), with caps shrunk to a token budget
(``budget_tokens``); n = 0 (a no-call task) allows exactly ``[]`` as the gold, in both stages. A context-free
grammar cannot force grounding (call names in the menu, required params present, values written in the
question): verification and the validity reward check that, unless ``ground_calls`` swaps each row, once its
menu is written, to a grammar built from its own question and menu (:func:`grounded_calls_ebnf`).

Pure text: no xgrammar, torch or transformers import. Compiling and decoding with these grammars is
:mod:`toolr0.inference.structured`; how they interact with GRPO is docs/structured_generation.md.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field

from toolr0.errors import ToolR0Error


class StructuredConfig(BaseModel):
    """Structured (grammar-constrained) decoding of Generator completions."""

    model_config = ConfigDict(extra="forbid")

    enabled: bool = Field(
        False,
        description="Constrain Generator decoding to the four-tag task grammar (xgrammar). On in the CPU "
        "presets, off in the paper-faithful preset.",
    )
    think_max_chars: int = Field(400, ge=1, description="Cap on the <think> block's length in characters.")
    question_min_chars: int = Field(
        25,
        ge=1,
        description="Minimum <question> length (core.verify's non-trivial minimum is 25 characters).",
    )
    question_max_chars: int = Field(
        300, ge=8, description="Cap on the <question> text (no '<'); doubled for multi_turn conversations."
    )
    question_banned_opening: str = Field(
        "the user",
        max_length=40,
        description="Answer-first question stage (ground_calls): the question may not begin with this text (any "
        "letter case). The 0.5B model copied the prompt's '<question>the user's message, ...' placeholder in 13 of "
        "14 no-call completions at step 0, and 104 step-0 questions began so, none a real request "
        "(bench/RESULTS.md, issue 28). '' allows any opening.",
    )
    max_params: int = Field(3, ge=1, le=8, description="Most parameters per generated tool.")
    max_args: int = Field(3, ge=1, le=8, description="Most arguments per gold call (at least one).")
    name_max_chars: int = Field(40, ge=3, description="Cap on tool names; parameter names get min(30, this).")
    description_max_chars: int = Field(100, ge=4, description="Cap on tool and parameter descriptions.")
    value_max_chars: int = Field(
        60, ge=1, description="Cap on string argument values (no '<', quotes, newlines)."
    )
    budget_tokens: int | None = Field(
        None,
        ge=64,
        description="Generator token budget (set it to the completion limit): caps shrink per spec, for large "
        "menus first descriptions, then parameters per tool, then <think>, until an estimate of the typical "
        "completion fits. None: the caps above for every spec.",
    )
    ground_calls: bool = Field(
        False,
        description="Second stage: once the menu is written, constrain the gold calls to menu tools, each "
        "tool's required parameters (plus optional ones) and argument values copied from the question "
        "(a grammar compiled per row from the text so far). Makes grounding structural; see the docs.",
    )
    order: Literal["question_first", "answer_first"] = Field(
        "question_first",
        description="Block order of the grammar, taken from the Generator prompt variant's generator.order (set "
        "by the config tree; a different explicit value is refused): question_first (the paper's) or "
        "answer_first (tools, calls, then a question that must state every argument value).",
    )
    number_max_digits: int = Field(
        9, ge=1, le=18, description="Most integer digits of a numeric argument (a maximum: |x| < 10**digits)."
    )


class SpecLike(Protocol):
    menu_size: int
    num_calls: int
    context_type: str


@dataclass(frozen=True)
class _Shape:
    """The parts of a TaskSpec that shape the grammar (hashable cache key)."""

    menu: tuple[int, int]
    calls: tuple[int, int]
    multi_turn: bool


# Range used when no spec is known (e.g. one grammar for a whole TRL batch): spec §3's menu/call ranges.
LOOSE_MENU = (2, 8)
LOOSE_CALLS = (1, 2)


def _shape(spec: SpecLike | None) -> _Shape:
    if spec is None:
        return _Shape(LOOSE_MENU, LOOSE_CALLS, multi_turn=True)
    m, n = int(spec.menu_size), int(spec.num_calls)
    if m < 1 or n < 0:
        raise ToolR0Error(f"structured decoding needs menu_size >= 1 and num_calls >= 0, got {m}, {n}")
    return _Shape((m, m), (n, n), multi_turn=str(getattr(spec, "context_type", "")) == "multi_turn")


# Excluded from free text: control characters (tab/newline kept in think/question) and the CJK ranges that
# core.verify rejects (the default model drifts into Chinese at T=1).
_CTRL = r"\0-\x08\x0b-\x1f"
_CJK = r"\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff\uff66-\uff9f"


def _lit(s: str) -> str:
    """An EBNF string literal."""
    return json.dumps(s)


def _list_rule(item: str, lo: int, hi: int) -> str:
    """`[` lo..hi items separated by `, ` `]` as an EBNF expression (hi = 0: exactly `[]`)."""
    if hi == 0:
        return _lit("[]")
    first = f'{item} (", " {item}){{{lo - 1},{hi - 1}}}' if hi > 1 else item
    return f'"[" {first} "]"'


@dataclass(frozen=True)
class Caps:
    """Effective size caps of one spec's grammar (characters, or items per list)."""

    think: int
    question: int
    desc: int
    params: int
    args: int


# Token-cost model of a completion (Qwen-style BPE, checked on hand-written tasks within ~10 %): JSON
# boilerplate per tool / parameter / call / argument, and free text at ~4 characters per token, filled to
# _FILL of its cap on average.
_TOK_TAGS, _TOK_TOOL, _TOK_PARAM, _TOK_CALL, _TOK_ARG = 30, 22, 16, 14, 6
_CHARS_PER_TOKEN, _FILL = 4.0, 0.6
# Shrink order when over budget: (field, floor), applied in turn until the estimate fits.
_SHRINK = (("desc", 48), ("params", 2), ("think", 200), ("desc", 32), ("params", 1), ("think", 100),
           ("desc", 20), ("question", 160), ("think", 40), ("args", 2))  # fmt: skip


def estimate_tokens(menu: int, calls: int, caps: Caps, value_chars: int = 60) -> float:
    """Estimated tokens of a typical completion under ``caps`` (for the budget; not a bound)."""
    text = _FILL / _CHARS_PER_TOKEN
    params, args = (1 + caps.params) / 2, (1 + caps.args) / 2
    tool = _TOK_TOOL + text * caps.desc + params * (_TOK_PARAM + text * caps.desc)
    call = _TOK_CALL + args * (_TOK_ARG + text * value_chars)
    return _TOK_TAGS + text * (caps.think + caps.question) + menu * tool + calls * call


def effective_caps(spec: SpecLike | None, cfg: StructuredConfig | None = None) -> Caps:
    """The caps used for ``spec``: the configured ones, shrunk to ``cfg.budget_tokens`` when set."""
    cfg = cfg or StructuredConfig()
    sh = _shape(spec)
    caps = Caps(
        think=cfg.think_max_chars,
        question=cfg.question_max_chars * (2 if sh.multi_turn else 1),
        desc=cfg.description_max_chars,
        params=cfg.max_params,
        args=cfg.max_args,
    )
    if cfg.budget_tokens is None:
        return caps
    m, n = sh.menu[1], sh.calls[1]
    for name, floor in _SHRINK:
        while estimate_tokens(m, n, caps, cfg.value_max_chars) > cfg.budget_tokens:
            cur = getattr(caps, name)
            if cur <= floor:
                break
            new = cur - 1 if name in ("params", "args") else max(floor, int(cur * 0.8))
            caps = replace(caps, **{name: new})
    return caps


def build_ebnf(spec: SpecLike | None, cfg: StructuredConfig | None = None) -> str:
    """The xgrammar EBNF of one Generator completion for ``spec`` (None: any menu/call count in spec §3)."""
    cfg = cfg or StructuredConfig()
    sh = _shape(spec)
    caps = effective_caps(spec, cfg)
    q_max, p, a, d = caps.question, caps.params, caps.args, cfg.number_max_digits
    d_min = min(5, caps.desc)  # core.verify rejects tool descriptions under 5 characters
    if cfg.order == "answer_first":
        blocks = [
            _lit("<think>"),
            "think",
            _lit("</think>\n<available_tools>"),
            "tools",
            _lit("</available_tools>\n<tool_call_answer>"),
            "calls",
            _lit("</tool_call_answer>\n<question>"),
            "question",
            _lit("</question>"),
        ]
    else:
        blocks = [
            _lit("<think>"),
            "think",
            _lit("</think>\n<question>"),
            "question",
            _lit("</question>\n<available_tools>"),
            "tools",
            _lit("</available_tools>\n<tool_call_answer>"),
            "calls",
            _lit("</tool_call_answer>"),
        ]
    rules = [
        "root ::= " + " ".join(blocks),
        f"think ::= [^<{_CTRL}{_CJK}]{{1,{caps.think}}}",
        # a multi_turn chat is named `conversation` so a second stage knows it may span lines
        *(["question ::= conversation"] if sh.multi_turn else []),
        f"{'conversation' if sh.multi_turn else 'question'} ::= "
        f"[^<{_CTRL}{_CJK}]{{{min(cfg.question_min_chars, q_max)},{q_max}}}",
        f"tools ::= {_list_rule('tool', *sh.menu)}",
        f"calls ::= {_list_rule('call', *sh.calls)}",
        'tool ::= "{\\"name\\": \\"" tname "\\", \\"description\\": \\"" desc "\\", \\"parameters\\": {" params '
        '"}, \\"required\\": [" reqs "]}"',
        f'params ::= param (", " param){{0,{p - 1}}}',
        'param ::= "\\"" pname "\\": {\\"type\\": \\"" ptype "\\", \\"description\\": \\"" desc "\\"}"',
        'ptype ::= "string" | "integer" | "number" | "boolean"',
        f'reqs ::= "\\"" pname "\\"" (", \\"" pname "\\""){{0,{p - 1}}}',
        'call ::= "{\\"name\\": \\"" tname "\\", \\"arguments\\": {" args "}}"',
        f'args ::= arg (", " arg){{0,{a - 1}}}',
        'arg ::= "\\"" pname "\\": " value',
        "value ::= string | number | boolean",
        f'string ::= "\\"" [^"\\\\<\\0-\\x1f{_CJK}]{{1,{cfg.value_max_chars}}} "\\""',
        f'number ::= "-"? ("0" | [1-9] [0-9]{{0,{d - 1}}}) ("." [0-9]{{1,6}})?',
        'boolean ::= "true" | "false"',
        # three letters up front (core.verify: a tool name needs more than two letters)
        f'tname ::= ([a-zA-Z]{{3}} | [a-zA-Z]{{1,2}} "_" [a-zA-Z]{{2}}) [a-zA-Z0-9_]{{0,{cfg.name_max_chars - 3}}}',
        f"pname ::= [a-zA-Z] [a-zA-Z0-9_]{{0,{min(30, cfg.name_max_chars) - 1}}}",
        f'desc ::= [^"\\\\<\\0-\\x1f{_CJK}]{{{d_min},{caps.desc}}}',
    ]
    return "\n".join(rules) + "\n"


# ---------------------------------------------------------------------------------------------------------
# Second stage: grounded gold calls (structured.ground_calls)

CALLS_OPEN = "<tool_call_answer>"
_NUMBER_RE = re.compile(r"(?<![\w.])-?\d{1,3}(?:,\d{3})+(?:\.\d+)?(?![\w])|(?<![\w.])-?\d+(?:\.\d+)?(?![\w])")
_STRIP = "\"'`.,;:!?()[]{}*“”‘’"
_BAD_VALUE = re.compile(r'["\\<\x00-\x1f]')
_MAX_NGRAM = 6


def row_num_calls(ebnf: str) -> int:
    """The exact call count of a spec grammar (1 for the loose grammar's first alternative)."""
    if re.search(r'^calls ::= "\[\]"$', ebnf, re.M):  # a no-call task
        return 0
    m = re.search(r'calls ::= "\[" call \(", " call\)\{(\d+),', ebnf)
    return int(m.group(1)) + 1 if m else 1


def question_values(question: str, max_chars: int = 60) -> tuple[list[str], list[int], list[float]]:
    """Values written in ``question``: word n-grams (1..6 words, outer punctuation stripped), integers and
    decimals. Every one of them passes the validity reward's word-boundary grounding check."""
    words = question.split()
    strings: dict[str, None] = {}
    for i in range(len(words)):
        for j in range(i + 1, min(len(words), i + _MAX_NGRAM) + 1):
            v = " ".join(words[i:j]).strip(_STRIP)
            if v and len(v) <= max_chars and not _BAD_VALUE.search(v) and any(c.isalnum() for c in v):
                strings[v] = None
    ints: dict[int, None] = {}
    floats: dict[float, None] = {}
    for m in _NUMBER_RE.finditer(question):
        raw = m.group(0).replace(",", "")
        if "." in raw:
            if repr(float(raw)) in question:  # grounding compares the value's own text form
                floats[float(raw)] = None
        else:
            ints[int(raw)] = None
    return list(strings), list(ints), list(floats)


def grounded_calls_ebnf(prefix: str, num_calls: int, cfg: StructuredConfig | None = None) -> str | None:
    """EBNF for the text after ``<tool_call_answer>``, given the completion so far (``prefix``): exactly
    ``num_calls`` calls, each to a menu tool, with all its required parameters in order then optional ones
    (up to ``max_args`` in all), string values copied from the question and numbers written in it; for
    ``num_calls`` 0 exactly ``[]``. None when the question or the menu cannot be read (the structural grammar
    then stays)."""
    cfg = cfg or StructuredConfig()
    if num_calls == 0:
        return f'root ::= "[]" {_lit("</tool_call_answer>")}\n'

    try:
        q0 = prefix.rindex("<question>") + len("<question>")
        question = prefix[q0 : prefix.index("</question>", q0)]
        t0 = prefix.rindex("<available_tools>") + len("<available_tools>")
        tools = json.loads(prefix[t0 : prefix.index("</available_tools>", t0)])
    except (ValueError, json.JSONDecodeError):
        return None
    strings, ints, floats = question_values(question, cfg.value_max_chars)
    lit = {
        "gstr": [_lit(json.dumps(v, ensure_ascii=False)) for v in strings],
        "gint": [_lit(str(v)) for v in ints],
        "gnum": [_lit(repr(v)) for v in floats] + [_lit(str(v)) for v in ints],
    }
    fallback = {"gstr": "gint", "gint": "gstr", "gnum": "gstr"}
    type_rule = {"string": "gstr", "integer": "gint", "number": "gnum", "boolean": "gbool"}

    def value_rule(t: str) -> str:
        r = type_rule.get(t, "gstr")
        if r == "gbool" or lit[r]:
            return r
        return fallback[r] if lit[fallback[r]] else "string"

    alts = call_alternatives(tools, value_rule, cfg)
    if not alts:
        return None
    call = "call ::= " + " | ".join(f"({a})" for a in alts)
    rest = f'(", " call){{{num_calls - 1},{num_calls - 1}}} ' if num_calls > 1 else ""
    rules = [
        f'root ::= "[" call {rest}"]" {_lit("</tool_call_answer>")}',
        call,
        "gbool ::= " + '"true" | "false"',
        f'string ::= "\\"" [^"\\\\<\\0-\\x1f{_CJK}]{{1,{cfg.value_max_chars}}} "\\""',
    ]
    rules += [f"{k} ::= " + " | ".join(v) for k, v in lit.items() if v]
    return "\n".join(rules) + "\n"


def call_alternatives(tools: object, value_rule: Callable[[str], str], cfg: StructuredConfig) -> list[str]:
    """One EBNF alternative per usable menu tool: its name, then its required parameters in order and up to
    ``max_args`` optional ones, each value by ``value_rule(json type)`` (a rule name)."""
    alts: list[str] = []
    seen: set[str] = set()
    for tool in tools if isinstance(tools, list) else []:
        if not isinstance(tool, dict):
            continue
        name, params = tool.get("name"), tool.get("parameters")
        if not isinstance(name, str) or name in seen or not isinstance(params, dict) or not params:
            continue
        seen.add(name)
        types = {
            k: str(v.get("type", "string")) if isinstance(v, dict) else "string" for k, v in params.items()
        }
        required = [r for r in dict.fromkeys(tool.get("required") or []) if isinstance(r, str)]
        optional = [k for k in types if k not in required][: max(0, cfg.max_args - len(required))]

        def arg(k: str, types: dict[str, str] = types) -> str:
            return f"{_lit(json.dumps(k) + ': ')} {value_rule(types.get(k, 'string'))}"

        if required:
            body = ' ", " '.join(arg(k) for k in required) + "".join(f' (", " {arg(k)})?' for k in optional)
        else:  # at least one argument: choose the first present one, later ones optional
            body = (
                "("
                + " | ".join(
                    arg(k) + "".join(f' (", " {arg(o)})?' for o in optional[i + 1 :])
                    for i, k in enumerate(optional)
                )
                + ")"
            )
        head = _lit('{"name": ' + json.dumps(name) + ', "arguments": {')
        alts.append(f'{head} {body} "}}}}"')
    return alts
