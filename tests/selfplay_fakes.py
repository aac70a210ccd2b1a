"""Shared helpers of the self-play tests: a tiny-model config and a fake Generator writing valid tasks.

The tiny random model never writes a valid task, so with it alone every candidate is rejected (the
empty-stage path). `FakeGeneratorEngine` swaps only the Generator's sampling for deterministic, valid
task texts (a few duplicates and a few broken ones included; gold [] for no-call specs) so verification, dedup, cross-verification,
pass@K, selection and Solver training all see data; the Solver side stays the real tiny model.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from toolr0.config import ToolR0Config, load_config
from toolr0.selfplay.engine import RoleEngine

WORDS = [
    "amber",
    "birch",
    "cedar",
    "delta",
    "ember",
    "fjord",
    "grove",
    "harbor",
    "island",
    "juniper",
    "kestrel",
    "lagoon",
    "meadow",
    "nectar",
    "orchid",
    "prairie",
    "quartz",
    "river",
    "summit",
    "tundra",
]


def tiny_config(model_dir: Path, **overrides: Any) -> ToolR0Config:
    """A config that runs every stage on the tiny random model in seconds."""
    over: dict[str, Any] = {
        "model.name": str(model_dir),
        "model.dtype": "fp32",
        "prompts.generator_variant": "compact",
        "structured.enabled": False,
        "frozen_solver.k": 2,
        "frozen_solver.max_tokens": 12,
        "frozen_solver.judge.max_tokens": 3,
        "frozen_solver.judge.retries": 1,
        "loop.iterations": 2,
        "loop.n_candidates": 5,
        "loop.gen_batch_size": 2,
        "loop.gen_max_tokens": 24,
        "frozen_solver.verify.k": 2,
        "frozen_solver.verify.max_tokens": 12,
        "loop.filter_batch_size": 2,
        "loop.generator_prompts": 4,
        "curriculum.n_final": 4,
    }
    for role in ("generator", "solver"):
        over.update(
            {
                f"{role}.max_steps": 1,
                f"{role}.num_generations": 2,
                f"{role}.per_device_train_batch_size": 2,
                f"{role}.gradient_accumulation_steps": 1,
                f"{role}.max_completion_length": 12,
                f"{role}.save_steps": 1,
                f"{role}.learning_rate": 1e-3,
                f"{role}.precision": "fp32",
                f"{role}.gradient_checkpointing": False,
            }
        )
    over.update(overrides)
    return load_config(None, over)


def fake_task_text(spec: Any, seed: int, j: int) -> str:
    """A valid Generator completion for `spec`, row j of a batch sampled with `seed`: row 1 duplicates row 0
    (same question/tools/calls), row 2 is a refusal when the seed is even; every other row is a new task."""
    if j == 2 and seed % 2 == 0:
        return "I cannot help with that request."
    k = 0 if j == 1 else j
    h = int(hashlib.sha256(f"{seed}:{k}".encode()).hexdigest()[:6], 16)
    w1, w2 = WORDS[h % len(WORDS)], WORDS[(h // 7) % len(WORDS)]
    tool = f"find_{w1}_listings"
    tools = [
        {
            "name": tool,
            "description": f"Search {spec.domain} listings near a place",
            "parameters": {
                "place": {"type": "string", "description": "Place name"},
                "limit": {"type": "integer", "description": "Most results"},
            },
            "required": ["place"],
        },
        {
            "name": f"get_{w2}_report",
            "description": "Fetch the latest report for a place",
            "parameters": {"place": {"type": "string", "description": "Place name"}},
            "required": ["place"],
        },
    ]
    calls = [{"name": tool, "arguments": {"place": f"{w2.title()} Bay", "limit": 3}}]
    question = f"Please find 3 {w1} listings around {w2.title()} Bay for my plans this week."
    if spec.num_calls == 0:  # a no-call task: a request neither tool serves, gold []
        calls = []
        question = f"Please cancel my {w1} club membership at {w2.title()} Bay before the end of this week."
    return (
        f"<think>One call answers it.</think>\n<question>{question}</question>\n"
        f"<available_tools>{json.dumps(tools)}</available_tools>\n"
        f"<tool_call_answer>{json.dumps(calls)}</tool_call_answer>"
    )


class _FakeGen:
    def __init__(self) -> None:
        self.calls = 0

    def generate(self, messages: list, specs: list, seed: int) -> list[str]:
        self.calls += 1
        return [fake_task_text(s, seed, j) for j, s in enumerate(specs)]


class FakeGeneratorEngine(RoleEngine):
    """The real engine with the Generator's candidate sampling replaced by `fake_task_text`."""

    def generator(self, checkpoint: str | None, t: int) -> Any:
        return _FakeGen()


def wrapped_engine(generator: Any = None, solver: Any = None) -> type[FakeGeneratorEngine]:
    """A `FakeGeneratorEngine` class whose Generator and frozen-Solver samplers are passed through ``generator`` /
    ``solver`` (each: the engine's sampler -> the one the loop gets; None keeps it)."""

    class Engine(FakeGeneratorEngine):
        def generator(self, checkpoint: str | None, t: int) -> Any:
            inner = super().generator(checkpoint, t)
            return generator(inner) if generator else inner

        def solver(self, checkpoint: str | None, t: int) -> Any:
            inner = super().solver(checkpoint, t)
            return solver(inner) if solver else inner

    return Engine
