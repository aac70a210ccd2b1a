"""The hand audit of one iteration's tasks: a blind sheet of the unique verified tasks for a person to label
solvable or not, and the agreement of those labels with what stage B concluded about each task.

A task is "solved" by the pipeline when it passed cross-verification (or was exempt from it) and the frozen Solver's
pass@K gave p̂ > 0; "unsolved" when cross-verification dropped it or p̂ = 0; "pending" while stage B has not
reached it. The sheet shows the question, the menu and the gold calls only (the verdicts go to a key file beside
it), so the label is the reader's. Pure: rows in, text and numbers out; `cli/audit_cmd.py` reads and writes files.
"""

from __future__ import annotations

import re
from typing import Any

from toolr0.selfplay.funnel import call_kind, call_text, fmt_num

SOLVED, UNSOLVED, PENDING = "solved", "unsolved", "pending"
# what a reader may write after "label:" (any letter case); anything else counts as not labelled
LABEL_WORDS = {
    "solvable": True, "s": True, "yes": True, "y": True,
    "unsolvable": False, "u": False, "no": False, "n": False,
}  # fmt: skip
KIND_WORDS = {"no_call": "no call", "single_call": "one call", "multi_call": "two or more calls"}


def audit_items(
    candidates: list[dict[str, Any]],
    dedup: list[dict[str, Any]],
    crossverify: list[dict[str, Any]],
    passrates: list[dict[str, Any]],
    calls_only: bool = True,
) -> list[dict[str, Any]]:
    """The iteration's unique verified tasks (call tasks only unless ``calls_only`` is off), in candidate order,
    each ``{"id", "task", "kind", "verdict", "why"}`` with the pipeline's verdict and the numbers behind it."""
    dropped = {r.get("id") for r in dedup if not r.get("kept", True)}
    xv = {r.get("id"): r for r in crossverify}
    pk = {r.get("id"): r for r in passrates}
    out, seen = [], set()
    for r in candidates:
        task = r.get("task")
        if not r.get("ok") or not isinstance(task, dict) or r.get("id") in dropped | seen:
            continue
        seen.add(r["id"])  # a batch re-written after a kill repeats its ids
        if calls_only and not task.get("calls"):
            continue
        rid = r["id"]
        verdict, why = _verdict(xv.get(rid), pk.get(rid))
        out.append({"id": rid, "task": task, "kind": call_kind(task), "verdict": verdict, "why": why})
    return out


def _verdict(xv: dict[str, Any] | None, pk: dict[str, Any] | None) -> tuple[str, str]:
    if xv is not None and not xv.get("kept", True):
        return UNSOLVED, f"cross-verification agreement {fmt_num(xv.get('agreement'))}"
    if pk is None or not isinstance(pk.get("p_hat"), int | float):
        return PENDING, "no pass@K yet"
    p = float(pk["p_hat"])
    return (SOLVED if p > 0 else UNSOLVED), f"p̂ {p:.2f}"


def _signature(tool: Any) -> str:
    if not isinstance(tool, dict):
        return f"`{tool!s}`"
    params = tool.get("parameters") if isinstance(tool.get("parameters"), dict) else {}
    props = params.get("properties") if isinstance(params.get("properties"), dict) else {}
    required = set(params.get("required") or []) if isinstance(params.get("required"), list) else set()
    args = ", ".join(
        f"{k}: {v.get('type', '?') if isinstance(v, dict) else '?'}{'*' if k in required else ''}"
        for k, v in props.items()
    )
    desc = " ".join(str(tool.get("description") or "").split())
    return f"`{tool.get('name', '?')}({args})`" + (f": {desc[:160]}" if desc else "")


def sheet_markdown(items: list[dict[str, Any]], title: str) -> str:
    """The blind sheet: per task its question, menu (``*`` = required) and gold calls, and a ``label: ?`` line."""
    lines = [
        f"# {title}",
        "",
        "Write `solvable` after `label:` when a careful reader of the question and the menu would make exactly",
        "the gold calls (the right tools, every value stated or plainly implied), `unsolvable` otherwise; leave `?`",
        "to skip. The pipeline's verdicts are in the key file beside this sheet: label before opening it.",
        "Then: `toolr0 audit score <this file>`.",
    ]
    for i, it in enumerate(items, 1):
        task = it["task"]
        lines += ["", f"## {i}. {it['id']} ({KIND_WORDS[it['kind']]}, {task.get('domain') or '?'})", ""]
        lines.append(f"question: {' '.join(str(task.get('question', '')).split())}")
        lines.append("menu:")
        lines += [f"- {_signature(t)}" for t in task.get("tools") or []]
        gold = task.get("calls") or []
        lines.append("gold: " + ("; ".join(f"`{call_text(c)}`" for c in gold) if gold else "[] (no call)"))
        lines.append("label: ?")
    return "\n".join(lines) + "\n"


_SECTION = re.compile(r"^## \d+\. (\S+)")
_LABEL = re.compile(r"^label:\s*(.*?)\s*$", re.IGNORECASE)


def parse_labels(text: str) -> dict[str, bool | None]:
    """{task id: True (solvable) / False (unsolvable) / None (not labelled)} from a filled sheet; never raises."""
    out: dict[str, bool | None] = {}
    current = None
    for line in str(text).splitlines():
        if m := _SECTION.match(line):
            current = m.group(1)
            out.setdefault(current, None)
        elif current is not None and (m := _LABEL.match(line)):
            word = m.group(1).strip("`*_ .").lower()
            out[current] = LABEL_WORDS.get(word)
    return out


def score(key: list[dict[str, Any]], labels: dict[str, bool | None]) -> dict[str, Any]:
    """Agreement of the hand labels with the pipeline's verdicts over the tasks labelled and decided by both:
    counts of the 2 x 2 table (hand solvable / unsolvable x pipeline solved / unsolved) and the disagreements."""
    table = {"solvable_solved": 0, "solvable_unsolved": 0, "unsolvable_solved": 0, "unsolvable_unsolved": 0}
    disagree, unlabelled, pending = [], 0, 0
    for row in key:
        hand = labels.get(row.get("id"))
        if hand is None:
            unlabelled += 1
            continue
        if row.get("verdict") not in (SOLVED, UNSOLVED):
            pending += 1
            continue
        solved = row["verdict"] == SOLVED
        table[f"{'solvable' if hand else 'unsolvable'}_{'solved' if solved else 'unsolved'}"] += 1
        if hand != solved:
            disagree.append({**row, "hand": "solvable" if hand else "unsolvable"})
    n = sum(table.values())
    agree = table["solvable_solved"] + table["unsolvable_unsolved"]
    return {
        "scored": n,
        "agree": agree,
        "agreement": agree / n if n else None,
        "table": table,
        "disagreements": disagree,
        "unlabelled": unlabelled,
        "pending": pending,
    }


def score_markdown(result: dict[str, Any]) -> str:
    """The score as a short report: agreement, the 2 x 2 table, every disagreement with the pipeline's reason."""
    n, t = result["scored"], result["table"]
    share = f" ({result['agreement']:.0%})" if n else ""
    lines = [
        f"agreement: {result['agree']} of {n}{share} labelled tasks; {result['unlabelled']} not labelled, "
        f"{result['pending']} not yet decided by stage B",
        "",
        "| hand \\ pipeline | solved | unsolved |",
        "|---|---|---|",
        f"| solvable | {t['solvable_solved']} | {t['solvable_unsolved']} |",
        f"| unsolvable | {t['unsolvable_solved']} | {t['unsolvable_unsolved']} |",
    ]
    if result["disagreements"]:
        lines += ["", "disagreements:"]
        for d in result["disagreements"]:
            q = " ".join(str(d.get("question", "")).split())
            lines.append(
                f"- {d['id']}: hand {d['hand']}, pipeline {d['verdict']} ({d.get('why', '')}): {q[:140]}"
            )
    return "\n".join(lines) + "\n"


def key_rows(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """What the key file holds per sheet task: id, kind, verdict, why, question (for the disagreement list)."""
    return [
        {"id": it["id"], "kind": it["kind"], "verdict": it["verdict"], "why": it["why"],
         "question": it["task"].get("question", "")}
        for it in items
    ]  # fmt: skip
