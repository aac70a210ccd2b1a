"""Deduplication of verified tasks (spec §6.3): fingerprint, quality score, keep the best per fingerprint."""

from __future__ import annotations

import hashlib
import re
import unicodedata
from typing import Any

from toolr0.core.parsing import normalise_call
from toolr0.core.schema import Task, normalise_tool


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
