#!/usr/bin/env bash
# Install xgrammar for structured Generator decoding (structured.enabled) on CPU.
# --no-deps: xgrammar's metadata pulls triton (~1 GB, GPU kernels only). On CPU import needs only
# apache-tvm-ffi (its FFI runtime) plus torch, transformers, pydantic, numpy and typing-extensions,
# which the `train` extra already installs. On a GPU machine, vLLM brings xgrammar (and triton) itself.
set -euo pipefail
if python3 -c "import importlib.util, sys; sys.exit(importlib.util.find_spec('vllm') is None)"; then
  # vllm==0.31.0 pins xgrammar==0.2.7, with which our task grammar rejects valid tasks (2 of the structured
  # tests fail); 0.2.8 replaces it and pip reports vLLM's pin as broken. vLLM itself with 0.2.8: untested.
  echo "note: replacing vLLM's xgrammar 0.2.7 by 0.2.8 (structured Generator decoding needs it)" >&2
fi
python3 -m pip install --no-deps "xgrammar==0.2.8" "apache-tvm-ffi==0.1.15.post2"
python3 -c "import xgrammar, xgrammar.contrib.hf; print('xgrammar ok')"
