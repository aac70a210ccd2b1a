#!/usr/bin/env bash
# Before/after wall time of a preset's self-play iteration: the same config run from two commits, one after the
# other on the same (quiet) machine, each from its own clean clone, with /usr/bin/time and the stage shares.
#
#   bash bench/preset_ab.sh <before-commit> <after-commit> [config] [out-folder] [extra --set args for both]
#   bash bench/preset_ab.sh 66105f2 HEAD configs/quickstart.yaml /tmp/qs_ab
#
# Each run: <out>/<label>/run (run folder), <out>/<label>.log (selfplay output, time -v, stage table).
# The CPU line and dtype go at the top of <out>/summary.txt; the commits' editable installs are not touched
# (each clone runs with PYTHONPATH=<clone>/src).
set -euo pipefail
before=$1; after=$2; config=${3:-configs/quickstart.yaml}; out=${4:-/tmp/toolr0_preset_ab}; shift $(( $# < 4 ? $# : 4 ))
repo=$(cd "$(dirname "$0")/.." && pwd)
mkdir -p "$out"
{ lscpu | grep -E "^Model name|^Flags" | sed 's/Flags:.*/SIMD: '"$(grep -o -w -E 'avx512[a-z_0-9]*|amx[a-z_0-9]*|avx2' /proc/cpuinfo | sort -u | tr '\n' ' ')"'/'
  echo "config $config; before $(git -C "$repo" rev-parse --short "$before"); after $(git -C "$repo" rev-parse --short "$after")"; } > "$out/summary.txt"
for label in before after; do
    commit=$([ $label = before ] && echo "$before" || echo "$after")
    src="$out/$label.src"
    rm -rf "$src" "$out/$label"
    git clone -q "$repo" "$src" && git -C "$src" checkout -q "$(git -C "$repo" rev-parse "$commit")"
    (cd "$src" && OMP_NUM_THREADS=2 PYTHONPATH="$src/src" /usr/bin/time -v python -m toolr0.cli selfplay \
        --config "$config" --out "$out/$label/run" --no-progress "$@" > "$out/$label.log" 2>&1)
    python "$repo/bench/stage_share.py" "$out/$label/run" >> "$out/$label.log" 2>&1
    { echo "== $label ($commit)"; grep -E "Elapsed|Maximum resident" "$out/$label.log"; \
      python "$repo/bench/stage_share.py" "$out/$label/run"; } >> "$out/summary.txt"
done
cat "$out/summary.txt"
