#!/usr/bin/env bash
# Dependency-resolution check of the GPU install: do `.[train,vllm,deepspeed]` (pyproject.toml) resolve together
# for a GPU machine (Linux x86_64, Python 3.12), and does `.[train,dev]` still resolve for this Python?
# Nothing is installed: uv reads the packages' metadata from the index (about 20-60 s; pip's
# `install --dry-run` downloads every wheel here, GBs with torch/vLLM, several minutes). `--pip` uses
# `pip install --dry-run --ignore-installed --report` for the running Python instead.
#   bash scripts/check_gpu_resolution.sh [--pip] [--pyproject FILE]
# Exit 0: resolves. Exit 1: a pin conflict (the resolver's reason is printed). Exit 2: the index could not be
# reached or the resolver could not run (said so on one line; this is not a verdict on the pins).
# Config files, find-links and machine-local constraints are ignored: the check sees what a fresh GPU machine
# sees. The index is $TOOLR0_CHECK_INDEX (default https://pypi.org/simple).
set -uo pipefail
cd "$(dirname "$0")/.."

UV_VERSION=0.13.9
INDEX="${TOOLR0_CHECK_INDEX:-https://pypi.org/simple}"
TIMEOUT_S="${TOOLR0_CHECK_TIMEOUT:-240}"
GPU_EXTRAS=(train vllm deepspeed)
MODE=uv
PYPROJECT=pyproject.toml
while [ $# -gt 0 ]; do
  case "$1" in
    --pip) MODE=pip ;;
    --pyproject) PYPROJECT="$2"; shift ;;
    *) echo "usage: $0 [--pip] [--pyproject FILE]" >&2; exit 2 ;;
  esac
  shift
done

fail_env() { echo "GPU resolution check: cannot run: $*" >&2; exit 2; }

# An isolated view of pip: no pip.conf, no PIP_* environment (find-links, constraints, extra indexes).
clean_env() { env $(env | grep -o '^PIP_[A-Z_]*' | sed 's/^/-u /') -u UV_CONSTRAINT -u UV_INDEX_URL \
  PIP_CONFIG_FILE=/dev/null PIP_DISABLE_PIP_VERSION_CHECK=1 UV_NO_CONFIG=1 "$@"; }

python3 - "$INDEX" <<'EOF' || fail_env "the package index $INDEX is unreachable (network?); the check needs it"
import sys, urllib.request
try:
    urllib.request.urlopen(sys.argv[1].rstrip("/") + "/pip/", timeout=30).read(1)
except Exception as exc:
    print(f"  {type(exc).__name__}: {exc}", file=sys.stderr)
    sys.exit(1)
EOF

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
extras_csv="$(IFS=,; echo "${GPU_EXTRAS[*]}")"
t0=$(date +%s)

report() {  # $1 = label, $2 = log, $3 = rc
  if [ "$3" -eq 0 ]; then
    echo "ok: $1 resolves ($(( $(date +%s) - t0 )) s)"
    return 0
  fi
  if [ "$3" -eq 124 ]; then fail_env "$1: the resolver ran past ${TIMEOUT_S} s"; fi
  if grep -qiE "(network|connect|timed out|dns|temporary failure|failed to fetch|ssl)" "$2" \
     && ! grep -qiE "(conflict|no solution|unsatisfiable|cannot install|ResolutionImpossible)" "$2"; then
    tail -5 "$2" >&2
    fail_env "$1: the index failed during resolution (see above)"
  fi
  echo "FAIL: $1 does not resolve; a pin in $PYPROJECT conflicts. Resolver says:" >&2
  grep -vE "^\s*$|Location .* is ignored" "$2" | tail -25 >&2
  return 1
}

if [ "$MODE" = uv ]; then
  uv="$work/venv/bin/uv"
  { python3 -m venv "$work/venv" && clean_env "$work/venv/bin/pip" install -q --index-url "$INDEX" \
      "uv==$UV_VERSION"; } > "$work/uv-install.log" 2>&1 \
    || { tail -3 "$work/uv-install.log" >&2; fail_env "could not install uv==$UV_VERSION from $INDEX"; }
  cp "$PYPROJECT" "$work/pyproject.toml"  # a lone copy: uv reads the extras from its [project] table
  compile() {  # $1 = label, then uv args
    local label="$1"; shift
    clean_env timeout "$TIMEOUT_S" "$uv" pip compile --no-config --no-cache --quiet --index-url "$INDEX" \
      "$work/pyproject.toml" -o "$work/out.txt" "$@" > "$work/log" 2>&1
    report "$label" "$work/log" $?
  }
  gpu_args=(--python-version 3.12 --python-platform x86_64-manylinux_2_28)
  for e in "${GPU_EXTRAS[@]}"; do gpu_args+=(--extra "$e"); done
  compile "[$extras_csv] on Linux x86_64 / Python 3.12" "${gpu_args[@]}" || exit 1
  grep -E "^(torch|transformers|trl|peft|accelerate|vllm|deepspeed)==" "$work/out.txt" | tr '\n' ' '; echo
  here="$(python3 -c 'import sys; print("%d.%d" % sys.version_info[:2])')"
  compile "[train,dev] on this Python ($(python3 -V 2>&1))" --python-version "$here" --extra train --extra dev \
    || exit 1
else
  pipcheck() {  # $1 = label, $2 = requirement
    clean_env timeout "$TIMEOUT_S" python3 -m pip install --dry-run --ignore-installed --quiet \
      --index-url "$INDEX" --report "$work/report.json" "$2" > "$work/log" 2>&1
    report "$1" "$work/log" $?
  }
  pipcheck "[$extras_csv] on this Python ($(python3 -V 2>&1))" "$(dirname "$PYPROJECT")[$extras_csv]" || exit 1
  pipcheck "[train,dev] on this Python" "$(dirname "$PYPROJECT")[train,dev]" || exit 1
fi
