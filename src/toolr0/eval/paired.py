"""Paired comparison of two evaluations of the same items: who got which item right, and McNemar's exact test.

Two models scored on the same seeded subset differ by a few items at our sample sizes; the paired counts
(right in A only, right in B only) and the exact two-sided McNemar p-value say whether a delta is more than
noise. Pure: reads ``items.jsonl`` rows, no model.
"""

from __future__ import annotations

from collections import defaultdict
from math import comb
from pathlib import Path
from typing import Any

from toolr0.eval.items import load_rows


def mcnemar_exact_p(a_only: int, b_only: int) -> float:
    """Two-sided exact McNemar p-value: the discordant pairs as Binomial(a_only + b_only, 1/2)."""
    n = a_only + b_only
    if n == 0:
        return 1.0
    k = min(a_only, b_only)
    tail = sum(comb(n, i) for i in range(k + 1)) / 2**n
    return min(1.0, 2 * tail)


def _verdicts(rows: list[dict[str, Any]]) -> dict[str, dict[str, bool]]:
    """benchmark -> item id -> correct (a later row of an id wins)."""
    out: dict[str, dict[str, bool]] = defaultdict(dict)
    for r in rows:
        if isinstance(r, dict) and "id" in r and "benchmark" in r:
            out[str(r["benchmark"])][str(r["id"])] = bool(r.get("correct"))
    return out


def _pair(bench: str, a: list[bool], b: list[bool]) -> dict[str, Any]:
    a_only = sum(x and not y for x, y in zip(a, b, strict=True))
    b_only = sum(y and not x for x, y in zip(a, b, strict=True))
    return {
        "benchmark": bench,
        "n": len(a),
        "a_accuracy": round(100 * sum(a) / len(a), 2),
        "b_accuracy": round(100 * sum(b) / len(b), 2),
        "a_only": a_only,
        "b_only": b_only,
        "mcnemar_p": round(mcnemar_exact_p(a_only, b_only), 4),
    }


POOLED = "all (pooled)"


def paired_rows(rows_a: list[dict[str, Any]], rows_b: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per benchmark present in both: items scored in both, accuracy of each on them, discordant counts, p;
    with more than one benchmark, a last row pooling every paired item (one test over all of them)."""
    va, vb = _verdicts(rows_a), _verdicts(rows_b)
    out = []
    pooled_a: list[bool] = []
    pooled_b: list[bool] = []
    for bench in [b for b in va if b in vb]:
        common = sorted(set(va[bench]) & set(vb[bench]))
        if not common:
            continue
        a, b = [va[bench][i] for i in common], [vb[bench][i] for i in common]
        out.append(_pair(bench, a, b))
        pooled_a += a
        pooled_b += b
    if len(out) > 1:
        out.append(_pair(POOLED, pooled_a, pooled_b))
    return out


def load_items(folder: str | Path) -> list[dict[str, Any]]:
    """The scored rows of an evaluation folder, one per item (empty when it has no ``items.jsonl``)."""
    return list(load_rows(folder).values())


def paired_markdown(rows: list[dict[str, Any]], name_a: str = "A", name_b: str = "B") -> str:
    if not rows:
        return ""
    lines = [
        f"| Benchmark (paired items) | n | {name_a} % | {name_b} % | right only in {name_a} | "
        f"right only in {name_b} | McNemar p |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['benchmark']} | {r['n']} | {r['a_accuracy']:.2f} | {r['b_accuracy']:.2f} | {r['a_only']} | "
            f"{r['b_only']} | {r['mcnemar_p']:.3f} |"
        )
    return "\n".join(lines) + "\n"
