"""`python -m toolr0.cli ...` (used by `accelerate launch -m toolr0.cli ...` on multi-GPU machines)."""

from toolr0.cli import main

main()
