"""Parsing of model output text: tag extraction, relaxed/strict JSON, and tool-call normalisation (spec §4, §7.2).

Every function here is total: it never raises on garbage (huge, deeply nested, truncated, non-UTF-8 text) and
reports failures through a ``reason`` string. Pure: no engine imports. Whole Solver and Generator completions
are read by :mod:`toolr0.core.completions`.
"""

from __future__ import annotations

import ast
import json
import re
import warnings
from dataclasses import dataclass
from typing import Any

from toolr0.core.schema import ToolCall

# Guards for the slower parsers (ast is recursive; json's C scanner is not, but deep input still recurses).
MAX_LITERAL_EVAL_CHARS = 100_000
MAX_NESTING_DEPTH = 100
NAME_KEYS = ("name", "tool_name", "tool", "function_name", "api_name")
ARG_KEYS = ("arguments", "parameters", "args", "params")

_FENCE_RE = re.compile(r"```(?:[ \t]*[A-Za-z0-9_+-]*[ \t]*\r?\n)?(.*?)```", re.S)
_FENCE_OPEN_RE = re.compile(r"^```(?:[ \t]*[A-Za-z0-9_+-]*[ \t]*\r?\n)?")
_CONST_RE = {
    "None": re.compile(r"\bNone\b"),
    "True": re.compile(r"\bTrue\b"),
    "False": re.compile(r"\bFalse\b"),
}
_CONST_JSON = {"None": "null", "True": "true", "False": "false"}
_TAG_RE_CACHE: dict[str, tuple[re.Pattern[str], re.Pattern[str]]] = {}
# A string literal (JSON or Python, either quote, escapes honoured) or a bare `...`; only the bare one is a
# placeholder. Possessive quantifiers keep the scan linear on unterminated strings.
_STRING_OR_ELLIPSIS = re.compile(r'"(?:[^"\\\n]|\\.)*+"|\'(?:[^\'\\\n]|\\.)*+\'|(\.\.\.)')


@dataclass
class ParseResult:
    """Outcome of parsing one text: ``ok`` with ``value``, or not ok with a ``reason``."""

    ok: bool
    value: Any = None
    reason: str = "ok"
    method: str = ""  # json | literal_eval | json_replaced | python_call


# ----------------------------------------------------------------------------------------------- tags
def _tag_patterns(tag: str) -> tuple[re.Pattern[str], re.Pattern[str]]:
    pats = _TAG_RE_CACHE.get(tag)
    if pats is None:
        t = re.escape(tag)
        pats = (re.compile(rf"<\s*{t}\s*>", re.I), re.compile(rf"<\s*/\s*{t}\s*>", re.I))
        _TAG_RE_CACHE[tag] = pats
    return pats


def _last_match(pattern: re.Pattern[str], text: str, end: int | None = None) -> re.Match[str] | None:
    last = None
    for m in pattern.finditer(text, 0, len(text) if end is None else end):
        last = m
    return last


def extract_last_tag(text: Any, tag: str) -> str | None:
    """Content of the last ``<tag>…</tag>`` block, stripped; None when absent.

    Takes the LAST closing tag, then the last opening tag before it, then the first closing tag after that
    opening (case-insensitive). A non-greedy ``findall()[-1]`` would pick a wrong span when the text mentions
    ``<tag>`` earlier (e.g. in a question); ending at the first closing tag keeps a stray second closing tag
    out of the content.
    """
    if not isinstance(text, str) or not text:
        return None
    open_re, close_re = _tag_patterns(tag)
    close = _last_match(close_re, text)
    if close is None:
        return None
    opening = _last_match(open_re, text, close.start())
    if opening is None:
        return None
    first_close = close_re.search(text, opening.end())  # never None: `close` lies after the opening
    end = first_close.start() if first_close is not None else close.start()
    return text[opening.end() : end].strip()


def extract_unclosed_tail(text: Any, tag: str) -> str | None:
    """Content after the last opening ``<tag>`` when no closing tag follows it (generation ended inside)."""
    if not isinstance(text, str) or not text:
        return None
    open_re, close_re = _tag_patterns(tag)
    opening = _last_match(open_re, text)
    if opening is None:
        return None
    if close_re.search(text, opening.end()) is not None:
        return None
    return text[opening.end() :].strip()


# ------------------------------------------------------------------------------------------ JSON etc.
def strip_fences(s: Any) -> str:
    """Remove Markdown code fences: a fenced whole string gives its first block; text that is not itself
    JSON-looking (``[``/``{`` first) gives its last fenced block; anything else is only stripped."""
    if not isinstance(s, str):
        return ""
    t = s.strip()
    if "```" not in t or t[:1] in "[{":
        return t
    if t.startswith("```"):
        m = _FENCE_RE.match(t)
        if m:
            return m.group(1).strip()
        return _FENCE_OPEN_RE.sub("", t, count=1).strip()  # unclosed fence (truncated generation)
    blocks = _FENCE_RE.findall(t)
    return blocks[-1].strip() if blocks else t


def _max_depth_exceeds(s: str, limit: int) -> bool:
    """Cheap bracket-depth scan (ignores quoting; conservative), so ast never sees pathological nesting."""
    depth = 0
    for ch in s:
        if ch in "[{(":
            depth += 1
            if depth > limit:
                return True
        elif ch in "]})":
            depth = max(0, depth - 1)
    return False


def _jsonish(value: Any, depth: int = 0) -> Any:
    """Tuples → lists and dict keys → str (literal_eval results), recursively, so values dump as JSON."""
    if depth > MAX_NESTING_DEPTH:
        return value
    if isinstance(value, tuple | list):
        return [_jsonish(v, depth + 1) for v in value]
    if isinstance(value, dict):
        return {str(k): _jsonish(v, depth + 1) for k, v in value.items()}
    return value


def _json_loads(s: str) -> ParseResult:
    try:
        return ParseResult(True, json.loads(s), "ok", "json")
    except (ValueError, RecursionError, MemoryError, TypeError) as e:
        return ParseResult(False, None, f"json_error: {type(e).__name__}")


def has_placeholder_ellipsis(s: str) -> bool:
    """A bare ``...`` outside every string literal (``[...]``, ``{...}``, ``"a": ...``), the placeholder the
    spec's ellipsis rule targets; an ellipsis inside a string ("Running late... sorry") is text."""
    return any(m.group(1) for m in _STRING_OR_ELLIPSIS.finditer(s))


def _quiet(fn: Any, *args: Any, **kwargs: Any) -> Any:
    """``fn(*args)`` with the compiler's warnings silenced: model text such as ``1if`` or ``"\\d"`` makes
    Python's tokenizer warn (SyntaxWarning, DeprecationWarning) on stderr, noise that says nothing about the
    reply being parsed."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return fn(*args, **kwargs)


def parse_relaxed(s: Any) -> ParseResult:
    """Relaxed parse of spec §7.2: strip fences; reject a placeholder ``...``; json → ast.literal_eval → json
    with None/True/False replaced by null/true/false. Never raises."""
    if not isinstance(s, str):
        return ParseResult(False, None, "not_text")
    try:
        t = strip_fences(s)
        if not t:
            return ParseResult(False, None, "empty")
        # Deliberate difference from spec §7.2 ("reject any text containing ..."): only a placeholder `...`.
        if "..." in t and has_placeholder_ellipsis(t):
            return ParseResult(False, None, "ellipsis")
        r = _json_loads(t)
        if r.ok:
            return r
        if len(t) <= MAX_LITERAL_EVAL_CHARS and not _max_depth_exceeds(t, MAX_NESTING_DEPTH):
            try:
                return ParseResult(True, _jsonish(_quiet(ast.literal_eval, t)), "ok", "literal_eval")
            except (ValueError, TypeError, SyntaxError, RecursionError, MemoryError):
                pass
        replaced = t
        for k, pat in _CONST_RE.items():
            if k in replaced:  # the word itself must be there; a regex scan of long text is not free
                replaced = pat.sub(_CONST_JSON[k], replaced)
        if replaced != t:
            r2 = _json_loads(replaced)
            if r2.ok:
                r2.method = "json_replaced"
                return r2
        return ParseResult(False, None, "unparseable")
    except Exception as e:  # noqa: BLE001 - parsers are total by contract
        return ParseResult(False, None, f"parse_error: {type(e).__name__}")


def _reject_constant(name: str) -> Any:
    raise ValueError(f"non-standard JSON constant {name}")


def parse_strict_json(s: Any, fences: bool = True) -> ParseResult:
    """Strict JSON (spec §6.2): ``json.loads`` only, NaN/Infinity rejected; fences stripped unless told not to."""
    if not isinstance(s, str):
        return ParseResult(False, None, "not_text")
    try:
        t = strip_fences(s) if fences else s.strip()
        if not t:
            return ParseResult(False, None, "empty")
        return ParseResult(True, json.loads(t, parse_constant=_reject_constant), "ok", "json")
    except (ValueError, RecursionError, MemoryError, TypeError) as e:
        return ParseResult(False, None, f"json_error: {type(e).__name__}")
    except Exception as e:  # noqa: BLE001
        return ParseResult(False, None, f"parse_error: {type(e).__name__}")


# ------------------------------------------------------------------------------------- python calls
def _dotted_name(node: ast.AST) -> str | None:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        base = _dotted_name(node.value)
        return None if base is None else f"{base}.{node.attr}"
    return None


def _call_from_node(node: ast.AST) -> ToolCall | None:
    if not isinstance(node, ast.Call) or node.args:
        return None  # positional arguments cannot be mapped to parameter names
    name = _dotted_name(node.func)
    if not name:
        return None
    args: dict[str, Any] = {}
    for kw in node.keywords:
        if kw.arg is None:  # **kwargs
            return None
        args[kw.arg] = _jsonish(ast.literal_eval(kw.value))  # literals only: safe
    return ToolCall(name, args)


def parse_python_calls(s: Any) -> list[ToolCall] | None:
    """Parse ``f(a=1, b='x')`` or ``[f(a=1), g()]`` (keyword literal arguments only); None on failure."""
    if not isinstance(s, str):
        return None
    t = strip_fences(s)
    if not t or len(t) > MAX_LITERAL_EVAL_CHARS or _max_depth_exceeds(t, MAX_NESTING_DEPTH):
        return None
    try:
        tree = _quiet(ast.parse, t, mode="eval")
        body = tree.body
        nodes = list(body.elts) if isinstance(body, ast.List | ast.Tuple) else [body]
        calls = [_call_from_node(n) for n in nodes]
        if any(c is None for c in calls):
            return None
        return [c for c in calls if c is not None]
    except Exception:  # noqa: BLE001 - SyntaxError, ValueError, RecursionError, MemoryError ...
        return None


# ------------------------------------------------------------------------------------ normalisation
def _arguments_of(raw: Any) -> dict[str, Any] | None:
    """Arguments as a dict; a JSON (or relaxed) string is parsed; None/"" mean no arguments."""
    if raw is None:
        return {}
    if isinstance(raw, str):
        if not raw.strip():
            return {}
        r = parse_relaxed(raw)
        raw = r.value if r.ok else None
    if isinstance(raw, dict):
        return {str(k): v for k, v in raw.items()}
    return None


def normalise_call(obj: Any, single_key: bool = False) -> ToolCall | None:
    """Normalise one call of any common shape to :class:`ToolCall`; None when it is not a call.

    Shapes: ``{"name","arguments"}``; OpenAI ``{"function": {"name","arguments"}}`` (arguments may be a JSON
    string); Seal-Tools ``{"tool","parameters"}``; ``tool_name``; flat dicts (every key except the name becomes
    an argument); a python-call string ``f(a=1)``. ``single_key`` (off: not in the reference normaliser, and it
    would let any ``{"word": {}}`` count as a call in the Solver format reward) also accepts ``{"f": {args}}``.
    """
    try:
        if isinstance(obj, ToolCall):
            return obj
        if isinstance(obj, str):
            calls = parse_python_calls(obj)
            return calls[0] if calls and len(calls) == 1 else None
        if not isinstance(obj, dict):
            return None
        fn = obj.get("function")
        if isinstance(fn, dict):
            inner = normalise_call(fn, single_key)
            if inner is not None:
                return inner
        name_key = next((k for k in NAME_KEYS if isinstance(obj.get(k), str) and obj[k].strip()), None)
        if name_key is None and isinstance(fn, str) and fn.strip():
            name_key = "function"
        if name_key is None:
            if single_key and len(obj) == 1:  # {"func_name": {param: value}}
                ((k, v),) = obj.items()
                if isinstance(k, str) and k.strip() and isinstance(v, dict) and k not in ARG_KEYS:
                    return ToolCall(k.strip(), {str(a): b for a, b in v.items()})
            return None
        name = obj[name_key].strip()
        arg_key = next((k for k in ARG_KEYS if k in obj), None)
        if arg_key is None:  # flat dict: everything but the name is an argument
            return ToolCall(name, {str(k): v for k, v in obj.items() if k != name_key})
        args = _arguments_of(obj[arg_key])
        return None if args is None else ToolCall(name, args)
    except Exception:  # noqa: BLE001
        return None


def normalise_calls(obj: Any, single_key: bool = False) -> list[ToolCall]:
    """Normalise a list of calls (dict elements that fail are dropped), a single call, or an OpenAI message
    with ``tool_calls``. A string is parsed relaxed first, then as python calls."""
    try:
        if isinstance(obj, str):
            r = parse_relaxed(obj)
            if r.ok:
                return normalise_calls(r.value, single_key)
            return parse_python_calls(obj) or []
        if isinstance(obj, list | tuple):
            out = []
            for el in obj:
                if isinstance(el, dict | ToolCall):
                    c = normalise_call(el, single_key)
                    if c is not None:
                        out.append(c)
            return out
        if isinstance(obj, dict):
            if isinstance(obj.get("tool_calls"), list):
                return normalise_calls(obj["tool_calls"], single_key)
            c = normalise_call(obj, single_key)
            return [] if c is None else [c]
        if isinstance(obj, ToolCall):
            return [obj]
        return []
    except Exception:  # noqa: BLE001
        return []
