"""GRPO training of the Generator and the Solver on TRL's `GRPOTrainer` (spec §8).

- `config`: `RolesConfig`, `GRPORoleConfig` (pure pydantic).
- `roles`: how the roles' parameters are laid out (per-role LoRA on one frozen base, full, shared).
- `data`: Generator prompt datasets from sampled specs; Solver datasets from a curriculum JSONL.
- `reward_funcs`: TRL-shaped reward functions wrapping `toolr0.core.rewards`.
- `grpo`: build the `GRPOConfig` + `GRPOTrainer` for one role and run it (with atomic checkpoints, resume).
"""
