"""Two step-0 Generator benchmarks (bench/generator_step0.py --out JSONLs) paired completion by completion.

Both runs must come from the same seeded specs (same --specs, --group, --spec-file and --seed), so row i of each is
the same spec and sample slot. Each completion is re-verified with today's ``verify_task`` (rules added since a run
was made apply to both alike), then every level of the funnel is
compared per completion: verified, call task, solved at least once (p̂ > 0), strictly inside (0, 1), solved with
two or more calls; with the McNemar exact p on the discordant pairs. A completion that verifies now but did not
when its run was made has no p̂ and counts as unsolved (reported). This is the paired test of issue 28's item 3
(a trained Generator against the base on the same specs) and of any prompt change. Light: no model is loaded.

The echo rules compare a question with the prompt templates of the code that runs them: a run made with a prompt
text the code no longer holds must keep its recorded verdicts (``--reverify a``: only run A is re-verified).

    python bench/step0_pair.py runs/step0_base/answer_first_grounded.jsonl runs/step0_new/answer_first_grounded.jsonl
"""

from __future__ import annotations

import argparse
import ast
import json
from collections import Counter
from pathlib import Path
from typing import Any

from toolr0.core.verify import verify_task
from toolr0.eval.paired import mcnemar_exact_p

LEVELS = ("verified", "call_task", "solved", "in_band", "multi_solved")


def _spec(raw: Any) -> Any:
    if isinstance(raw, str):
        try:
            return ast.literal_eval(raw)
        except (ValueError, SyntaxError):
            return raw
    return raw


def completion_levels(row: dict[str, Any], fmt: str = "native", reverify: bool = True) -> dict[str, Any]:
    """The funnel levels one completion reaches, its verification reason, and whether its p̂ is missing."""
    spec = _spec(row.get("spec"))
    if reverify:
        v = verify_task(row.get("text") or "", spec)
        ok, reason = bool(v.ok), v.reason
        calls = v.task.calls if (v.ok and v.task is not None) else None
    else:
        ok, reason = row.get("verify") == "ok", str(row.get("verify"))
        calls = (row.get("parsed_task") or {}).get("calls") if ok else None
    p = ((row.get("solver") or {}).get(fmt) or {}).get("p_hat")
    call_task = bool(ok and calls)
    measured = isinstance(p, int | float)
    solved = call_task and measured and p > 0
    return {
        "spec": spec,
        "reason": reason,
        "verified": ok,
        "call_task": call_task,
        "solved": solved,
        "in_band": call_task and measured and 0 < p < 1,
        "multi_solved": solved and len(calls or []) >= 2,
        "unmeasured": call_task and not measured,
    }


def pair_runs(
    rows_a: list[dict[str, Any]],
    rows_b: list[dict[str, Any]],
    fmt: str = "native",
    reverify: str = "both",
) -> dict[str, Any]:
    """Per level: count in A, count in B, only-A, only-B and the McNemar exact p. ``reverify``: both, a, b or
    none (whose verdicts are recomputed). Raises ValueError if the specs differ."""
    a = [completion_levels(r, fmt, reverify in ("both", "a")) for r in rows_a]
    b = [completion_levels(r, fmt, reverify in ("both", "b")) for r in rows_b]
    if len(a) != len(b) or any(x["spec"] != y["spec"] for x, y in zip(a, b, strict=True)):
        raise ValueError("the two runs are not on the same seeded specs (row count or a spec differs)")
    levels = {}
    for key in LEVELS:
        only_a = sum(x[key] and not y[key] for x, y in zip(a, b, strict=True))
        only_b = sum(y[key] and not x[key] for x, y in zip(a, b, strict=True))
        levels[key] = {
            "a": sum(x[key] for x in a),
            "b": sum(y[key] for y in b),
            "only_a": only_a,
            "only_b": only_b,
            "p": mcnemar_exact_p(only_a, only_b),
        }
    return {
        "n": len(a),
        "levels": levels,
        "reasons_a": dict(Counter(x["reason"] for x in a).most_common()),
        "reasons_b": dict(Counter(y["reason"] for y in b).most_common()),
        "unmeasured_a": sum(x["unmeasured"] for x in a),
        "unmeasured_b": sum(y["unmeasured"] for y in b),
    }


def markdown(result: dict[str, Any], name_a: str = "A", name_b: str = "B") -> str:
    n = result["n"]
    lines = [
        f"| level (of {n} completions) | {name_a} | {name_b} | only {name_a} | only {name_b} | McNemar p |",
        "|---|---|---|---|---|---|",
    ]
    for key, c in result["levels"].items():
        lines.append(f"| {key} | {c['a']} | {c['b']} | {c['only_a']} | {c['only_b']} | {c['p']:.3f} |")
    lines.append("")
    lines.append(f"- {name_a} reasons: {result['reasons_a']}")
    lines.append(f"- {name_b} reasons: {result['reasons_b']}")
    lines.append(
        f"- verified now but without a p̂ (counted unsolved): {name_a} {result['unmeasured_a']}, "
        f"{name_b} {result['unmeasured_b']}"
    )
    return "\n".join(lines)


def _load(path: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in Path(path).read_text().splitlines() if line.strip()]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("run_a", help="generator_step0.py JSONL of the baseline")
    p.add_argument("run_b", help="generator_step0.py JSONL of the candidate, same seeded specs")
    p.add_argument("--names", default="A,B", help="two labels, comma-separated")
    p.add_argument("--solver-format", default="native", help="whose p̂ to read (native or reference)")
    p.add_argument(
        "--reverify",
        default="both",
        choices=["both", "a", "b", "none"],
        help="whose completions today's verify_task judges again (the others keep their recorded verdicts)",
    )
    args = p.parse_args(argv)
    name_a, _, name_b = args.names.partition(",")
    try:
        result = pair_runs(_load(args.run_a), _load(args.run_b), args.solver_format, args.reverify)
    except (OSError, ValueError) as e:
        p.exit(2, f"step0_pair: {e}\n")
    print(markdown(result, name_a or "A", name_b or "B"))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
