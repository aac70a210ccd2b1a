#!/usr/bin/env bash
# Install xgrammar for structured Generator decoding (structured.enabled) on CPU.
# --no-deps: xgrammar's metadata pulls triton (~1 GB, GPU kernels only). On CPU import needs only
# apache-tvm-ffi (its FFI runtime) plus torch, transformers, pydantic, numpy and typing-extensions,
# which the `train` extra already installs. On a GPU machine, vLLM brings xgrammar (and triton) itself.
set -euo pipefail
if python3 -c "import importlib.util, sys; sys.exit(importlib.util.find_spec('vllm') is None)"; then
  # vllm==0.31.0 pins xgrammar==0.2.7 (with triton): replacing it would break vLLM's own structured outputs.
  echo "vLLM is installed and brings its own xgrammar; nothing to do"
  python3 -c "import xgrammar, xgrammar.contrib.hf; print('xgrammar ok')"
  exit 0
fi
python3 -m pip install --no-deps "xgrammar==0.2.8" "apache-tvm-ffi==0.1.15.post2"
python3 -c "import xgrammar, xgrammar.contrib.hf; print('xgrammar ok')"
