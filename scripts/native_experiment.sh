#!/usr/bin/env bash
# The measured result of the native Solver format (RESULTS.md): a preset's self-play (cpu), the frozen-Generator
# ablation at the same budget, and base / trained / ablation evaluated on the same seeded items in the native
# format (Hammer 100-item subsets; BFCL simple_python, multiple, parallel, irrelevance, 50 each), then the paired
# comparisons. Every step resumes where it stopped: run the same command again after an interruption.
#
#   bash scripts/native_experiment.sh                 # everything, in order (many hours on 2 CPU cores)
#   STEPS="base" bash scripts/native_experiment.sh    # only some steps: base, train, ablation, eval, compare
#
# Knobs (environment): RUNS (runs), ITERATIONS (1), HAMMER_LIMIT (100), BFCL_LIMIT (50), TAG (v2: the run with
# no-call tasks exempt from cross-verification; TAG="" names the first run's folders, runs/cpu_native and
# runs/eval/trained_native_*, RESULTS.md), CONFIG (configs/cpu.yaml), SETS (more --set overrides for both runs,
# space-separated), FORMAT (native: the Solver format of every evaluation, the base's included).
# Issue 28's measured result on a GPU node, paper scale, the paper's Solver format:
#   CONFIG=configs/paper.yaml ITERATIONS=3 FORMAT=reference TAG=paper bash scripts/native_experiment.sh
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${RUNS:-runs}
ITERATIONS=${ITERATIONS:-1}
HAMMER_LIMIT=${HAMMER_LIMIT:-100}
BFCL_LIMIT=${BFCL_LIMIT:-50}
STEPS=${STEPS:-"base train ablation eval compare"}
TAG=${TAG-v2}
SFX=${TAG:+_$TAG}
CONFIG=${CONFIG:-configs/cpu.yaml}
FORMAT=${FORMAT:-native}
TRAINED=$(basename "$CONFIG" .yaml)_$FORMAT$SFX            # runs/cpu_native_v2 by default
FROZEN=$(basename "$CONFIG" .yaml)_${FORMAT}_frozen_gen$SFX
read -r -a SET_ARGS <<< "${SETS:-}"
OVERRIDES=(--set loop.iterations="$ITERATIONS")
for s in "${SET_ARGS[@]}"; do OVERRIDES+=(--set "$s"); done
BFCL="bfcl_simple_python,bfcl_multiple,bfcl_parallel,bfcl_irrelevance"
EVAL=(--seed 0 --max-new-tokens 256 --batch-size 8 --solver-format "$FORMAT")

evaluate() {  # <model> <name>: Hammer and BFCL folders runs/eval/<name>_{hammer,bfcl}
    toolr0 eval run --model "$1" -b hammer --limit "$HAMMER_LIMIT" "${EVAL[@]}" --out "$RUNS/eval/$2_hammer"
    toolr0 eval run --model "$1" -b "$BFCL" --limit "$BFCL_LIMIT" "${EVAL[@]}" --out "$RUNS/eval/$2_bfcl"
}

for step in $STEPS; do
    case $step in
    base) evaluate default "base_$FORMAT" ;;
    train)
        toolr0 selfplay --config "$CONFIG" --out "$RUNS/$TRAINED" "${OVERRIDES[@]}" ;;
    ablation)
        toolr0 selfplay --config "$CONFIG" --out "$RUNS/$FROZEN" \
            "${OVERRIDES[@]}" --set loop.freeze_generator=true ;;
    eval)
        evaluate "$RUNS/$TRAINED" "trained_$FORMAT$SFX"
        evaluate "$RUNS/$FROZEN" "frozen_gen_$FORMAT$SFX" ;;
    compare)  # per benchmark and pooled over Hammer and BFCL together
        both() { echo "$RUNS/eval/$1_hammer,$RUNS/eval/$1_bfcl"; }
        toolr0 eval compare "$(both "base_$FORMAT")" "$(both "trained_$FORMAT$SFX")"
        toolr0 eval compare "$(both "frozen_gen_$FORMAT$SFX")" "$(both "trained_$FORMAT$SFX")" ;;
    *) echo "unknown step: $step (base, train, ablation, eval, compare)" >&2; exit 2 ;;
    esac
done
