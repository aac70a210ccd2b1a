#!/usr/bin/env bash
# GPU smoke test (issue 29): on ONE CUDA GPU, one whole self-play iteration of a tiny random Qwen2 model with
# every phase as a child process, twice: full fine-tune under DeepSpeed ZeRO-3 (1 process) and LoRA (plain
# accelerate). Prints the device each role trained on and the checkpoint sizes. Aim: under 8 minutes.
# NOT RUN ON A GPU YET (docs/training.md, "What was run where"); `--dry-run` prints the commands (CI, CPU).
#   bash scripts/gpu_smoke.sh [--dry-run] [--wheels DIR] [--out DIR]
# --wheels DIR: install what is missing (deepspeed, accelerate, trl, ...) from a local wheel folder, for a GPU
# machine without network. The model: the tiny random Qwen2 (toolr0.inference.tiny) with the real tokenizer of
# the default model when it is in the local cache, else the tiny tokenizer.
set -euo pipefail
cd "$(dirname "$0")/.."
DRY=0; WHEELS=""; OUT="${TMPDIR:-/tmp}/toolr0_gpu_smoke"
while [ $# -gt 0 ]; do
  case "$1" in
    --dry-run) DRY=1 ;;
    --wheels) WHEELS="$2"; shift ;;
    --out) OUT="$2"; shift ;;
    *) echo "gpu_smoke: unknown argument $1" >&2; exit 2 ;;
  esac
  shift
done
PY="${PYTHON:-python3}"
export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}"
run() { echo "+ $*"; if [ "$DRY" = 0 ]; then "$@"; fi; }
# the loop commands run in a dry run too, as `toolr0 selfplay --dry-run` (config validation and the plan)
loop() { echo "+ $*"; if [ "$DRY" = 0 ]; then "$@"; else "$@" --dry-run --set model.device=auto > "$OUT.plan.log"; echo "  plan ok"; fi; }

if [ "$DRY" = 0 ]; then
  "$PY" -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 'gpu_smoke: no CUDA GPU visible')"
fi
for mod in accelerate trl peft deepspeed; do
  if ! "$PY" -c "import $mod" 2>/dev/null; then
    if [ -n "$WHEELS" ]; then run "$PY" -m pip install --no-index --find-links "$WHEELS" "$mod"
    else run "$PY" -m pip install "$mod"; fi
  fi
done

MODEL="$OUT/model"
run "$PY" - "$MODEL" <<'PYEOF'
import shutil, sys
from pathlib import Path
from toolr0.inference.tiny import save_tiny_model
out = save_tiny_model(sys.argv[1])
try:  # the real tokenizer of the default model when cached (toolr0 never downloads it here)
    from toolr0.inference.models import resolve_model
    from transformers import AutoConfig, AutoTokenizer
    real = Path(resolve_model("default"))
    tok = AutoTokenizer.from_pretrained(real)
    from transformers import Qwen2ForCausalLM
    cfg = AutoConfig.from_pretrained(out); cfg.vocab_size = len(tok)
    Qwen2ForCausalLM(cfg).save_pretrained(out); tok.save_pretrained(out)
    print(f"tiny model with the real tokenizer of {real} ({len(tok)} tokens)")
except Exception as exc:  # noqa: BLE001
    print(f"tiny model with the tiny tokenizer ({type(exc).__name__}: {exc})")
PYEOF

COMMON=(--set "model.name=$MODEL" --set model.dtype=fp32 --set model.device=cuda --set launch.mode=processes
  --set loop.iterations=1 --set loop.n_candidates=8 --set loop.gen_batch_size=8 --set loop.gen_max_tokens=64
  --set frozen_solver.k=2 --set frozen_solver.max_tokens=32 --set curriculum.n_final=8
  --set inference.backend=hf --set server.managed=false --set loop.generator_prompts=8
  --set generator.max_steps=2 --set solver.max_steps=2 --set generator.max_completion_length=64
  --set solver.max_completion_length=64 --set generator.use_vllm=false --set solver.use_vllm=false
  --set launch.generator.gpus=0 --set launch.solver.gpus=0 --set launch.stage_b.gpus=0 --no-progress)
mkdir -p "$(dirname "$OUT")"
loop timeout 300 "$PY" -m toolr0.cli selfplay --config configs/paper.yaml --out "$OUT/full_zero3" "${COMMON[@]}" \
  --set roles.mode=full --set launch.generator.processes=1 --set launch.solver.processes=1 \
  --set launch.generator.accelerate_config=zero3.yaml --set launch.solver.accelerate_config=zero3.yaml
loop timeout 180 "$PY" -m toolr0.cli selfplay --config configs/paper.yaml --out "$OUT/lora" "${COMMON[@]}" \
  --set roles.mode=lora --set launch.generator.processes=1 --set launch.solver.processes=1 \
  --set launch.generator.accelerate_config=null --set launch.solver.accelerate_config=null

for run_dir in "$OUT/full_zero3" "$OUT/lora"; do
  echo "== $run_dir"
  if [ "$DRY" = 1 ]; then echo "(dry run: devices from each role's resolved.json, sizes of checkpoints/ and final/)"; continue; fi
  for role in "$run_dir"/iter_01/generator "$run_dir"/iter_01/solver; do
    [ -f "$role/resolved.json" ] || { echo "$role: not trained (skipped?)"; continue; }
    "$PY" -c "import json,sys; d=json.load(open(sys.argv[1])); print(sys.argv[1], 'device', d['device'], 'processes', d['processes'], d['distributed_type'])" "$role/resolved.json"
    du -sh "$role"/checkpoints/checkpoint-* "$role/final" 2>/dev/null || true
  done
done
