"""Aggregate per-item rows into a summary (JSON + markdown table) and compare two summaries.

- Hammer benchmarks: accuracy (whole-sample exact match, the headline), the lenient-parse accuracy (diagnostic),
  micro tool/parameter P/R/F1, and error-reason counts. API-Bank is reported as L1, L2 and L1+L2 pooled.
- BFCL (spec §12.2): per-category accuracy; non-live AST summary = unweighted mean of simple, multiple, parallel,
  parallel_multiple over the categories run (simple = simple_python only: Java/JS are not run); live AST =
  count-weighted; irrelevance/relevance reported on their own. The categories run are listed.
- NexusRaven and SNIPS are "n/a (offline)" in `summary.json`: never a number, never averaged (spec §12.3); the
  markdown tables list them only when asked (`show_offline`, the CLI's `--show-offline`) and `eval list` does.
- Benchmarks of any other registered family get their own plain table (accuracy, n, top errors).

Names, display names, families and row labels come from :mod:`toolr0.eval.registry`.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from pathlib import Path
from typing import Any

from toolr0.errors import ToolR0Error
from toolr0.eval import registry
from toolr0.eval.bfcl import LIVE, NON_LIVE
from toolr0.eval.items import OFFLINE_BENCHMARKS
from toolr0.io import atomic_write_json, atomic_write_text

NA = "n/a (offline)"
APIBANK = "apibank"  # pooled L1 + L2
PAPER_FAMILIES = ("hammer", "bfcl")  # families with their own tables and aggregates below


def _hammer() -> list[str]:
    return registry.members("hammer")


def _display(name: str) -> str:
    return "API-Bank (L1+L2)" if name == APIBANK else registry.display_name(name)


def _is_bfcl(name: str) -> bool:
    return registry.family_of(name) == "bfcl"


def _is_other(name: str) -> bool:
    """A registered benchmark of a family without its own table here."""
    family = registry.family_of(name)
    return family is not None and family not in PAPER_FAMILIES


PRF_KEYS = ("tool", "param")


def _micro(rows: list[dict[str, Any]]) -> dict[str, float]:
    out: dict[str, float] = {}
    for k in PRF_KEYS:
        tp = sum(r.get("metrics", {}).get(f"{k}_tp", 0) for r in rows)
        npred = sum(r.get("metrics", {}).get(f"{k}_pred", 0) for r in rows)
        ngold = sum(r.get("metrics", {}).get(f"{k}_gold", 0) for r in rows)
        p = tp / npred if npred else 0.0
        r_ = tp / ngold if ngold else 0.0
        out[f"{k}_p"] = round(100 * p, 2)
        out[f"{k}_r"] = round(100 * r_, 2)
        out[f"{k}_f1"] = round(100 * (2 * p * r_ / (p + r_) if p + r_ else 0.0), 2)
    return out


def _strict(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Native-format rows: accuracy counting only the template's own <tool_call> blocks."""
    marked = [r for r in rows if r.get("strict_correct") is not None]
    if not marked:
        return {}
    return {"strict_accuracy": round(100 * sum(bool(r["strict_correct"]) for r in marked) / len(marked), 2)}


def bench_stats(rows: list[dict[str, Any]], total: int | None = None) -> dict[str, Any]:
    """Accuracy, lenient accuracy, micro P/R/F1, reason counts and seconds of one benchmark's rows."""
    n = len(rows)
    correct = sum(bool(r.get("correct")) for r in rows)
    stats: dict[str, Any] = {
        "n": n,
        "n_total": total if total is not None else n,
        "correct": correct,
        "accuracy": round(100 * correct / n, 2) if n else None,
        "lenient_accuracy": round(100 * sum(bool(r.get("lenient_correct")) for r in rows) / n, 2)
        if n
        else None,
        **_strict(rows),
        **_micro(rows),
        "reasons": dict(Counter(r.get("reason", "?") for r in rows if not r.get("correct")).most_common()),
        "seconds": round(sum(float(r.get("seconds", 0.0)) for r in rows), 1),
    }
    corrupted = [r for r in rows if r.get("corruption")]
    if corrupted:
        stats["corrupted"] = len(corrupted)
        stats["corrupted_marked_wrong"] = sum(not r.get("correct") for r in corrupted)
        stats["corrupted_expected_reason"] = sum(
            r.get("reason") == r.get("expected_reason") for r in corrupted
        )
    return stats


def _bfcl_summary(per: dict[str, dict[str, Any]]) -> dict[str, Any] | None:
    names = {registry.short_name(b): b for b in per if _is_bfcl(b) and per[b]["n"]}
    run = list(names)
    if not run:
        return None
    acc = {c: per[b]["accuracy"] for c, b in names.items()}
    n = {c: per[b]["n"] for c, b in names.items()}
    non_live_ast = [c for c in ("simple_python", "multiple", "parallel", "parallel_multiple") if c in acc]
    live_ast = [
        c for c in ("live_simple", "live_multiple", "live_parallel", "live_parallel_multiple") if c in acc
    ]
    out: dict[str, Any] = {
        "categories_run": run,
        "categories_not_run": [c for c in (*NON_LIVE, *LIVE) if c not in acc]
        + ["simple_java", "simple_javascript", "multi_turn_*", "agentic (web_search, memory)"],
        "non_live_ast_summary": round(sum(acc[c] for c in non_live_ast) / len(non_live_ast), 2)
        if non_live_ast
        else None,
        "non_live_ast_categories": non_live_ast,
        "live_ast_summary": (
            round(sum(acc[c] * n[c] for c in live_ast) / sum(n[c] for c in live_ast), 2) if live_ast else None
        ),
        "live_ast_categories": live_ast,
        "irrelevance": acc.get("irrelevance"),
        "live_irrelevance": acc.get("live_irrelevance"),
        "live_relevance": acc.get("live_relevance"),
        "note": "BFCL aggregation (spec §12.2): non-live = unweighted mean over the AST categories run, with simple = "
        "simple_python only (BFCL proper averages python/java/javascript and counts categories not run as 0); "
        "live = count-weighted. Irrelevance/relevance are not part of the AST summaries.",
    }
    return out


def summarise(
    rows_by_bench: dict[str, list[dict[str, Any]]],
    totals: dict[str, int] | None = None,
    meta: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The summary dict written as ``summary.json``."""
    totals = totals or {}
    per = {b: bench_stats(rows, totals.get(b)) for b, rows in rows_by_bench.items()}
    if "apibank_l1" in per and "apibank_l2" in per:
        pooled = rows_by_bench["apibank_l1"] + rows_by_bench["apibank_l2"]
        per[APIBANK] = bench_stats(pooled, totals.get("apibank_l1", 0) + totals.get("apibank_l2", 0))
    paper = {
        "ToolAlpaca": per.get("toolalpaca", {}).get("accuracy"),
        "SealTool": per.get("sealtool", {}).get("accuracy"),
        "NexusRaven": NA,
        "API-Bank": per.get(APIBANK, {}).get("accuracy"),
        "SNIPS": NA,
    }
    avail = [v for v in paper.values() if isinstance(v, int | float)]
    return {
        "meta": {**(meta or {}), "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())},
        "benchmarks": per,
        "paper_table": paper,
        "avg_available": round(sum(avail) / len(avail), 2) if len(avail) == 3 else None,
        "avg_available_note": "unweighted mean of ToolAlpaca, SealTool and API-Bank only (NexusRaven and SNIPS are "
        "n/a offline); NOT comparable with the paper's five-benchmark Avg",
        "bfcl": _bfcl_summary(per),
        "offline": {k: NA for k in OFFLINE_BENCHMARKS},
    }


def _fmt(x: Any) -> str:
    if x is None:
        return "–"
    if isinstance(x, float):
        return f"{x:.2f}"
    return str(x)


def _n_of(s: dict[str, Any]) -> str:
    """"n" or "n/total" when only a subset was scored."""
    return f"{s['n']}/{s['n_total']}" if s["n"] != s["n_total"] else str(s["n"])


def _top_reasons(reasons: dict[str, int], k: int = 3) -> str:
    return ", ".join(f"{r} {c}" for r, c in list(reasons.items())[:k]) or "–"


def markdown(summary: dict[str, Any], show_offline: bool = False) -> str:
    """A markdown report: Hammer table (with the n/a rows of the offline benchmarks when `show_offline`), BFCL
    table and aggregation."""
    m = summary.get("meta", {})
    per = summary.get("benchmarks", {})
    lines = [
        f"# Evaluation: {m.get('model', '?')} ({m.get('predictions', 'model')})",
        "",
        f"decoding {m.get('decoding', 'greedy')}, max_new_tokens {m.get('max_new_tokens')}, "
        + (f"dtype {m['dtype']}, " if m.get("dtype") else "")
        + (f"matmul {m['matmul']}, " if m.get("matmul") else "")
        + f"limit {m.get('limit')}, seed {m.get('seed')}, created {m.get('created', '')}",
        f"Solver format: {m.get('solver_format') or 'reference (spec §7.1 prompt)'}",
        "",
    ]
    hammer = [b for b in (*_hammer(), APIBANK) if b in per]
    native = any("strict_accuracy" in s for s in per.values())
    second = "Strict %" if native else "Lenient %"  # native: the template's own blocks only
    if hammer:
        lines += [
            f"| Benchmark | n | Accuracy % | {second} | Tool F1 | Param F1 | Top errors |",
            "|---|---|---|---|---|---|---|",
        ]
        for b in hammer:
            s = per[b]
            nn = _n_of(s)
            alt = s.get("strict_accuracy") if native else s["lenient_accuracy"]
            lines.append(
                f"| {_display(b)} | {nn} | {_fmt(s['accuracy'])} | {_fmt(alt)} | "
                f"{_fmt(s['tool_f1'])} | {_fmt(s['param_f1'])} | {_top_reasons(s['reasons'])} |"
            )
        for name in OFFLINE_BENCHMARKS.values() if show_offline else ():
            lines.append(f"| {name} | – | {NA} | – | – | – | – |")
        if summary.get("avg_available") is not None:
            lines += [
                "",
                f"Avg of ToolAlpaca, SealTool, API-Bank: {_fmt(summary['avg_available'])} "
                "(3 of the paper's 5 benchmarks; not comparable with the paper's Avg).",
            ]
        lines.append("")
    bf = summary.get("bfcl")
    if bf:
        extra = " Strict % |" if native else ""
        lines += [f"| BFCL category | n | Accuracy % |{extra} Top errors |", "|---|---|---|" + ("---|" if native else "") + "---|"]
        for b in per:
            if _is_bfcl(b):
                s = per[b]
                nn = _n_of(s)
                strict = f" {_fmt(s.get('strict_accuracy'))} |" if native else ""
                lines.append(
                    f"| {registry.short_name(b)} | {nn} | {_fmt(s['accuracy'])} |{strict} "
                    f"{_top_reasons(s['reasons'])} |"
                )
        lines += [
            "",
            f"BFCL non-live AST summary ({', '.join(bf['non_live_ast_categories']) or '–'}): "
            f"{_fmt(bf['non_live_ast_summary'])}; live AST ({', '.join(bf['live_ast_categories']) or '–'}): "
            f"{_fmt(bf['live_ast_summary'])}; irrelevance {_fmt(bf['irrelevance'])}.",
            f"Categories run: {', '.join(bf['categories_run'])}. {bf['note']}",
            "",
        ]
    other = [b for b in per if _is_other(b)]
    if other:
        lines += ["| Benchmark | n | Accuracy % | Top errors |", "|---|---|---|---|"]
        for b in other:
            s = per[b]
            nn = _n_of(s)
            lines.append(f"| {_display(b)} | {nn} | {_fmt(s['accuracy'])} | {_top_reasons(s['reasons'])} |")
        lines.append("")
    for note in m.get("notes", []) or []:
        lines.append(f"Note: {note}")
    if any("corrupted" in s for s in per.values()):
        lines += ["", "| Benchmark | corrupted | marked wrong | expected reason |", "|---|---|---|---|"]
        for b, s in per.items():
            if "corrupted" in s:
                lines.append(
                    f"| {_display(b)} | {s['corrupted']} | {s['corrupted_marked_wrong']} | "
                    f"{s['corrupted_expected_reason']} |"
                )
    return "\n".join(lines).rstrip() + "\n"


def write_summary(out: str | Path, summary: dict[str, Any]) -> None:
    out = Path(out)
    atomic_write_json(out / "summary.json", summary)
    atomic_write_text(out / "summary.md", markdown(summary))


def load_summary(path: str | Path) -> dict[str, Any]:
    """A summary from a ``summary.json`` file or an evaluation folder holding one."""
    p = Path(path)
    if p.is_dir():
        p = p / "summary.json"
    if not p.is_file():
        raise ToolR0Error(f"no evaluation summary at {path} (expected summary.json or a folder holding one)")
    try:
        return json.loads(p.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ToolR0Error(f"{p}: unreadable summary ({exc})") from None


def merge_summaries(summaries: list[dict[str, Any]]) -> dict[str, Any]:
    """One summary of several evaluation folders of one model (say Hammer and BFCL, run with different
    limits): their benchmarks side by side (a later folder wins a benchmark both hold); every other field
    from the first summary where it is set."""
    out: dict[str, Any] = {}
    for s in summaries:
        for k, v in s.items():
            if k != "benchmarks" and out.get(k) in (None, {}, []):
                out[k] = v
    out["benchmarks"] = {k: v for s in summaries for k, v in (s.get("benchmarks") or {}).items()}
    return out


def compare_rows(a: dict[str, Any], b: dict[str, Any], show_offline: bool = False) -> list[dict[str, Any]]:
    """Per-benchmark (and aggregate) accuracy of A and B, the delta in points and the relative change (plus
    n/a rows for the offline benchmarks when `show_offline`)."""
    rows = []
    pa, pb = a.get("benchmarks", {}), b.get("benchmarks", {})
    order = [x for x in (*_hammer(), APIBANK) if x in pa or x in pb]
    order += [x for x in {**pa, **pb} if _is_bfcl(x) or _is_other(x)]

    def add(name: str, va: Any, vb: Any, na: Any = None, nb: Any = None) -> None:
        num = isinstance(va, int | float) and isinstance(vb, int | float)
        delta = round(vb - va, 2) if num else None
        rel = round(100 * (vb - va) / va, 1) if num and va else None
        rows.append(
            {"benchmark": name, "a": va, "b": vb, "delta": delta, "rel_pct": rel, "n_a": na, "n_b": nb}
        )

    for x in order:
        ra, rb = pa.get(x, {}), pb.get(x, {})
        add(_display(x), ra.get("accuracy"), rb.get("accuracy"), ra.get("n"), rb.get("n"))
    for name in OFFLINE_BENCHMARKS.values() if show_offline else ():
        rows.append(
            {"benchmark": name, "a": NA, "b": NA, "delta": None, "rel_pct": None, "n_a": None, "n_b": None}
        )
    add("Avg (ToolAlpaca, SealTool, API-Bank)", a.get("avg_available"), b.get("avg_available"))
    ba, bb = a.get("bfcl") or {}, b.get("bfcl") or {}
    if ba or bb:
        add("BFCL non-live AST summary", ba.get("non_live_ast_summary"), bb.get("non_live_ast_summary"))
        add("BFCL live AST summary", ba.get("live_ast_summary"), bb.get("live_ast_summary"))
    return rows


def compare_markdown(
    a: dict[str, Any], b: dict[str, Any], name_a: str = "A", name_b: str = "B", show_offline: bool = False
) -> str:
    lines = [
        f"| Benchmark | {name_a} | {name_b} | Δ (pp) | rel. Δ |",
        "|---|---|---|---|---|",
    ]
    for r in compare_rows(a, b, show_offline):
        rel = f"{r['rel_pct']:+.1f}%" if r["rel_pct"] is not None else "–"
        delta = f"{r['delta']:+.2f}" if r["delta"] is not None else "–"
        name = r["benchmark"]
        if r.get("n_a") and r.get("n_b") and r["n_a"] != r["n_b"]:
            name += f" (n {r['n_a']} vs {r['n_b']}: different items)"
        lines.append(f"| {name} | {_fmt(r['a'])} | {_fmt(r['b'])} | {delta} | {rel} |")
    return "\n".join(lines) + "\n"
