"""What stage B did to the tasks of one iteration, for people to read: call-kind counts per stage, why each
dropped task was dropped, and a seeded sample of curriculum and rejected tasks as markdown tables.

Pure (no torch, no writer): `tb_log.py` puts the result in TensorBoard, `report.py` links it from
`summary.md`, and the sample is also written to `iter_XX/samples.md`.
"""

from __future__ import annotations

import random
from typing import Any

from toolr0.core.seeds import seed_for

FUNNEL_STAGES = ("verified", "unique", "cross_verified", "labelled", "selected")
CALL_KINDS = ("no_call", "single_call", "multi_call")
N_CURRICULUM, N_REJECTED = 20, 10


def _task(row: dict[str, Any]) -> dict[str, Any]:
    task = row.get("task")
    if isinstance(task, dict):
        return task
    return {"calls": row["answer"]} if "answer" in row else {}  # a training record carries its gold as answer


def call_kind(task: dict[str, Any]) -> str:
    """no_call (gold []), single_call or multi_call (two or more calls)."""
    n = len(task.get("calls") or [])
    return CALL_KINDS[min(n, 2)]


def call_kind_counts(stages: dict[str, list[dict[str, Any]]]) -> dict[str, dict[str, int]]:
    """{stage: {kind: count}} over the rows each stage kept (rows carry their task under "task")."""
    out = {}
    for stage, rows in stages.items():
        counts = dict.fromkeys(CALL_KINDS, 0)
        for r in rows:
            counts[call_kind(_task(r))] += 1
        out[stage] = counts
    return out


def rejections(
    candidates: list[dict[str, Any]],
    unique: list[dict[str, Any]],
    crossed: list[dict[str, Any]],
    labelled: list[dict[str, Any]],
    selected: list[dict[str, Any]],
    files: dict[str, list[dict[str, Any]]],
    tau: float,
) -> list[dict[str, Any]]:
    """Every candidate that did not reach the curriculum, with the stage that dropped it and why.

    `files`: the rows of `dedup.jsonl`, `crossverify.jsonl` and `passrates.jsonl` (keys dedup, crossverify,
    passrates), which hold the numbers behind a drop (duplicate of, agreement, p̂)."""
    by = {name: {r.get("id"): r for r in rows} for name, rows in files.items()}
    kept = {
        "unique": {r["id"] for r in unique},
        "crossed": {r["id"] for r in crossed},
        "labelled": {r["id"] for r in labelled},
        "selected": {r.get("id") for r in selected},
    }
    out = []
    for r in candidates:
        rid = r["id"]
        if not r.get("ok"):
            stage, why = "verify", str(r.get("reason") or "?")
        elif rid not in kept["unique"]:
            stage, why = "dedup", f"duplicate of {by['dedup'].get(rid, {}).get('duplicate_of') or '?'}"
        elif rid not in kept["crossed"]:
            a = by["crossverify"].get(rid, {}).get("agreement")
            stage, why = "cross_verify", f"agreement {fmt_num(a)} < τ {tau}"
        elif rid not in kept["labelled"]:
            p = by["passrates"].get(rid, {}).get("p_hat")
            stage, why = "difficulty", f"p̂ {fmt_num(p)} outside every kept bucket"
        elif rid not in kept["selected"]:
            stage, why = "select", "not drawn (quota / n_final)"
        else:
            continue
        out.append({"id": rid, "stage": stage, "reason": why, "task": r.get("task"), "text": r.get("text", "")})
    return out


def fmt_num(x: Any) -> str:
    """A measured number as people read it in the tables (two decimals), "?" when there is none."""
    return f"{x:.2f}" if isinstance(x, int | float) else "?"


def seeded_sample(rows: list[Any], n: int, seed: int) -> list[Any]:
    """A seeded sample of at most n rows, in their original order."""
    idx = sorted(random.Random(seed).sample(range(len(rows)), min(max(n, 0), len(rows))))
    return [rows[i] for i in idx]


def sample_curriculum(selected: list[dict[str, Any]], seed: int, n: int = N_CURRICULUM) -> list[dict[str, Any]]:
    """A seeded sample of n curriculum records, in curriculum order."""
    return seeded_sample(selected, n, seed)


def sample_rejected(rejected: list[dict[str, Any]], seed: int, n: int = N_REJECTED) -> list[dict[str, Any]]:
    """A seeded sample of n rejected candidates, taken round-robin over the reasons (most frequent first), so
    a rare reason is seen next to the one that dominates."""
    groups: dict[str, list[dict[str, Any]]] = {}
    for r in rejected:
        groups.setdefault(f"{r['stage']}: {r['reason'].split(' ')[0]}", []).append(r)
    rng = random.Random(seed)
    queues = [rng.sample(g, len(g)) for g in sorted(groups.values(), key=len, reverse=True)]
    out: list[dict[str, Any]] = []
    while len(out) < n and any(queues):
        for q in queues:
            if q and len(out) < n:
                out.append(q.pop())
    return out


def _cell(x: Any, limit: int = 160) -> str:
    """One markdown table cell: single line, pipes escaped, cut at `limit` characters."""
    s = " ".join(str(x).split()).replace("|", "\\|")
    return s if len(s) <= limit else s[: limit - 1] + "…"


def _calls(calls: Any) -> str:
    if not calls:
        return "[] (no call)"
    return "; ".join(call_text(c) for c in (calls if isinstance(calls, list) else [calls]))


def call_text(c: Any) -> str:
    """One gold call as ``name(key='value', ...)``."""
    args = c.get("arguments", {}) if isinstance(c, dict) else {}
    name = c.get("name", "?") if isinstance(c, dict) else "?"
    inner = ", ".join(f"{k}={v!r}" for k, v in args.items()) if isinstance(args, dict) else str(args)
    return f"{name}({inner})"


def _menu(task: dict[str, Any]) -> str:
    return ", ".join(str(t.get("name", "?")) for t in task.get("tools") or [] if isinstance(t, dict))


def curriculum_table(t: int, curriculum: list[dict[str, Any]]) -> str:
    """Markdown: the sampled curriculum records of iteration t (question, menu, gold calls, p̂, difficulty)."""
    lines = [f"### Curriculum sample, iteration {t} ({len(curriculum)} tasks, seeded)", ""]
    if not curriculum:
        return "\n".join([*lines, "(empty curriculum)"]) + "\n"
    lines += ["| # | question | menu | gold calls | p̂ | difficulty |", "|---|---|---|---|---|---|"]
    for i, rec in enumerate(curriculum, 1):
        task = rec.get("task") or {}
        lines.append(
            f"| {i} | {_cell(task.get('question', ''))} | {_cell(_menu(task), 80)} | "
            f"{_cell(_calls(task.get('calls')), 120)} | {fmt_num(rec.get('p_hat'))} | {rec.get('difficulty') or '-'} |"
        )
    return "\n".join(lines) + "\n"


def rejected_table(t: int, rejected: list[dict[str, Any]]) -> str:
    """Markdown: the sampled rejected candidates of iteration t (stage, reason, question or raw text)."""
    lines = [f"### Rejected sample, iteration {t} ({len(rejected)} candidates, seeded)", ""]
    if not rejected:
        return "\n".join([*lines, "(nothing rejected)"]) + "\n"
    lines += ["| # | stage | reason | question (or raw text) |", "|---|---|---|---|"]
    for i, r in enumerate(rejected, 1):
        task = r.get("task") or {}
        what = task.get("question") or r.get("text") or ""
        lines.append(f"| {i} | {r['stage']} | {_cell(r['reason'], 80)} | {_cell(what, 160)} |")
    return "\n".join(lines) + "\n"


def iteration_sample(
    seed: int,
    t: int,
    stages: dict[str, list[dict[str, Any]]],
    files: dict[str, list[dict[str, Any]]],
    tau: float,
) -> tuple[str, str]:
    """(curriculum table, rejected table) of iteration t, each markdown, from the stage rows (keys candidates,
    unique, cross_verified, labelled, selected) and the files behind the drops (see `rejections`)."""
    rej = rejections(
        stages["candidates"], stages["unique"], stages["cross_verified"], stages["labelled"],
        stages["selected"], files, tau,
    )  # fmt: skip
    s = seed_for(seed, "samples", t)
    return curriculum_table(t, sample_curriculum(stages["selected"], s)), rejected_table(
        t, sample_rejected(rej, s + 1)
    )
