"""The Solver's `native` format: the model's own chat-template tool calling (docs/solver_format.md).

In this format the Solver prompt is the user's question plus the menu passed to the chat template as
``tools=`` (OpenAI function schemas), and the reply is read the way the model family writes calls:

- Hermes / Qwen blocks: ``<tool_call>{"name": ..., "arguments": {...}}</tool_call>``, one block per call
  (the template's own form: the only one the *strict* reading accepts);
- a JSON call (object or list) in a Markdown code fence, or bare (Llama-3 style ``{"name", "parameters"}``,
  optionally after ``<|python_tag|>``, several separated by ``;``).

A reply with no call in any of these forms means "no tool call" (gold ``[]``), as in the OpenAI API.
An optional ``<think>…</think>`` before the calls (the "reason first" switch) is read and set aside.

Everything here is pure and total: parsers never raise and always say why (``SolverParse.reason``).
The paper's own format (``reference``, spec §7.1) stays in ``core.completions``.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

from toolr0.core.completions import SolverParse
from toolr0.core.parsing import extract_last_tag, normalise_call, parse_relaxed
from toolr0.core.schema import Tool, ToolCall, normalise_tool

_BLOCK_RE = re.compile(r"<tool_call>(.*?)</tool_call>", re.IGNORECASE | re.DOTALL)
_OPEN_RE = re.compile(r"<tool_call>", re.IGNORECASE)
_THINK_RE = re.compile(r"<think>.*?</think>", re.IGNORECASE | re.DOTALL)
_FENCE_RE = re.compile(r"```[a-zA-Z0-9_+-]*[ \t]*\n?(.*?)```", re.DOTALL)
_PY_TAG = "<|python_tag|>"
_CALL_KEYS = ("arguments", "parameters", "args", "function")
MAX_REPLY_CHARS = 200_000  # longer replies are cut before scanning (bounded work on garbage)


@dataclass
class NativeParse(SolverParse):
    """A native-format reply: ``calls`` is the lenient reading (however the calls were wrapped).

    ``wrapper`` says where the calls were found (``tool_call``, ``fence``, ``bare``, ``none``);
    ``strict_calls`` are the calls inside well-formed template blocks only; ``malformed_blocks`` counts
    ``<tool_call>`` blocks whose content is not one call (or a list of calls); ``unclosed`` is set when the
    reply ends inside an open ``<tool_call>``.
    """

    wrapper: str = "none"
    strict_calls: list[ToolCall] = field(default_factory=list)
    malformed_blocks: int = 0
    stray_text: bool = False  # non-blank text outside the blocks (and outside <think>) beside the calls

    @property
    def strict_ok(self) -> bool:
        """The template's own form: every block well formed and nothing unclosed (no call counts as ok)."""
        if self.malformed_blocks or self.unclosed:
            return False
        return self.wrapper in ("tool_call", "none")

    @property
    def no_call(self) -> bool:
        """The reply makes no tool call at all (the right answer when the gold list is empty)."""
        return self.parsed and not self.calls and self.wrapper == "none"


def _is_schema(obj: Any) -> bool:
    """A tool *definition* (its parameters a JSON Schema object), which small models echo from the prompt."""
    if not isinstance(obj, dict):
        return False
    inner = obj.get("function") if isinstance(obj.get("function"), dict) else obj
    params = inner.get("parameters")
    return "arguments" not in inner and isinstance(params, dict) and params.get("type") == "object"


def _call_shaped(obj: Any) -> bool:
    if not isinstance(obj, dict) or _is_schema(obj):
        return False
    return isinstance(obj.get("function"), dict) or ("name" in obj and any(k in obj for k in _CALL_KEYS))


def _calls_of(value: Any, need_shape: bool) -> list[ToolCall] | None:
    """Calls in a parsed value (one call or a list of calls); None when it is not calls.

    ``need_shape`` (fence/bare JSON): only objects that look like calls count, so a JSON answer with data in
    it (``{"name": "Ana"}``) is not read as a call.
    """
    items = value if isinstance(value, list) else [value]
    if not items:
        return []
    out: list[ToolCall] = []
    for item in items:
        if need_shape and not _call_shaped(item):
            return None
        call = normalise_call(item) if isinstance(item, dict) else None
        if call is None:
            return None
        out.append(call)
    return out


# where a JSON list or object can start: a "{" must open a key or close at once. Trying the decoder at every
# other "{" made "{{{{…" quadratic (each failure counts the lines up to its position).
_VALUE_START = re.compile(r'\[|\{\s*["}]')


def _json_values(text: str) -> list[Any]:
    """Every top-level JSON object/list that starts a line-ish position in ``text`` (raw_decode scan)."""
    dec = json.JSONDecoder()
    out: list[Any] = []
    i, n = 0, len(text)
    # characters the decoder may read in failed attempts: every start inside an unclosed "[[[[…" or
    # '{"a":{"a":…' reads to its end, quadratic work on garbage; prose fails within a few characters
    budget = 4 * n + 1000
    while i < n and budget > 0:
        m = _VALUE_START.search(text, i)
        if m is None:
            break
        j = m.start()
        try:
            value, end = dec.raw_decode(text, j)
        except (ValueError, RecursionError) as e:
            budget -= max(1, int(getattr(e, "pos", n)) - j)
            i = j + 1
            continue
        out.append(value)
        i = end
    return out


def _from_blocks(body: str, out: NativeParse) -> bool:
    blocks = _BLOCK_RE.findall(body)
    tail = body[body.lower().rfind("</tool_call>") + len("</tool_call>") :] if blocks else body
    open_tail = _OPEN_RE.search(tail)
    if not blocks and open_tail is None:
        return False
    texts = list(blocks)
    if open_tail is not None:
        out.unclosed = True
        texts.append(tail[open_tail.end() :])
    strict: list[ToolCall] = []
    lenient: list[ToolCall] = []
    tail_failed = False
    for k, raw in enumerate(texts):
        r = parse_relaxed(raw)
        calls = _calls_of(r.value, need_shape=False) if r.ok else None
        closed = k < len(blocks)
        if not calls and not closed:
            # an opened, never-closed tag before a complete JSON call (e.g. ended by a code fence: "```json
            # <tool_call> {...} ```"): the call is there, so the lenient reading takes it (the strict one never)
            calls = [c for v in _json_values(raw) for c in (_calls_of(v, need_shape=True) or [])] or None
        if calls is None or not calls:
            if closed:
                out.malformed_blocks += 1
            else:
                tail_failed = True
            continue
        lenient.extend(calls)
        if closed:
            strict.extend(calls)
    outside = _BLOCK_RE.sub("", body)
    if open_tail is not None:
        outside = outside[: outside.lower().rfind("<tool_call>")] if "<tool_call>" in outside.lower() else outside
    out.stray_text = bool(outside.strip())
    out.wrapper = "tool_call"
    out.strict_calls = strict
    out.calls = lenient
    out.value = [c.to_dict() for c in lenient]
    out.parsed = bool(lenient)
    out.answer_text = "\n".join(t.strip() for t in texts)
    if not lenient:
        out.reason = "unclosed_tool_call" if tail_failed and not out.malformed_blocks else "malformed_tool_call"
    elif out.malformed_blocks:
        out.reason = "some_blocks_malformed"
    elif out.unclosed:
        out.reason = "unclosed_tool_call"
    return True


def _from_json(body: str, out: NativeParse) -> bool:
    """A call in a code fence, or bare JSON (Llama-3 style), anywhere in the reply."""
    fenced = "```" in body  # every fence match starts with it; the regex scans of long text are not free
    fences = _FENCE_RE.findall(body) if fenced else []
    bare = _FENCE_RE.sub(" ", body) if fenced else body
    sources = [("fence", f) for f in fences] + [("bare", bare.replace(_PY_TAG, " "))]
    for wrapper, src in sources:
        calls: list[ToolCall] = []
        for value in _json_values(src):
            got = _calls_of(value, need_shape=True)
            if got:
                calls.extend(got)
        if not calls and wrapper == "fence":
            r = parse_relaxed(src)  # python-literal dicts (single quotes) inside a fence
            got = _calls_of(r.value, need_shape=True) if r.ok else None
            calls = got or []
        if calls:
            out.wrapper, out.calls, out.parsed = wrapper, calls, True
            out.value = [c.to_dict() for c in calls]
            out.answer_text = src.strip()
            out.reason = f"calls_in_{wrapper}"
            return True
    return False


def parse_native_output(text: Any) -> NativeParse:
    """Read a native-format reply: template blocks first, then a fenced or bare JSON call, else no call."""
    out = NativeParse()
    if not isinstance(text, str):
        out.reason = "not_text"
        return out
    try:
        text = text[:MAX_REPLY_CHARS]
        out.think = extract_last_tag(text, "think")
        body = _THINK_RE.sub("", text)
        if _from_blocks(body, out) or _from_json(body, out):
            return out
        out.parsed, out.value, out.answer_text = True, [], body.strip()
        out.reason = "no_call"
        return out
    except Exception as e:  # noqa: BLE001 - parsers are total by contract
        out.reason = f"parse_error: {type(e).__name__}"
        return out


def openai_tool(tool: Tool | dict[str, Any]) -> dict[str, Any] | None:
    """One menu tool as an OpenAI function schema (what chat templates take as ``tools=``)."""
    t = tool if isinstance(tool, Tool) else normalise_tool(tool)
    if t is None:
        return None
    return {"type": "function", "function": t.to_json_schema()}


def openai_tools(tools: Any) -> list[dict[str, Any]]:
    """A whole menu as OpenAI function schemas (tools that do not normalise are left out)."""
    rows = [openai_tool(t) for t in (tools if isinstance(tools, list) else [])]
    return [r for r in rows if r is not None]


def render_native_calls(calls: list[ToolCall]) -> str:
    """Calls written the way the template's own format writes them (Hermes/Qwen blocks)."""
    return "\n".join(
        "<tool_call>\n" + json.dumps(c.to_dict(), ensure_ascii=False) + "\n</tool_call>" for c in calls
    )
