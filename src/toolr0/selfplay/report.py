"""Human-readable outputs of a run directory: `summary.md` (final table) and the plots.

Everything here is derived from the run directory alone (stage_counts.json, passrates.jsonl,
metrics.jsonl), so it can be regenerated at any time: `python -m toolr0.selfplay.report runs/<name>`.
"""

from __future__ import annotations

import json
import sys
from typing import Any

from toolr0.io import atomic_write_text
from toolr0.selfplay.plots import COUNT_KEYS, iterations, write_plots
from toolr0.selfplay.rundir import RunDir

NO_CALL_KEYS = ("asked", "verified", "unique", "cross_verified", "labelled", "selected")


def no_call_counts(
    candidates: list[dict[str, Any]],
    unique: list[dict[str, Any]],
    crossed: list[dict[str, Any]],
    labelled: list[dict[str, Any]],
    selected: list[dict[str, Any]],
) -> dict[str, Any]:
    """No-call tasks (gold []) through the stages of one iteration: specs asking for one, then the tasks left
    after each stage (the no_call column of :func:`toolr0.selfplay.funnel.call_kind_counts`), and the frozen
    Solver's mean p̂ on them (share of samples answering [])."""
    from toolr0.selfplay.funnel import call_kind, call_kind_counts

    verified = [r for r in candidates if r.get("ok")]
    stages = {"verified": verified, "unique": unique, "cross_verified": crossed, "labelled": labelled}
    kinds = call_kind_counts({**stages, "selected": selected})
    p = [
        float(r["label"]["p_hat"])
        for r in labelled
        if call_kind(r.get("task") or {}) == "no_call"
        and isinstance(r.get("label"), dict)
        and r["label"].get("p_hat") is not None
    ]
    return {
        "asked": sum(1 for r in candidates if (r.get("spec") or {}).get("num_calls") == 0),
        **{stage: kinds[stage]["no_call"] for stage in NO_CALL_KEYS[1:]},
        "p_hat_mean": round(sum(p) / len(p), 4) if p else None,
    }


def stage_times(run: RunDir) -> dict[tuple[int, str], float]:
    """Total wall seconds per (iteration, stage), summed over resumed segments."""
    out: dict[tuple[int, str], float] = {}
    for m in run.metrics():
        if m.get("event") == "stage_time":
            key = (int(m["iteration"]), str(m["stage"]))
            out[key] = out.get(key, 0.0) + float(m.get("wall_s", 0.0))
    return out


def reward_means(run: RunDir) -> dict[tuple[int, str], dict[str, float]]:
    out: dict[tuple[int, str], dict[str, float]] = {}
    for m in run.metrics():
        if m.get("event") == "train_end":
            out[(int(m["iteration"]), str(m["role"]))] = dict(m.get("reward_means") or {})
    return out


def _fmt(v: Any) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.3f}"
    return str(v)


def summary_rows(run: RunDir) -> list[dict[str, Any]]:
    """One row per finished-or-started iteration: counts per stage, training outcome, reward means."""
    rows = []
    means = reward_means(run)
    state = run.state or (json.loads(run.state_path.read_text()) if run.state_path.is_file() else {})
    skipped = state.get("skipped", {})
    for t in iterations(run):
        p = run.file(t, "stage_counts.json")
        counts = json.loads(p.read_text()) if p.is_file() else {}
        row: dict[str, Any] = {"iter": t}
        for k in COUNT_KEYS:
            row[k.replace("_", "-")] = counts.get(k, "-")
        g = means.get((t, "generator"), {})
        s = means.get((t, "solver"), {})
        row["gen reward"] = _fmt(g.get("total")) if g else "-"
        row["solver reward"] = _fmt(s.get("total")) if s else "-"
        sk = skipped.get(RunDir.key(t, "solver_train"))
        row["solver steps"] = "skipped" if sk else _fmt(_steps(run, t, "solver"))
        row["acceptance"] = counts.get("acceptance", {})
        row["no_call"] = {**(counts.get("no_call") or {}), "derived": counts.get("derived_no_call", 0)}
        row["composed"] = counts.get("composed_two_call")  # loop.two_call_from_solved
        row["reasons"] = counts.get("reasons", {})
        row["skipped"] = {k.split("/", 1)[1]: v for k, v in skipped.items() if k.startswith(f"iter_{t:02d}/")}
        rows.append(row)
    return rows


def _steps(run: RunDir, t: int, role: str) -> Any:
    for m in reversed(run.metrics()):
        if m.get("event") == "train_end" and m.get("iteration") == t and m.get("role") == role:
            return m.get("steps")
    return None


def summary_markdown(run: RunDir) -> str:
    rows = summary_rows(run)
    times = stage_times(run)
    lines = [f"# Self-play run `{run.root.name}`", ""]
    state = run.state or {}
    lines.append(
        f"finished: {bool(state.get('finished'))}; resumes: {state.get('resumes', 0)}; "
        f"stages done: {len(state.get('done', []))}"
    )
    lines += [
        "",
        "## Counts per stage",
        "",
        "| iter | generated | verified | unique | cross-verified | labelled | selected | solver steps | gen reward | solver reward |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            "| "
            + " | ".join(
                str(r.get(k, "-"))
                for k in (
                    "iter",
                    "generated",
                    "verified",
                    "unique",
                    "cross-verified",
                    "labelled",
                    "selected",
                    "solver steps",
                    "gen reward",
                    "solver reward",
                )
            )
            + " |"
        )
    lines += [
        "",
        "## Acceptance rates",
        "",
        "| iter | verify | dedup | cross-verify | difficulty | select | overall |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        a = r["acceptance"]
        lines.append(
            f"| {r['iter']} | "
            + " | ".join(
                _pct(a.get(k)) for k in ("verify", "dedup", "cross_verify", "difficulty", "select", "overall")
            )
            + " |"
        )
    if any(
        r["no_call"].get("asked") or r["no_call"].get("verified") or r["no_call"].get("derived") for r in rows
    ):
        lines += [
            "",
            "## No-call tasks (gold [])",
            "",
            "| iter | asked | verified | derived from call tasks | unique | cross-verified | labelled | selected "
            "| mean p̂ |",
            "|---|---|---|---|---|---|---|---|---|",
        ]
        keys = (*NO_CALL_KEYS[:2], "derived", *NO_CALL_KEYS[2:])  # derived: loop.no_call_from_calls, _other_menus
        for r in rows:
            nc = r["no_call"]
            cells = [str(nc.get(k, "-")) for k in keys] + [_fmt(nc.get("p_hat_mean"))]
            lines.append(f"| {r['iter']} | " + " | ".join(cells) + " |")
    if any(r["composed"] for r in rows):
        lines += [
            "",
            "## Two-call tasks composed from solved one-call tasks",
            "",
            "| iter | composed | solved (p̂ > 0) | labelled | selected |",
            "|---|---|---|---|---|",
        ]
        for r in rows:
            c = r["composed"] or {}
            cells = [str(c.get(k, "-")) for k in ("composed", "solved", "labelled", "selected")]
            lines.append(f"| {r['iter']} | " + " | ".join(cells) + " |")
    lines += ["", "## Rejection reasons (structural verification)", ""]
    for r in rows:
        reasons = ", ".join(f"{k} {v}" for k, v in list(r["reasons"].items())[:12]) or "none"
        lines.append(f"- iteration {r['iter']}: {reasons}")
    skipped = [(r["iter"], k, v) for r in rows for k, v in r["skipped"].items()]
    if skipped:
        lines += ["", "## Skipped stages", ""]
        lines += [f"- iteration {t}, {k}: {v}" for t, k, v in skipped]
    lines += ["", "## Reward means (last logged step)", ""]
    for (t, role), m in sorted(reward_means(run).items()):
        lines.append(
            f"- iteration {t}, {role}: " + (", ".join(f"{k} {_fmt(v)}" for k, v in m.items()) or "-")
        )
    if times:
        total = sum(times.values())
        lines += ["", "## Wall time per stage", "", "| iter | stage | seconds | share |", "|---|---|---|---|"]
        for (t, s), sec in sorted(times.items()):
            lines.append(f"| {t} | {s} | {sec:.1f} | {sec / total:.1%} |")
        lines.append(f"| | total | {total:.1f} | 100% |")
    lines += _samples_section(run, [r["iter"] for r in rows])
    lines += [
        "",
        "Files: `iter_XX/candidates.jsonl` (every candidate + verdict reason), `dedup.jsonl`, "
        "`crossverify.jsonl`, `passrates.jsonl`, `curriculum.jsonl`, `stage_counts.json`, `samples.md`, "
        "`passrate_hist.png`; `metrics.jsonl`; TensorBoard events in `tb/`; plots in `plots/`.",
        "",
    ]
    return "\n".join(lines)


def _samples_section(run: RunDir, its: list[int]) -> list[str]:
    """Links to every iteration's `samples.md` and the newest one inline (the tables TensorBoard shows)."""
    have = [t for t in its if run.file(t, "samples.md").is_file()]
    if not have:
        return []
    links = ", ".join(f"[iteration {t}]({run.file(t, 'samples.md').relative_to(run.root)})" for t in have)
    newest = run.file(have[-1], "samples.md").read_text(encoding="utf-8")
    return [
        "",
        "## Sample tasks",
        "",
        f"Seeded samples per iteration: {links}. The newest:",
        "",
        newest.rstrip(),
    ]


def _pct(v: Any) -> str:
    return "-" if v is None else f"{float(v):.0%}"


def write_reports(run: RunDir, upto: int | None = None) -> None:
    """Rewrite summary.md and the plots (cheap; safe to call after every iteration)."""
    atomic_write_text(run.summary_path, summary_markdown(run))
    try:
        write_plots(run, upto=upto)
    except ImportError:  # matplotlib missing: plots are optional
        return


def main(argv: list[str] | None = None) -> int:
    args = argv if argv is not None else sys.argv[1:]
    if not args:
        print("usage: python -m toolr0.selfplay.report RUN_DIR", file=sys.stderr)
        return 2
    run = RunDir(args[0])
    if run.state_path.is_file():
        run.state = json.loads(run.state_path.read_text())
    write_reports(run)
    print(run.summary_path.read_text())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
