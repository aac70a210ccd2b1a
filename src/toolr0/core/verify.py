"""Structural verification of one Generator output: the task rules of spec §6.2, plus hardened checks.

- :func:`verify_task` — every rule of spec §6.2 in order, one reason code per rule, plus hardened
  null-value / placeholder-value / fragment-value / refusal / echo checks (the question itself goes through
  :func:`toolr0.core.question_gate.question_gate`, spec §5.1). Spec m and n are not enforced, only recorded in
  ``details``.
- No-call tasks (not in the paper): when the spec asks for ``num_calls`` 0, a gold list that is exactly ``[]``
  is accepted, with the same question gate, tool rules and non-triviality rules plus their own
  (``no_call_names_tool``, ``no_call_meta``). Whether some menu tool could in fact serve the request is not
  checkable structurally: the frozen Solver's pass rate (it must answer ``[]``) is the check.
- :func:`check_call_question` — hardened: a call task's question states no number the gold does not hold, asks
  no more than the calls answer, and singles out each gold tool that has a look-alike on the menu.
- :func:`menu_problem`, :func:`check_no_call_question` — the tool rules and the no-call rules on their own (the
  Generator's validity reward uses them).

Deduplication (spec §6.3) lives in :mod:`toolr0.core.dedup`. Nothing here raises on garbage input.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from toolr0.core.parsing import extract_last_tag, normalise_call, parse_strict_json
from toolr0.core.question_gate import (
    ANGLE_PLACEHOLDER,
    REFUSAL,
    SLOT_ELLIPSIS,
    has_markdown,
    is_conversation,
    is_prompt_echo,
    question_gate,
    template_tool_names,
)
from toolr0.core.schema import Task, Tool, ToolCall, normalise_tool, required_of

_CJK = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff\uff66-\uff9f]")

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
# Hardened (not in the paper): words a gold string value cannot end on. A value that is one of them, or a span
# of the question cut after one ("Save time and money with your"), is a fragment the grammar's grounding let
# through (5 of the v3 native run's 27 verified call tasks); 1 of the 6,863 string gold values of the Hammer and
# BFCL data ends on one (tests/test_verify.py). All-caps tokens ("A", "OR", "AM") are codes, not function words.
FRAGMENT_END_WORDS = frozenset(
    """a an the and or nor but of to for with from by about as at into onto upon than your my our their his her
    its this that these those is are was were be been am do does did if so because while""".split()
)
_WORDS = re.compile(r"\w+|[^\w\s]")

# No-call questions that talk about the tools instead of making a request (the answer key leaks into the question).
_NO_CALL_META = re.compile(
    r"\b(?:none|any) of (?:the|these|those|your|my) (?:available |given |provided )?(?:tools|functions)\b"
    r"|\b(?:available|given|provided) (?:tools|functions)\b|\bno (?:tool|function) (?:can|could|is|fits|will)\b"
    r"|\b(?:without|not|n['’]t) (?:using|calling|use|call) (?:a|any|the) (?:tools?|functions?)\b",
    re.I,
)
# Hardened (not in the paper): a question that states a number no gold value holds ("allocate memory with ID 1
# and an amount of 1,000,000,000 units", gold only `id`) or asks more questions than the gold calls answer. The
# 0.5B Solver passes such a number as an argument the tool lacks, or answers the extra questions, so no sample
# matches: 15 of round 3's 30 verified call tasks at step 0 stated one, 4 of them ever solved (RESULTS.md).
# Hardened: a gold tool with a look-alike on the menu (the same parameter names) must be singled out by the
# question with a word of its name the look-alikes lack; "IoT devices ... 1234567890" over IoT1 / IoT2 / IoT3 or
# "medical history" over Cardiography / Radiology was solved only by lucky guesses (13 of the 14 such tasks of
# step-0 rounds 3-5 unsolvable when read, RESULTS.md).
_NAME_WORD = re.compile(r"[A-Z]+(?![a-z])|[A-Z]?[a-z]+")
NAME_STEM_CHARS = 5  # "tracker" and "tracking", "management" and "manage" share a stem
_QUESTION_NUMBER = re.compile(r"(?<![\w.,])\d+(?:[.,]\d+)*")  # "1,000", "250.50", "2023"; not "IoT1"
_DIGITS = re.compile(r"\d+")
_IDENTIFIER = re.compile(r"[A-Za-z][A-Za-z0-9]*(?:_[A-Za-z0-9]+)+|[a-z]+(?:[A-Z][a-z0-9]+)+")


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


def _is_placeholder_value(
    value: Any, declared_type: str, question: str = "", tool: Tool | None = None, key: str = ""
) -> bool:
    """Hardened: ``<city>``-style values (unless the question holds that exact text), a free-standing ``...``
    (not one inside prose: "Running late... sorry"), a JSON-Schema fragment or the type name as a value, and
    the name of one of the tool's own parameters as a value (``{"city": "city"}``, ``{"location": "date"}``:
    3 of the 10 tasks of the v2 native curriculum had such unfillable gold, RESULTS.md) unless the argument's
    ``enum`` lists it."""
    if isinstance(value, dict):
        return bool({"type", "description"} & set(map(str, value)))
    if isinstance(value, str):
        v = value.strip()
        slots = (m.group(0) for m in ANGLE_PLACEHOLDER.finditer(v))
        if SLOT_ELLIPSIS.search(v) or any(slot not in question for slot in slots):
            return True
        if v.lower() == declared_type and declared_type in ALLOWED_PARAM_TYPES:
            return True
        if tool is not None and v.lower() in {str(p).strip().lower() for p in tool.properties}:
            return not _enum_lists(tool, key, v)
    return False


def _enum_lists(tool: Tool, key: str, value: Any) -> bool:
    """Whether the argument's ``enum`` lists the value (then it is a value whatever it looks like)."""
    enum = tool.properties.get(key, {}).get("enum")
    return isinstance(enum, list) and str(value).strip() in map(str, enum)


def is_fragment_value(value: Any) -> bool:
    """A string gold value that is a lone function word ("for", "Please") or ends on one, a cut span of the
    question ("Save time and money with your"); never true for a non-string or an all-caps last token."""
    if not isinstance(value, str):
        return False
    words = _WORDS.findall(value.strip())
    if not words or words[-1].isupper():
        return False
    last = words[-1].lower()
    return last in FRAGMENT_END_WORDS or (len(words) == 1 and last == "please")


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
            if _is_placeholder_value(v, declared, question, tool, k):
                return "placeholder_value", {"call": i, "argument": str(k)[:60]}
            if is_fragment_value(v) and not _enum_lists(tool, k, v):
                return "fragment_value", {"call": i, "argument": str(k)[:60]}
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
    if is_prompt_echo(raw):
        return _fail("prompt_echo")
    # 2. Tags and the question gate.
    question = extract_last_tag(raw, "question")
    if not question:
        # A bare refusal carries no tags: say so rather than "missing tag" (hardened).
        if REFUSAL.search(raw[:2000]):
            return _fail("refusal")
        return _fail("missing_tag:question", markdown=has_markdown(raw[:20_000]))
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
    if calls:
        bad = check_call_question(q, calls, tools)
        if bad is not None:
            return _fail(bad[0], **bad[1])
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


def _user_text(question: str) -> str:
    """The user's words of a question: a conversation's ``Agent:`` lines dropped."""
    return "\n".join(ln for ln in question.splitlines() if not ln.lstrip().lower().startswith("agent:"))


def _stems(text: str, min_chars: int = 1) -> set[str]:
    return {w.lower()[:NAME_STEM_CHARS] for w in _NAME_WORD.findall(text) if len(w) >= min_chars}


def unsingled_tool(question: str, calls: list[ToolCall], tools: list[Tool]) -> str | None:
    """The first gold tool that has a look-alike on the menu (the same parameter names) and that the question
    names by no word of its own (3+ letters, compared on 5-letter stems) the look-alikes' names lack; else None."""
    params = {t.name: set(t.properties) for t in tools}
    asked = _stems(question)
    for call in calls:
        twins = [n for n, ps in params.items() if n != call.name and ps == params.get(call.name)]
        if twins and not (_stems(call.name, 3) - set().union(*(_stems(n, 3) for n in twins))) & asked:
            return call.name
    return None


def check_call_question(
    question: str, calls: list[ToolCall], tools: list[Tool] | None = None
) -> tuple[str, dict[str, Any]] | None:
    """Hardened rules for a call task's question against its gold calls: ``question_extra_number`` (a number of
    the user's words that no gold value holds: each digit run equals one of a gold value's digit runs, or the
    whole number equals a numeric gold value, so "1,000" and "250.50" state 1000 and 250.5) and
    ``question_asks_more`` (a single message with more question marks than gold calls + 1), then with ``tools``
    ``gold_tool_not_singled_out`` (:func:`unsingled_tool`). None when all hold."""
    values = [v for c in calls for v in c.arguments.values() if not isinstance(v, bool) and v is not None]
    runs = {r.lstrip("0") for v in values for r in _DIGITS.findall(str(v))}  # "04" states 4
    numbers = {float(v) for v in values if isinstance(v, int | float)}
    extra = []
    for token in _QUESTION_NUMBER.findall(_user_text(question)):
        if all(r.lstrip("0") in runs for r in _DIGITS.findall(token)):
            continue
        try:
            if float(token.replace(",", "")) in numbers:
                continue
        except ValueError:
            pass
        extra.append(token)
    if extra:
        return "question_extra_number", {"numbers": extra[:5]}
    if not is_conversation(question) and question.count("?") > len(calls) + 1:
        return "question_asks_more", {"question_marks": question.count("?"), "calls": len(calls)}
    name = unsingled_tool(question, calls, tools or [])
    if name is not None:
        return "gold_tool_not_singled_out", {"tool": name[:60]}
    return None


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
