"""Structural verification of Generator output (spec §5.1, §6.2, §6.3) plus hardened checks (issue 8).

- :func:`question_gate` — the gate g of spec §5.1 plus hardened checks built from the default model's measured
  failure modes (echoed template sentences of both prompt variants, ``<…>`` placeholders, ``...``, refusals,
  markdown headers), each with its own reason code.
- :func:`verify_task` — every rule of spec §6.2 in order, one reason code per rule, plus hardened
  null-value / placeholder-value / refusal / echo checks. Spec m and n are not enforced, only recorded in
  ``details``.
- No-call tasks (not in the paper): when the spec asks for ``num_calls`` 0, a gold list that is exactly ``[]``
  is accepted, with the same question gate, tool rules and non-triviality rules plus their own
  (``no_call_names_tool``, ``no_call_meta``). Whether some menu tool could in fact serve the request is not
  checkable structurally: the frozen Solver's pass rate (it must answer ``[]``) is the check.
- :func:`dedup_fingerprint`, :func:`task_quality`, :func:`dedup` — spec §6.3.

Nothing here raises on garbage input.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from toolr0.core.parsing import extract_last_tag, normalise_call, parse_strict_json
from toolr0.core.schema import Task, Tool, ToolCall, normalise_tool, required_of

# ---------------------------------------------------------------------------------------------- patterns
# Spec §5.1 placeholder / prompt-echo patterns (lower-cased substring tests) and the one regex.
SPEC_ECHO_PATTERNS = (
    "the generated user question here",
    "user question must be from the specified domain",
    "generate a new tool-calling task now",
    "control spec",
    "rules to satisfy",
    "private reasoning",
    "[the private reasoning here]",
)
SPEC_ECHO_REGEX = re.compile(r"\[.*generated user question.*\]", re.S)
MIN_QUESTION_CHARS = 8  # spec §5.1

# Hardened (issue 8): template phrases of the reference code's prompt and of ours that a real user never writes
# (matched on word-normalised text, so punctuation and case do not matter).
ECHO_PHRASES = (
    "natural user question",
    "no bullet points",
    "meta instructions",
    "tool calling task",
    "gold tool call",
    "gold call",
    "available tools block",
    "tool call answer",
    "argument values used in the gold",
    "output exactly these four blocks",
)
# "tool call" alone is something a user may ask for ("make a tool call to fetch my calendar"); it marks an
# echo only beside a word about writing a task ("Generate ... a retail tool call.").
TOOL_CALL_META_WORDS = frozenset(
    "generate generated write create produce design compose craft output example sample task domain".split()
)
QUESTION_ECHO_NGRAM = 6  # a 6-word run copied from a prompt template marks the question as an echo
RAW_ECHO_NGRAM = (
    12  # outside <think>, a 12-word run copied from a prompt template marks the output as an echo
)
RAW_ECHO_MARKERS = ("control spec (must follow exactly)", "generate a new tool-calling task now")

_ANGLE_PLACEHOLDER = re.compile(r"<\s*[A-Za-z_][\w \-|./]{0,60}>")
# `<urgent>` right after a word that introduces a literal ("the message <urgent>") is text the user wants sent,
# unless it is a slot name itself (`<message>`, `<message_text>`).
_LITERAL_INTRO = re.compile(
    r"\b(?:message|text|note|word|phrase|string|tag|label|title|subject|keyword|caption|comment|reply|status)"
    r"\s*$",
    re.I,
)
_SLOT_WORDS = frozenset(
    "message text note word phrase string tag label title subject keyword caption comment reply status content "
    "value name input placeholder".split()
)
# A quoted span ('…', "…", “…”, ‘…’); an apostrophe inside a word (I'm, can't) neither opens nor closes one.
_QUOTED = re.compile(
    r"(?<![\w'’])'(?:[^'\n]|'(?=\w))*+'(?!\w)|\"[^\"\n]*+\"|“[^”\n]*+”"
    r"|(?<![\w'’])‘(?:[^’\n]|’(?=\w))*+’(?!\w)"
)
# A free-standing "..." (a template slot such as "User: ..." or "[...]"), not a trailing "Before we..." in prose.
_SLOT_ELLIPSIS = re.compile(r"(?:^|(?<=[\s:(\[{=]))(?:\.\.\.|\u2026)(?=$|[\s)\]}\"',.;])")
# Refusals: specific enough that ordinary user speech ("I cannot log in ...") is not caught.
_REFUSAL = re.compile(
    r"\b(?:i['’]?m|i am) sorry,? (?:but|i\b|as\b)|\bas an ai\b|\bi apologi[sz]e,? (?:but|i\b)"
    r"|\b(?:i|i['’]m|i am) (?:cannot|can['’]?t|can not|unable to|not able to|won['’]?t|will not)"
    r" (?:help|assist|fulfil|fulfill|comply|provide|generate|create|complete|do that|answer|write)",
    re.I,
)
_MD_HEADER = re.compile(r"^\s{0,3}#{1,6}\s+(?P<title>\S.*)$", re.M)
_MD_BOLD_LABEL = re.compile(r"^\s*\*\*[^*\n]{1,40}\*\*", re.M)
_CJK = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff\uff66-\uff9f]")
_WORD = re.compile(r"[a-z0-9]+")
_TEMPLATE_PLACEHOLDER = re.compile(r"\{[a-z_]+\}")

# Spec §6.2 type and name rules.
ALLOWED_PARAM_TYPES = {
    "string",
    "str",
    "integer",
    "int",
    "number",
    "float",
    "double",
    "boolean",
    "bool",
    "date",
    "datetime",
}
REJECTED_TYPE_PARTS = ("list", "array", "dict", "object", "map", "json")
GENERIC_TOOL_NAMES = {"tool", "function", "api", "call"}
MIN_DESCRIPTION_CHARS = 5
MIN_NONTRIVIAL_QUESTION_CHARS = 25
BANNED_PHRASES = ("capital of", "define ", "explain ", "summarize ", "write a poem", "tell me a joke")
LOOKUP_PHRASES = ("what is", "who is", "when is", "where is")
PRIMITIVES = (str, int, float, bool, type(None))
# No-call questions that talk about the tools instead of making a request (the answer key leaks into the question).
_NO_CALL_META = re.compile(
    r"\b(?:none|any) of (?:the|these|those|your|my) (?:available |given |provided )?(?:tools|functions)\b"
    r"|\b(?:available|given|provided) (?:tools|functions)\b|\bno (?:tool|function) (?:can|could|is|fits|will)\b"
    r"|\b(?:without|not|n['’]t) (?:using|calling|use|call) (?:a|any|the) (?:tools?|functions?)\b",
    re.I,
)
_IDENTIFIER = re.compile(r"[A-Za-z][A-Za-z0-9]*(?:_[A-Za-z0-9]+)+|[a-z]+(?:[A-Z][a-z0-9]+)+")


# ------------------------------------------------------------------------------------------ echo n-grams
def _words(text: str) -> list[str]:
    return _WORD.findall(text.lower())


_WILD = "\x00"  # stands for a filled-in placeholder value (one word) in template n-grams
_TOKEN = re.compile(r"[a-z0-9_]+")
MAX_ECHO_WILDCARDS = 2


def _tokens(text: str) -> list[str]:
    return _TOKEN.findall(text.lower())


@lru_cache(maxsize=16)
def _template_ngrams(
    n: int, variants: tuple[str, ...] = ("reference", "compact")
) -> frozenset[tuple[str, ...]]:
    """Word n-grams of every prompt template; a ``{placeholder}`` becomes the wildcard token ``_WILD``."""
    from toolr0.core.prompts import template_texts  # local: prompts imports spec, keep this module light

    grams: set[tuple[str, ...]] = set()
    for variant in variants:
        try:
            texts = template_texts(variant)
        except Exception:  # noqa: BLE001 - a broken variant must not break verification
            continue
        for text in texts:
            words: list[str] = []
            for k, segment in enumerate(_TEMPLATE_PLACEHOLDER.split(text)):
                if k:
                    words.append(_WILD)
                words.extend(_tokens(segment))
            for i in range(len(words) - n + 1):
                gram = tuple(words[i : i + n])
                if sum(w == _WILD for w in gram) <= MAX_ECHO_WILDCARDS:
                    grams.add(gram)
    return frozenset(grams)


@lru_cache(maxsize=8)
def _wild_masks(n: int) -> tuple[tuple[int, ...], ...]:
    masks: list[tuple[int, ...]] = [()]
    masks += [(i,) for i in range(n)]
    masks += [(i, j) for i in range(n) for j in range(i + 1, n)]
    return tuple(m for m in masks if len(m) <= MAX_ECHO_WILDCARDS)


def echo_overlap(text: str, n: int, wildcards: bool = True, max_words: int = 5000) -> tuple[str, ...] | None:
    """The first word n-gram of ``text`` that also occurs in a prompt template (a placeholder matching any one
    word when ``wildcards``), or None. Only the first ``max_words`` words are scanned."""
    grams = _template_ngrams(n)
    words = _tokens(text)[:max_words]
    masks = _wild_masks(n) if wildcards else ((),)
    for i in range(len(words) - n + 1):
        gram = tuple(words[i : i + n])
        for mask in masks:
            probe = gram if not mask else tuple(_WILD if k in mask else w for k, w in enumerate(gram))
            if probe in grams:
                return gram
    return None


ECHO_COVERAGE_NGRAM = 4
ECHO_COVERAGE = (
    0.6  # share of a question's words inside 4-word runs copied from a template (paraphrased echo)
)


def echo_coverage(text: str, n: int = ECHO_COVERAGE_NGRAM, max_words: int = 400) -> float:
    """Share of the words of ``text`` covered by word n-grams that also occur in a prompt template."""
    grams = _template_ngrams(n)
    words = _tokens(text)[:max_words]
    if not words:
        return 0.0
    covered = [False] * len(words)
    for i in range(len(words) - n + 1):
        if tuple(words[i : i + n]) in grams:
            for k in range(i, i + n):
                covered[k] = True
    return sum(covered) / len(words)


@lru_cache(maxsize=4)
def template_tool_names(variants: tuple[str, ...] = ("reference", "compact")) -> frozenset[str]:
    """Tool names written in the prompt templates (the toy illustration's tools): a generated tool with one of
    these names was copied from the prompt."""
    from toolr0.core.prompts import template_texts

    names: set[str] = set()
    for variant in variants:
        try:
            for text in template_texts(variant):
                names.update(n.lower() for n in re.findall(r'"name":\s*"([A-Za-z_][A-Za-z0-9_]*)"', text))
        except Exception:  # noqa: BLE001
            continue
    return frozenset(names)


def _norm_words(text: str) -> str:
    return " ".join(_words(text))


def _has_markdown(q: str) -> bool:
    for m in _MD_HEADER.finditer(q):
        if m.group("title").strip().lower() != "conversation":  # the multi_turn format's own header
            return True
    return _MD_BOLD_LABEL.search(q) is not None


# ------------------------------------------------------------------------------------------ question gate
def _unquoted(text: str) -> str:
    """``text`` with quoted spans blanked (same length): a request to translate 'I am sorry, but ...' is no
    refusal."""
    return _QUOTED.sub(lambda m: " " * len(m.group(0)), text)


def _is_literal_angle(text: str, m: re.Match[str], quoted: str) -> bool:
    inner = m.group(0)[1:-1].strip()
    if "_" in inner or inner.lower() in _SLOT_WORDS:
        return False
    if quoted[m.start() : m.end()] != m.group(0):  # inside a quoted span
        return True
    return _LITERAL_INTRO.search(text[: m.start()]) is not None


def has_angle_placeholder(text: str) -> bool:
    """A ``<…>`` slot (``<amount>``, ``<from_currency>``) other than a literal the user quotes or names
    (``the message <urgent>``, ``'<b>'``)."""
    quoted = _unquoted(text)
    return any(not _is_literal_angle(text, m, quoted) for m in _ANGLE_PLACEHOLDER.finditer(text))


def question_gate(question: Any) -> tuple[bool, str]:
    """Gate g of spec §5.1 plus hardened checks: ``(True, "ok")`` or ``(False, reason_code)``.

    Codes: ``missing_question`` (not text), ``question_short`` (< 8 chars), ``placeholder_question`` (spec
    patterns), and hardened ``echo``, ``question_placeholder`` (``<…>``), ``question_ellipsis``, ``refusal``,
    ``question_markdown``.
    """
    try:
        if not isinstance(question, str):
            return False, "missing_question"
        q = question.strip().lower()
        if len(q) < MIN_QUESTION_CHARS:
            return False, "question_short"
        if any(pat in q for pat in SPEC_ECHO_PATTERNS) or SPEC_ECHO_REGEX.search(q):
            return False, "placeholder_question"
        if _REFUSAL.search(_unquoted(q)):
            return False, "refusal"
        normed = _norm_words(q)
        if (
            any(f" {p} " in f" {normed} " for p in ECHO_PHRASES)
            or (" tool call " in f" {normed} " and not TOOL_CALL_META_WORDS.isdisjoint(normed.split()))
            or echo_overlap(q, QUESTION_ECHO_NGRAM)
            or echo_coverage(q) >= ECHO_COVERAGE
        ):
            return False, "echo"
        if has_angle_placeholder(question):
            return False, "question_placeholder"
        if _SLOT_ELLIPSIS.search(q):
            return False, "question_ellipsis"
        if _has_markdown(question):
            return False, "question_markdown"
        return True, "ok"
    except Exception as exc:  # noqa: BLE001 - total by contract
        return False, f"gate_error:{type(exc).__name__}"


# ------------------------------------------------------------------------------------------ verify_task
@dataclass
class Verdict:
    """Result of :func:`verify_task`: ``ok``, the first failing rule's ``reason``, the task when ok."""

    ok: bool
    reason: str
    task: Task | None = None
    details: dict[str, Any] = field(default_factory=dict)


def _fail(reason: str, **details: Any) -> Verdict:
    return Verdict(False, reason, None, details)


def _outside_think(text: str) -> str:
    return re.sub(r"<think>.*?</think>", " ", text, flags=re.S | re.I)


def _is_prompt_echo(raw: str) -> bool:
    outside = _outside_think(raw)
    low = outside.lower()
    if any(m in low for m in RAW_ECHO_MARKERS):
        return True
    return echo_overlap(outside[:200_000], RAW_ECHO_NGRAM, wildcards=False, max_words=40_000) is not None


def _raw_properties(params: dict[str, Any]) -> dict[Any, Any]:
    """The parameter map of a raw tool: JSON-Schema ``properties`` or the flat Generator form."""
    props = params.get("properties")
    if isinstance(props, dict) and (
        str(params.get("type", "")).lower() in ("object", "dict") or not isinstance(props.get("type"), str)
    ):
        return props
    return {k: v for k, v in params.items() if not (k == "required" and isinstance(v, list))}


def _param_type(spec: Any) -> str:
    if isinstance(spec, str):  # lenient: "city": "string"
        return spec.strip().lower()
    if isinstance(spec, dict):
        t = spec.get("type")
        if t is None:
            return "<missing>"
        return t.strip().lower() if isinstance(t, str) else repr(t)[:40]
    return f"<{type(spec).__name__}>"


def _check_tools(raw_tools: Any) -> tuple[str, dict[str, Any]] | None:
    """Spec §6.2 tool rules on the raw (strict-JSON) list; a (reason, details) pair on the first failure."""
    if not isinstance(raw_tools, list) or not all(isinstance(t, dict) for t in raw_tools):
        return "tools_not_list", {}
    if not raw_tools:
        return "tools_empty", {}
    seen: set[str] = set()
    for i, raw in enumerate(raw_tools):
        tool = raw["function"] if isinstance(raw.get("function"), dict) else raw
        name = tool.get("name")
        if not isinstance(name, str) or not name.strip():
            return "tool_name_generic", {"tool": i, "name": repr(name)[:60]}
        stripped = name.strip()
        if sum(ch.isalpha() for ch in stripped) <= 2 or stripped.lower() in GENERIC_TOOL_NAMES:
            return "tool_name_generic", {"tool": i, "name": stripped[:60]}
        if stripped in seen:
            return "tool_names_duplicate", {"tool": i, "name": stripped[:60]}
        seen.add(stripped)
        desc = tool.get("description")
        if not isinstance(desc, str) or len(desc.strip()) < MIN_DESCRIPTION_CHARS:
            return "tool_description_short", {"tool": i, "name": stripped[:60]}
        params = tool.get("parameters")
        if not isinstance(params, dict) or not params:
            return "parameters_empty", {"tool": i, "name": stripped[:60]}
        props = _raw_properties(params)
        if not props:
            return "parameters_empty", {"tool": i, "name": stripped[:60]}
        for pname, pspec in props.items():
            t = _param_type(pspec)
            if t not in ALLOWED_PARAM_TYPES or any(part in t for part in REJECTED_TYPE_PARTS):
                return f"param_type_invalid:{t}", {"tool": i, "name": stripped[:60], "param": str(pname)[:60]}
        schema_required = params.get("required") if props is params.get("properties") else None
        for where in (tool.get("required"), schema_required):
            if where is not None and (
                not isinstance(where, list) or not all(isinstance(r, str) for r in where)
            ):
                return "required_not_list", {"tool": i, "name": stripped[:60]}
            # Hardened (not in the reference code): a required name that is no parameter makes the tool incoherent.
            unknown = [r for r in where or () if r not in props]
            if unknown:
                return "required_unknown_param", {"tool": i, "name": stripped[:60], "param": unknown[0][:60]}
    return None


def _is_placeholder_value(value: Any, declared_type: str, question: str = "") -> bool:
    """Hardened: ``<city>``-style values (unless the question holds that exact text), a free-standing ``...``
    (not one inside prose: "Running late... sorry"), a JSON-Schema fragment or the type name as a value."""
    if isinstance(value, dict):
        return bool({"type", "description"} & set(map(str, value)))
    if isinstance(value, str):
        v = value.strip()
        slots = (m.group(0) for m in _ANGLE_PLACEHOLDER.finditer(v))
        if _SLOT_ELLIPSIS.search(v) or any(slot not in question for slot in slots):
            return True
        return v.lower() == declared_type and declared_type in ALLOWED_PARAM_TYPES
    return False


def _check_calls(
    raw_calls: Any, tools: dict[str, Tool], question: str = ""
) -> tuple[str, dict[str, Any]] | tuple[None, list[ToolCall]]:
    if not isinstance(raw_calls, list):
        return "calls_not_list", {}
    if not raw_calls:
        return "calls_empty", {}
    calls: list[ToolCall] = []
    for i, raw in enumerate(raw_calls):
        call = normalise_call(raw) if isinstance(raw, dict) else None
        if call is None:
            return "call_malformed", {"call": i}
        tool = tools.get(call.name)
        if tool is None:
            return "call_unknown_tool", {"call": i, "name": call.name[:60]}
        for k, v in call.arguments.items():
            if v is None:  # deliberate (spec §6.2 allows null primitives): a gold value must be a value
                return "null_value", {"call": i, "argument": str(k)[:60]}
            declared = str(tool.properties.get(k, {}).get("type", "")).lower()
            if _is_placeholder_value(v, declared, question):
                return "placeholder_value", {"call": i, "argument": str(k)[:60]}
        if not all(isinstance(v, PRIMITIVES) for v in call.arguments.values()):
            return "call_args_not_flat", {"call": i, "name": call.name[:60]}
        if tool.required and not call.arguments:
            return "call_args_empty", {"call": i, "name": call.name[:60]}
        missing = [r for r in tool.required if r not in call.arguments]
        if missing:
            return "call_missing_required", {"call": i, "name": call.name[:60], "missing": missing[:10]}
        calls.append(call)
    return None, calls


def verify_task(raw_text: Any, spec: Any = None) -> Verdict:
    """Verify one Generator completion (spec §6.2, in order) and build the :class:`Task` when it passes.

    ``spec`` (a TaskSpec, optional) is not enforced; ``details`` records ``menu_size_ok`` / ``num_calls_ok``.
    An empty gold list is a no-call task only when ``spec`` asks for one (``num_calls`` 0); otherwise it is
    ``calls_empty`` as in spec §6.2.
    """
    try:
        return _verify(raw_text, spec)
    except Exception as exc:  # noqa: BLE001 - total by contract
        return _fail(f"verify_error:{type(exc).__name__}")


def _verify(raw: Any, spec: Any) -> Verdict:
    # 1. Raw output.
    if not isinstance(raw, str) or not raw.strip():
        return _fail("empty")
    if _CJK.search(raw):
        return _fail("cjk")
    if _is_prompt_echo(raw):
        return _fail("prompt_echo")
    # 2. Tags and the question gate.
    question = extract_last_tag(raw, "question")
    if not question:
        # A bare refusal carries no tags: say so rather than "missing tag" (hardened).
        if _REFUSAL.search(raw[:2000]):
            return _fail("refusal")
        return _fail("missing_tag:question", markdown=_has_markdown(raw[:20_000]))
    tools_text = extract_last_tag(raw, "available_tools")
    if not tools_text:
        return _fail("missing_tag:available_tools")
    calls_text = extract_last_tag(raw, "tool_call_answer")
    if not calls_text:
        return _fail("missing_tag:tool_call_answer")
    ok, why = question_gate(question)
    if not ok:
        return _fail(why)
    # 3. Tools: strict JSON, then the per-tool rules.
    parsed_tools = parse_strict_json(tools_text)
    if not parsed_tools.ok:
        return _fail("tools_not_strict_json", parse=parsed_tools.reason)
    bad = _check_tools(parsed_tools.value)
    if bad is not None:
        return _fail(bad[0], **bad[1])
    copied = template_tool_names()
    for raw_tool in parsed_tools.value:
        inner = raw_tool["function"] if isinstance(raw_tool.get("function"), dict) else raw_tool
        if str(inner.get("name", "")).strip().lower() in copied:  # the prompt's toy tool, copied (hardened)
            return _fail("prompt_echo", tool=str(inner.get("name"))[:60])
    # 4. Normalise to JSON-Schema form; required = union of all places it may live (spec §11).
    tools: list[Tool] = []
    for raw_tool in parsed_tools.value:
        tool = normalise_tool(raw_tool)
        if tool is None:  # unreachable after _check_tools, kept for totality
            return _fail("tools_not_list")
        inner = raw_tool["function"] if isinstance(raw_tool.get("function"), dict) else raw_tool
        tool.required = required_of(inner)
        tools.append(tool)
    # 5. Calls (an exact [] is the gold of a no-call task when the spec asks for one).
    parsed_calls = parse_strict_json(calls_text)
    if not parsed_calls.ok:
        return _fail("calls_not_strict_json", parse=parsed_calls.reason)
    no_call = parsed_calls.value == [] and _spec_no_call(spec)
    calls: list[ToolCall] = []
    if not no_call:
        reason, payload = _check_calls(parsed_calls.value, {t.name: t for t in tools}, question)
        if reason is not None:
            return _fail(reason, **payload)
        calls = payload
    # 6. Non-triviality.
    q = question.strip()
    ql = q.lower()
    if len(q) < MIN_NONTRIVIAL_QUESTION_CHARS:
        return _fail("trivial_question_short")
    if any(p in ql for p in BANNED_PHRASES):
        return _fail("trivial_banned_phrase")
    if len(calls) == 1 and len(calls[0].arguments) <= 1 and any(p in ql for p in LOOKUP_PHRASES):
        return _fail("trivial_single_lookup")
    if no_call:
        bad = check_no_call_question(q, tools)
        if bad is not None:
            return _fail(bad[0], **bad[1])
    details: dict[str, Any] = {"num_tools": len(tools), "num_calls": len(calls), "no_call": no_call}
    domain = ""
    if spec is not None:
        domain = str(getattr(spec, "domain", ""))
        details["menu_size_ok"] = len(tools) == getattr(spec, "menu_size", None)
        details["num_calls_ok"] = len(calls) == getattr(spec, "num_calls", None)
        details["spec"] = spec.to_dict() if hasattr(spec, "to_dict") else spec
    task = Task(question=q, tools=tools, calls=calls, domain=domain, meta={})
    return Verdict(True, "ok", task, details)


def _spec_no_call(spec: Any) -> bool:
    try:
        return spec is not None and int(getattr(spec, "num_calls", -1)) == 0
    except (TypeError, ValueError):
        return False


def menu_problem(tools_text: Any) -> str | None:
    """The §6.2 tool-rule reason code of a raw ``<available_tools>`` text (strict JSON), or None when it passes."""
    try:
        parsed = parse_strict_json(tools_text) if isinstance(tools_text, str) else None
        if parsed is None or not parsed.ok:
            return "tools_not_strict_json"
        bad = _check_tools(parsed.value)
        return bad[0] if bad is not None else None
    except Exception as exc:  # noqa: BLE001 - total by contract
        return f"verify_error:{type(exc).__name__}"


def check_no_call_question(question: str, tools: list[Tool]) -> tuple[str, dict[str, Any]] | None:
    """Rules of a no-call task's question (hardened, not in the paper): it must not name a menu tool (a real user
    does not, and it usually means the request is for that tool) nor talk about tools instead of asking."""
    names = {t.name.lower() for t in tools}
    for ident in _IDENTIFIER.findall(question):
        if ident.lower() in names:
            return "no_call_names_tool", {"name": ident[:60]}
    m = _NO_CALL_META.search(question)
    if m:
        return "no_call_meta", {"phrase": m.group(0)[:60]}
    return None


# ------------------------------------------------------------------------------------------ dedup (§6.3)
def _parts(task: Any) -> tuple[str, list[tuple[str, list[str]]], list[tuple[str, list[str]]]]:
    """(question, [(tool name, property keys)], [(call name, argument keys)]) of a Task or task dict; lenient."""
    if isinstance(task, Task):
        return (
            task.question,
            [(t.name, [str(k) for k in t.properties]) for t in task.tools],
            [(c.name, [str(k) for k in c.arguments]) for c in task.calls],
        )
    if not isinstance(task, dict):
        return "", [], []
    q = task.get("question", "")
    q = q if isinstance(q, str) else ""
    tools = []
    for raw in task.get("tools", []) if isinstance(task.get("tools"), list) else []:
        t = normalise_tool(raw)
        if t is not None:
            tools.append((t.name, [str(k) for k in t.properties]))
    calls = []
    for raw in task.get("calls", []) if isinstance(task.get("calls"), list) else []:
        c = normalise_call(raw)
        if c is not None:
            calls.append((c.name, [str(k) for k in c.arguments]))
    return q, tools, calls


def _safe(s: str) -> str:
    return s.encode("utf-8", "replace").decode("utf-8")


def dedup_fingerprint(task: Any) -> str:
    """combo_fp = sha1(norm_q ‖ tool_sig ‖ call_sig) of spec §6.3 (parts joined with ``||``)."""
    try:
        q, tools, calls = _parts(task)
        norm_q = " ".join(re.sub(r"\d", "0", q.lower()).split())
        tool_sig = "|".join(sorted(f"{n}({','.join(sorted(keys))})" for n, keys in tools))
        call_sig = "->".join(f"{n}({','.join(sorted(keys))})" for n, keys in calls)
        return hashlib.sha1(_safe(f"{norm_q}||{tool_sig}||{call_sig}").encode("utf-8")).hexdigest()
    except Exception:  # noqa: BLE001
        return hashlib.sha1(_safe(repr(task)[:100_000]).encode("utf-8")).hexdigest()


_LOW_QUALITY = ("dummy", "placeholder", "lorem ipsum")


def task_quality(task: Any) -> float:
    """min(1, len(q)/220) + min(1, #calls/3) + min(1, #tools/4), minus 1 for dummy/placeholder/lorem ipsum, ≥ 0."""
    try:
        q, tools, calls = _parts(task)
        score = min(1.0, len(q) / 220) + min(1.0, len(calls) / 3) + min(1.0, len(tools) / 4)
        if any(w in unicodedata.normalize("NFKC", q).lower() for w in _LOW_QUALITY):
            score -= 1.0
        return max(0.0, score)
    except Exception:  # noqa: BLE001
        return 0.0


def dedup(tasks: list[Any]) -> tuple[list[Any], list[int]]:
    """Keep the highest-quality task per fingerprint (first one on ties); returns (kept in input order, dropped
    indices ascending)."""
    if not isinstance(tasks, list):
        return [], []
    best: dict[str, int] = {}
    quality: list[float] = []
    for i, t in enumerate(tasks):
        quality.append(task_quality(t))
        fp = dedup_fingerprint(t)
        j = best.get(fp)
        if j is None or quality[i] > quality[j]:
            best[fp] = i
    keep = set(best.values())
    return [t for i, t in enumerate(tasks) if i in keep], [i for i in range(len(tasks)) if i not in keep]
