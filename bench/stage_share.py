"""Wall-time share of each self-play stage, read from a run directory's metrics.jsonl.

    # run the quickstart preset (heavy: ~10-20 min on 2 CPU cores), then report its stage shares
    flock /tmp/toolr0_heavy.lock toolr0 selfplay --config configs/quickstart.yaml --out runs/quickstart
    python bench/stage_share.py runs/quickstart            # table; --json for machine-readable output
    python bench/stage_share.py --run runs/quickstart      # does both (runs or resumes, then reports)

Every stage appends its wall time to metrics.jsonl when it ends (also when it is interrupted, marked
completed=false); resumed segments are summed, so the share is of the total time actually spent.
Per-stage counts come from iter_XX/stage_counts.json, training speed from the train_end events.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

STAGE_ORDER = ["generator_train", "generate", "dedup", "cross_verify", "difficulty", "select", "solver_train"]


def load(run_dir: Path) -> dict:
    metrics = [
        json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines() if line.strip()
    ]
    per_stage: dict[str, float] = {}
    interrupted: dict[str, int] = {}
    for m in metrics:
        if m.get("event") == "stage_time":
            per_stage[m["stage"]] = per_stage.get(m["stage"], 0.0) + float(m["wall_s"])
            if not m.get("completed", True):
                interrupted[m["stage"]] = interrupted.get(m["stage"], 0) + 1
    runs = [m for m in metrics if m.get("event") == "run_start"]
    total = sum(per_stage.values())
    counts = {}
    for p in sorted(run_dir.glob("iter_*/stage_counts.json")):
        c = json.loads(p.read_text())
        counts[p.parent.name] = {
            k: c.get(k) for k in ("generated", "verified", "unique", "cross_verified", "labelled", "selected")
        }
    train = [
        {k: m.get(k) for k in ("iteration", "role", "steps", "seconds", "seconds_per_step", "peak_rss_gb")}
        for m in metrics
        if m.get("event") == "train_end"
    ]
    gb = [m for m in metrics if m.get("event") == "gen_batch"]
    gen_tokens = sum(m.get("completion_tokens", 0) for m in gb)
    gen_secs = sum(m.get("seconds", 0.0) for m in gb)
    wall = None
    if runs and metrics:
        wall = metrics[-1]["time"] - runs[0]["time"]
    return {
        "run_dir": str(run_dir),
        "stage_seconds": {s: round(per_stage.get(s, 0.0), 2) for s in STAGE_ORDER if s in per_stage},
        "stage_share": {s: round(per_stage[s] / total, 4) for s in STAGE_ORDER if s in per_stage and total},
        "interrupted_segments": interrupted,
        "stage_total_s": round(total, 2),
        "first_start_to_last_event_s": round(wall, 2) if wall is not None else None,
        "sessions": len(runs),
        "counts": counts,
        "training": train,
        "candidate_generation": {
            "completion_tokens": gen_tokens,
            "seconds": round(gen_secs, 2),
            "tokens_per_s": round(gen_tokens / gen_secs, 2) if gen_secs else None,
        },
    }


def print_table(r: dict) -> None:
    print(
        f"run: {r['run_dir']}  (sessions: {r['sessions']}, stage total {r['stage_total_s']:.1f} s, "
        f"first start → last event {r['first_start_to_last_event_s']} s)"
    )
    print(f"{'stage':<18}{'seconds':>10}{'share':>9}")
    for s, sec in r["stage_seconds"].items():
        print(f"{s:<18}{sec:>10.1f}{r['stage_share'].get(s, 0):>9.1%}")
    for it, c in r["counts"].items():
        print(f"{it}: " + ", ".join(f"{k} {v}" for k, v in c.items()))
    g = r["candidate_generation"]
    if g["seconds"]:
        print(
            f"candidate generation: {g['completion_tokens']} tokens in {g['seconds']:.1f} s "
            f"({g['tokens_per_s']} tok/s summed over the batch)"
        )
    for t in r["training"]:
        sps = t["seconds_per_step"]
        print(
            f"iter {t['iteration']} {t['role']}: {t['steps']} steps, "
            f"{sps:.1f} s/step, peak RSS {t['peak_rss_gb']} GB"
            if sps
            else f"iter {t['iteration']} {t['role']}: {t}"
        )


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run_dir", type=Path)
    ap.add_argument(
        "--run", action="store_true", help="run (or resume) the quickstart preset into RUN_DIR first"
    )
    ap.add_argument("--config", default="configs/quickstart.yaml")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    if args.run:
        cmd = ["toolr0", "selfplay", "--config", args.config, "--out", str(args.run_dir), "--no-progress"]
        rc = subprocess.call(cmd)
        if rc:
            return rc
    if not (args.run_dir / "metrics.jsonl").is_file():
        print(f"{args.run_dir}: no metrics.jsonl (not a self-play run dir)", file=sys.stderr)
        return 2
    r = load(args.run_dir)
    if args.json:
        print(json.dumps(r, indent=2))
    else:
        print_table(r)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
