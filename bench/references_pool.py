"""Build an in-prompt reference pool (``generator.references``) from step-0 benchmark outputs.

Keeps each completion that passes today's ``core.verify.verify_task`` and that the frozen Solver solved at least
once (native p̂ > 0 as the benchmark recorded it), then ``core.references.select_pool`` (p̂ ≥ 0.5, ≤ 40 words,
one per question and per gold call list). The Generator's own tasks: no human data.

    python bench/references_pool.py --from runs/step0_a/answer_first_grounded.jsonl,... --out pool.jsonl
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from toolr0.core.references import reference_from_completion, select_pool
from toolr0.core.spec import TaskSpec
from toolr0.core.verify import verify_task


def pool_rows(paths: list[str], solver_format: str = "native") -> list[dict]:
    solved = []
    for path in paths:
        for line in Path(path).read_text(encoding="utf-8").splitlines():
            row = json.loads(line)
            spec = TaskSpec(**row["spec"])
            p_hat = ((row.get("solver") or {}).get(solver_format) or {}).get("p_hat", 0.0)
            v = verify_task(row["text"], spec)
            if not (p_hat > 0 and v.ok and v.task is not None and v.task.calls):
                continue
            ref = reference_from_completion(row["text"], spec.domain, spec.menu_size, len(v.task.calls))
            if ref is not None:
                solved.append((ref, p_hat))
    return [r.to_dict() for r in select_pool(solved)]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--from", dest="sources", required=True, help="comma list of step-0 JSONL outputs")
    ap.add_argument("--out", required=True, help="the pool (JSONL of references)")
    ap.add_argument("--solver-format", default="native")
    args = ap.parse_args()
    rows = pool_rows([s for s in args.sources.split(",") if s], args.solver_format)
    Path(args.out).write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    print(f"{len(rows)} references -> {args.out}")


if __name__ == "__main__":
    main()
