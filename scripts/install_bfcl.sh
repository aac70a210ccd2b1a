#!/usr/bin/env bash
# Minimal offline-capable install of BFCL's official checker (spec §12.2): bfcl-eval without its ~6 GB dependency
# tree (torch, every API SDK, pinned numpy). pip's warnings about skipped dependencies are harmless.
set -euo pipefail
python3 -m pip install --no-deps bfcl-eval==2026.3.23 tree_sitter==0.21.3 tree-sitter-java==0.21.0 \
  tree-sitter-javascript==0.21.4 filelock tenacity
