"""Grammar-constrained Generator decoding (xgrammar): the `structured` config section and its engine.

The grammar makes the Generator's whole completion the four-tag task of spec §4, with size caps:

    <think>free text</think>\\n<question>free text, no '<'</question>\\n
    <available_tools>[exactly m flat-parameter tools]</available_tools>\\n
    <tool_call_answer>[exactly n calls with flat primitive arguments]</tool_call_answer>

It is built per TaskSpec (m = menu_size, n = num_calls), as xgrammar EBNF, with caps shrunk to a token
budget (``budget_tokens``); n = 0 (a no-call task) allows exactly ``[]`` as the gold, in both stages. A context-free grammar cannot force grounding (call names in the menu, required
params present, values written in the question): verification and the validity reward check that, unless
``ground_calls`` swaps each row, once its menu is written, to a grammar built from its own question and menu.
Hook for ``HFSampler``: ``with constrained(sampler, specs, cfg): sampler.generate(...)``. Interaction with
GRPO: ``docs/structured_generation.md``.

Engine imports (xgrammar, torch, transformers) happen inside functions so the config class stays light.
"""

from __future__ import annotations

import json
import logging
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, Protocol

from pydantic import BaseModel, ConfigDict, Field

from toolr0.errors import ToolR0Error

if TYPE_CHECKING:  # pragma: no cover
    import xgrammar


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
    number_max_digits: int = Field(
        9, ge=1, le=18, description="Most integer digits of a numeric argument (a maximum: |x| < 10**digits)."
    )


class _SpecLike(Protocol):
    menu_size: int
    num_calls: int
    context_type: str


@dataclass(frozen=True)
class _Shape:
    """The parts of a TaskSpec that shape the grammar (hashable cache key)."""

    menu: tuple[int, int]
    calls: tuple[int, int]
    multi_turn: bool


log = logging.getLogger(__name__)

# Range used when no spec is known (e.g. one grammar for a whole TRL batch): spec §3's menu/call ranges.
LOOSE_MENU = (2, 8)
LOOSE_CALLS = (1, 2)


def _shape(spec: _SpecLike | None) -> _Shape:
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


def effective_caps(spec: _SpecLike | None, cfg: StructuredConfig | None = None) -> Caps:
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


def build_ebnf(spec: _SpecLike | None, cfg: StructuredConfig | None = None) -> str:
    """The xgrammar EBNF of one Generator completion for ``spec`` (None: any menu/call count in spec §3)."""
    cfg = cfg or StructuredConfig()
    sh = _shape(spec)
    caps = effective_caps(spec, cfg)
    q_max, p, a, d = caps.question, caps.params, caps.args, cfg.number_max_digits
    d_min = min(5, caps.desc)  # core.verify rejects tool descriptions under 5 characters
    rules = [
        "root ::= "
        + " ".join(
            [
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
        ),
        f"think ::= [^<{_CTRL}{_CJK}]{{1,{caps.think}}}",
        f"question ::= [^<{_CTRL}{_CJK}]{{{min(cfg.question_min_chars, q_max)},{q_max}}}",
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


def _row_num_calls(ebnf: str) -> int:
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

    alts: list[str] = []
    seen: set[str] = set()
    for tool in tools if isinstance(tools, list) else []:
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


# ---------------------------------------------------------------------------------------------------------
# Compilation (cached per tokenizer and vocabulary size)


def _xgr() -> Any:
    try:
        import xgrammar
    except ImportError as e:  # pragma: no cover - depends on the environment
        raise ToolR0Error(
            "structured.enabled needs xgrammar: run scripts/install_structured.sh "
            "(pip install --no-deps xgrammar==0.2.8 apache-tvm-ffi)"
        ) from e
    return xgrammar


_LOCK = threading.Lock()
_COMPILERS: dict[str, Any] = {}
_COMPILED: dict[tuple[str, str], Any] = {}
_TOKENIZER_KEYS: dict[tuple[int, int], tuple[Any, str]] = {}

# Compile cost (measured, loaded 2-core AVX2 CPU, Qwen's 152k vocabulary): a capped repetition such as
# think's [^<...]{1,400} costs ~100 s on its first compile and ~27 MB in memory; grammars are therefore
# shared by content. Serialised to disk one is 84-128 MB and took 63 s to load, so there is no disk cache.


def _tokenizer_key(tokenizer: Any, vocab_size: int) -> str:
    """A content fingerprint of (tokenizer vocabulary, logits width, xgrammar version): tokenizer objects of
    one model (the sampler's, TRL's) share one compiler and its compiled grammars."""
    import hashlib
    from importlib.metadata import version

    with _LOCK:
        hit = _TOKENIZER_KEYS.get((id(tokenizer), vocab_size))
        if hit is not None and hit[0] is tokenizer:
            return hit[1]
    vocab = sorted(tokenizer.get_vocab().items(), key=lambda kv: kv[1])
    h = hashlib.sha256(json.dumps([vocab, vocab_size, version("xgrammar")], ensure_ascii=False).encode())
    for attr in ("eos_token_id", "pad_token_id"):
        h.update(str(getattr(tokenizer, attr, None)).encode())
    key = h.hexdigest()[:32]
    with _LOCK:
        _TOKENIZER_KEYS[(id(tokenizer), vocab_size)] = (tokenizer, key)  # keeps the object (and its id) alive
    return key


def _compiler(tokenizer: Any, vocab_size: int) -> Any:
    xgr = _xgr()
    key = _tokenizer_key(tokenizer, vocab_size)
    with _LOCK:
        if key in _COMPILERS:
            return _COMPILERS[key]
    info = xgr.TokenizerInfo.from_huggingface(tokenizer, vocab_size=vocab_size)
    with _LOCK:
        return _COMPILERS.setdefault(key, xgr.GrammarCompiler(info, max_threads=1))


def compile_grammar(tokenizer: Any, ebnf: str, vocab_size: int | None = None) -> xgrammar.CompiledGrammar:
    """Compile (and cache) an EBNF grammar for ``tokenizer`` with the model's logits width ``vocab_size``."""
    vocab_size = int(vocab_size or len(tokenizer))
    key = (_tokenizer_key(tokenizer, vocab_size), ebnf)
    if key not in _COMPILED:
        compiled = _compiler(tokenizer, vocab_size).compile_grammar(ebnf)
        with _LOCK:
            _COMPILED[key] = compiled
    return _COMPILED[key]


def grammar_matcher(tokenizer: Any, spec: _SpecLike | None, cfg: StructuredConfig | None = None) -> Any:
    """A fresh ``xgrammar.GrammarMatcher`` for one spec (for tests and offline checks)."""
    return _xgr().GrammarMatcher(compile_grammar(tokenizer, build_ebnf(spec, cfg)))


def accepts(tokenizer: Any, spec: _SpecLike | None, text: str, cfg: StructuredConfig | None = None) -> bool:
    """Whether the grammar for ``spec`` accepts ``text`` as a complete completion."""
    m = grammar_matcher(tokenizer, spec, cfg)
    return bool(m.accept_string(text)) and bool(m.accept_token(_stop_id(m, tokenizer)))


def _stop_id(matcher: Any, tokenizer: Any) -> int:
    eos = tokenizer.eos_token_id
    return int(eos if eos is not None else matcher.stop_token_ids[0])


# ---------------------------------------------------------------------------------------------------------
# transformers


def _processor_class() -> type:
    import torch
    from transformers import LogitsProcessor

    xgr = _xgr()

    class GrammarLogitsProcessor(LogitsProcessor):
        """Per-row grammar masking for one ``generate()`` call (single use: make a fresh one per call).

        Rows whose grammar finished (stop token accepted) are left alone; transformers pads them.
        A row whose sampled token the grammar refuses (cannot happen unless another processor changes
        the scores after this one) is forced to stop instead of raising mid-generation.
        """

        def __init__(self, tokenizer: Any, ebnfs: list[str], cfg: StructuredConfig | None = None):
            self.tokenizer = tokenizer
            self.ebnfs = ebnfs
            self.cfg = cfg or StructuredConfig()
            self.ground = self.cfg.ground_calls
            self.tokens: list[list[int]] = []  # generated tokens per row (for the grounding switch)
            self.switched: list[bool] = []
            self.grounded = 0  # rows whose calls were switched to the grounded grammar (diagnostic)
            self.vocab = 0
            self.matchers: list[Any] | None = None
            self.bitmask: Any = None
            self.dead: list[bool] = []
            self.rejected = 0  # tokens refused by the grammar (diagnostic)
            self.finish_ids = {i for i in (tokenizer.pad_token_id, tokenizer.eos_token_id) if i is not None}
            self.batcher = xgr.BatchGrammarMatcher(max_threads=1)

        def _init(self, batch: int, vocab: int) -> None:
            ebnfs = self.ebnfs * batch if len(self.ebnfs) == 1 else self.ebnfs
            if len(ebnfs) != batch:
                raise ToolR0Error(f"structured decoding: {len(ebnfs)} grammars for a batch of {batch} rows")
            self.matchers = [xgr.GrammarMatcher(compile_grammar(self.tokenizer, g, vocab)) for g in ebnfs]
            self.bitmask = xgr.allocate_token_bitmask(batch, vocab)
            self.dead = [False] * batch
            self.tokens = [[] for _ in range(batch)]
            self.switched = [False] * batch
            self.vocab = vocab

        def _live(self) -> list[int]:
            assert self.matchers is not None
            return [i for i, m in enumerate(self.matchers) if not self.dead[i] and not m.is_terminated()]

        def _maybe_ground(self, i: int) -> None:
            """After ``<tool_call_answer>``, swap row i's matcher for the grounded-calls grammar."""
            text = self.tokenizer.decode(self.tokens[i], skip_special_tokens=True)
            at = text.find(CALLS_OPEN)
            if at < 0:
                return
            self.switched[i] = True  # one attempt per row
            n = _row_num_calls(self.ebnfs[i if len(self.ebnfs) > 1 else 0])
            ebnf = grounded_calls_ebnf(text[:at], n, self.cfg)
            if ebnf is None:
                return
            try:
                m = xgr.GrammarMatcher(compile_grammar(self.tokenizer, ebnf, self.vocab))
            except Exception:  # noqa: BLE001 - keep the structural grammar on any compile problem
                log.warning("grounded calls grammar did not compile; keeping the structural one")
                return
            rest = text[at + len(CALLS_OPEN) :]
            if rest and not m.accept_string(rest):
                return
            assert self.matchers is not None
            self.matchers[i] = m
            self.grounded += 1

        def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
            # One batched accept and one batched mask fill per step (xgrammar's BatchGrammarMatcher) instead
            # of a Python loop over rows; the same matcher calls, so the same masks.
            batch, vocab = scores.shape
            if self.matchers is None:
                self._init(batch, vocab)
            else:
                last = input_ids[:, -1].tolist()
                live = self._live()
                accepted = xgr.BatchGrammarMatcher.batch_accept_token(
                    [self.matchers[i] for i in live], [last[i] for i in live]
                )
                for i, ok in zip(live, accepted, strict=True):
                    if not ok:
                        self.dead[i] = True
                        # a row stopped by a stop string is padded by transformers: not a grammar breach
                        if last[i] not in self.finish_ids:
                            self.rejected += 1
                    elif self.ground and not self.switched[i]:
                        self.tokens[i].append(last[i])
                        if last[i] in _close_ids(self.tokenizer):
                            self._maybe_ground(i)
            assert self.matchers is not None
            live = self._live()
            stopped = [i for i in range(batch) if i not in set(live)]
            if live:
                self.batcher.batch_fill_next_token_bitmask(
                    [self.matchers[i] for i in live], self.bitmask, indices=live
                )
            for i in stopped:
                self.bitmask[i].fill_(-1)  # all allowed; overwritten below
            device = scores.device
            work = scores if device.type in ("cpu", "cuda") else scores.to("cpu")
            xgr.apply_token_bitmask_inplace(work, self.bitmask.to(work.device))
            for i in stopped:  # finished or broken rows may only stop
                stop = _stop_id(self.matchers[i], self.tokenizer)
                work[i].fill_(float("-inf"))
                work[i, stop] = 0.0
            return work.to(device)

    return GrammarLogitsProcessor


_PROCESSOR_CLASS: type | None = None
_CLOSE_IDS: dict[int, frozenset[int]] = {}


def _close_ids(tokenizer: Any) -> frozenset[int]:
    """Ids of the tokens whose text holds '>' (a tag may have just closed), computed once per tokenizer."""
    key = id(tokenizer)
    if key not in _CLOSE_IDS:
        # a token's text holds '>' iff its vocabulary piece does (byte-level BPE and sentencepiece pieces spell
        # '>' as itself; a piece that merely shows it, like '<0x3E>', only adds a harmless extra check)
        pieces = tokenizer.convert_ids_to_tokens(list(range(len(tokenizer))))
        ids = {i for i, p in enumerate(pieces) if p is not None and ">" in p}
        _CLOSE_IDS[key] = frozenset(ids)
    return _CLOSE_IDS[key]


def make_logits_processor(
    tokenizer: Any,
    specs: list[_SpecLike] | list[_SpecLike | None] | None,
    cfg: StructuredConfig | None,
    num_return_sequences: int = 1,
) -> Any | None:
    """A transformers ``LogitsProcessor`` constraining each row to its spec's task grammar, or None when off.

    ``specs`` has one entry per prompt (rows are prompt-major: each spec repeated ``num_return_sequences``
    times, matching ``generate(num_return_sequences=n)``); ``None`` or ``[None]`` gives the loose grammar
    (any menu/call count) for every row. Single use: call once per ``generate()``.
    """
    if cfg is None or not cfg.enabled:
        return None
    global _PROCESSOR_CLASS
    if _PROCESSOR_CLASS is None:
        _PROCESSOR_CLASS = _processor_class()
    rows = [None] if not specs else [s for s in specs for _ in range(num_return_sequences)]
    ebnfs = [build_ebnf(s, cfg) for s in rows]
    return _PROCESSOR_CLASS(tokenizer, ebnfs, cfg)


# ---------------------------------------------------------------------------------------------------------
# vLLM (GPU). Untested on this CPU machine: vLLM's structured outputs take an xgrammar-compatible EBNF.


def vllm_guided_params(spec: _SpecLike | None, cfg: StructuredConfig | None) -> Any | None:
    """vLLM ``StructuredOutputsParams(grammar=...)`` for one spec (a plain dict when vLLM is absent); None when off.

    Pass it as ``SamplingParams(structured_outputs=...)`` per request; vLLM's default xgrammar backend
    compiles the EBNF once per distinct grammar. ``ground_calls`` (a grammar that depends on the row's own
    text) is not available here: vLLM gets the structural grammar only.
    """
    if cfg is None or not cfg.enabled:
        return None
    grammar = build_ebnf(spec, cfg)
    try:
        from vllm.sampling_params import StructuredOutputsParams
    except ImportError:
        return {"grammar": grammar}
    return StructuredOutputsParams(grammar=grammar)


def sampler_factory(tokenizer: Any, specs: list[_SpecLike], cfg: StructuredConfig | None) -> Any | None:
    """A ``HFSampler.logits_processor_factory`` for one call whose prompt i was built from ``specs[i]``.

    The sampler calls it per chunk with the chunk's prompt indices and n (rows prompt-major). None when off.
    """
    if cfg is None or not cfg.enabled:
        return None

    def factory(indices: list[int], n: int) -> list[Any] | None:
        proc = make_logits_processor(tokenizer, [specs[i] for i in indices], cfg, num_return_sequences=n)
        return [proc] if proc is not None else None

    return factory


@contextmanager
def constrained(sampler: Any, specs: list[_SpecLike], cfg: StructuredConfig | None) -> Iterator[Any]:
    """Within the block, ``sampler.generate(prompts, ...)`` (prompt i built from ``specs[i]``) is grammar-
    constrained when ``cfg.enabled``; the sampler's previous factory is restored afterwards.

    Works with ``toolr0.inference.hf.HFSampler``; other backends raise (vLLM: use :func:`vllm_guided_params`).
    """
    if cfg is None or not cfg.enabled:
        yield sampler
        return
    if not hasattr(sampler, "logits_processor_factory"):
        raise ToolR0Error(
            f"structured decoding is not supported by the {type(sampler).__name__} backend here; "
            "set structured.enabled: false or use the hf backend"
        )
    previous = sampler.logits_processor_factory
    sampler.logits_processor_factory = sampler_factory(sampler.tokenizer, specs, cfg)
    try:
        yield sampler
    finally:
        sampler.logits_processor_factory = previous
