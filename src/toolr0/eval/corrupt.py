"""Sanity harness: gold answers rendered as Solver completions, and deterministic corruptions of them.

``--predictions gold`` must score 100 %; ``--predictions corrupt`` must score 0 % on every corrupted item, each
with the reason its corruption implies. The corruption kind of an item is a pure function of its id:

| kind | what changes | expected reason |
|---|---|---|
| ``wrong_name`` | first call renamed to a name no gold call uses | ``wrong_name`` |
| ``drop_arg`` | one (preferably required) argument removed | ``missing_arg`` |
| ``change_value`` | one argument value changed (str suffix, number +1, bool flipped, ...) | ``wrong_value`` |
| ``extra_call`` | a copy of the first call appended | ``wrong_count`` |

Kinds that do not apply (no arguments to drop or change) fall back to the next applicable one.
"""

from __future__ import annotations

import copy
import hashlib
import json
from typing import Any

from toolr0.core.schema import Tool, ToolCall

KINDS = ("wrong_name", "drop_arg", "change_value", "extra_call")
EXPECTED_REASON = {
    "wrong_name": "wrong_name",
    "drop_arg": "missing_arg",
    "change_value": "wrong_value",
    "extra_call": "wrong_count",
}
CORRUPT_SUFFIX = " zq corrupted"


def solver_text(calls: list[ToolCall] | list[dict[str, Any]], think: str = "Gold answer.") -> str:
    """A well-formed Solver completion (spec §7.1) answering with ``calls``."""
    rows = [c.to_dict() if isinstance(c, ToolCall) else c for c in calls]
    answer = json.dumps(rows, ensure_ascii=False)
    return f"<think>\n{think}\n</think>\n<tool_call_answer>{answer}</tool_call_answer>"


def corruption_kind(item_id: str) -> str:
    """The first kind tried for an item (stable across runs and machines)."""
    h = int(hashlib.sha256(item_id.encode("utf-8")).hexdigest(), 16)
    return KINDS[h % len(KINDS)]


def changed_value(value: Any, avoid: list[Any] | None = None) -> Any:
    """A value that does not match ``value`` (nor any of ``avoid``) under the §7.3 rules or BFCL's checker."""
    avoid = list(avoid or [])
    if isinstance(value, bool):
        return not value
    if isinstance(value, int):
        nums = [v for v in [value, *avoid] if isinstance(v, int | float) and not isinstance(v, bool)]
        return int(max(nums)) + 1
    if isinstance(value, float):
        nums = [v for v in [value, *avoid] if isinstance(v, int | float) and not isinstance(v, bool)]
        return float(max(nums)) + 1.5
    if isinstance(value, str):
        return value + CORRUPT_SUFFIX
    if isinstance(value, list):
        return [*value, "zq corrupted"]
    if isinstance(value, dict):
        return {**value, "zq_corrupted": 1}
    return "zq corrupted"


def _fresh_name(gold: list[ToolCall], tools: list[Tool]) -> str:
    used = {c.name for c in gold}
    for t in tools:
        if t.name not in used:
            return t.name
    return gold[0].name + "_zq"


def _pick_arg(call: ToolCall, tools: list[Tool], prefer_required: bool) -> str | None:
    if not call.arguments:
        return None
    if prefer_required:
        tool = next((t for t in tools if t.name == call.name), None)
        req = [k for k in (tool.required if tool else []) if k in call.arguments]
        if req:
            return req[0]
    return sorted(call.arguments)[0]


def corrupt_calls(
    item_id: str,
    gold: list[ToolCall],
    tools: list[Tool],
    required: dict[str, list[str]] | None = None,
    avoid_values: dict[tuple[int, str], list[Any]] | None = None,
) -> tuple[list[ToolCall], str]:
    """Deterministically corrupt a non-empty gold list; returns (calls, kind).

    ``required`` (call name → required params) restricts ``drop_arg`` to required arguments (BFCL: dropping an
    optional one is legal); ``avoid_values`` ((call index, param) → allowed values) keeps ``change_value`` off
    every allowed value.
    """
    if not gold:
        raise ValueError("cannot corrupt an empty gold list")
    calls = copy.deepcopy(gold)
    start = KINDS.index(corruption_kind(item_id))
    for k in range(len(KINDS)):
        kind = KINDS[(start + k) % len(KINDS)]
        if kind == "wrong_name":
            calls[0] = ToolCall(_fresh_name(gold, tools), dict(calls[0].arguments))
            return calls, kind
        if kind == "extra_call":
            return [*calls, copy.deepcopy(calls[0])], kind
        for i, c in enumerate(calls):
            if required is not None:
                keys = [r for r in required.get(c.name, []) if r in c.arguments]
                arg = keys[0] if keys else None
                if kind == "change_value" and arg is None:
                    arg = sorted(c.arguments)[0] if c.arguments else None
            else:
                arg = _pick_arg(c, tools, prefer_required=True)
            if arg is None:
                continue
            if kind == "drop_arg":
                del calls[i].arguments[arg]
            else:
                avoid = (avoid_values or {}).get((i, arg), [])
                calls[i].arguments[arg] = changed_value(c.arguments[arg], avoid)
            return calls, kind
    raise AssertionError("unreachable: wrong_name always applies")
