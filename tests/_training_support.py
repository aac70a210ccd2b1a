"""Helpers shared by the training tests: small configs, hand-made tasks and a choice-constrained decoder.

A tiny random model never writes a tagged answer, so every real reward would be 0 and GRPO would have no
signal. `choice_factory` plugs into the trainer's structured-decoding hook and restricts sampling to a few
fixed strings (valid / partly valid / garbage), choosing uniformly at each branch point with the seeded
sampler, so completions differ within a group and the REAL reward functions produce real advantages and real gradients.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from toolr0.config import ToolR0Config, config_from_dict
from toolr0.core.schema import Task, Tool, ToolCall

GEN_GOOD = (
    "<think>ok</think><question>What is the weather in Paris today?</question>"
    '<available_tools>[{"name":"w","description":"weather","parameters":{"city":{"type":"string"}},'
    '"required":["city"]}]</available_tools>'
    '<tool_call_answer>[{"name":"w","arguments":{"city":"Paris"}}]</tool_call_answer>'
)
GEN_PARTIAL = GEN_GOOD.replace('"city":"Paris"}}]', '"town":"Rome"}}]')
SOLVER_GOOD = (
    '<think>w</think><tool_call_answer>[{"name":"w","arguments":{"city":"Paris"}}]</tool_call_answer>'
)
SOLVER_WRONG = SOLVER_GOOD.replace("Paris", "Rome")
GARBAGE = "no idea"
# Distinct first characters: the model's first sampled token picks the branch, so a group of 4 almost never
# agrees (rewards: good 2 / partial 1.x / garbage 0).
SOLVER_CHOICES = [SOLVER_GOOD, " " + SOLVER_WRONG, "\n" + SOLVER_GOOD, GARBAGE, "x", "?"]


# Short completions for the resume test (rewards 0.6 / 0.3 / 0): cheap to decode, still a real signal.
SHORT_SOLVER_CHOICES = [
    "x<tool_call_answer>[]</tool_call_answer>",
    "?<tool_call_answer>x</tool_call_answer>",
    "n",
    " <tool_call_answer>[]</tool_call_answer>",
    "a",
    "b<tool_call_answer>x</tool_call_answer>",
]
GENERATOR_CHOICES = [GEN_GOOD, " " + GEN_PARTIAL, "\n" + GEN_GOOD, GARBAGE, "x", "?"]


# Short prompts (a user-supplied prompt variant, as the prompts module allows): the byte-level tiny tokenizer
# turns the reference prompts into ~2,300 tokens, which makes every decode step slow on a shared CPU.
TINY_PROMPTS = Path(tempfile.mkdtemp(prefix="toolr0_tiny_prompts_")) / "tiny.yaml"
TINY_PROMPTS.write_text(
    "name: tiny\n"
    "generator:\n"
    "  system: 'Write one {domain} task: {menu_size} tools, {num_calls} calls.'\n"
    "  user: 'Go.'\n"
    "solver:\n"
    "  system: 'Call the tool.'\n"
    "judge:\n"
    "  system: 'Rate 1-5.'\n"
    "  user: '{question} {tools} {calls}'\n",
    encoding="utf-8",
)


def small_role(**over: Any) -> dict[str, Any]:
    base = dict(
        max_steps=2,
        per_device_train_batch_size=4,
        gradient_accumulation_steps=1,
        gradient_checkpointing=False,  # the default (on) path is exercised by the slow test and the bench
        num_generations=4,
        max_completion_length=120,
        learning_rate=5e-3,
        save_steps=2,
        precision="fp32",
    )
    return {**base, **over}


def small_cfg(
    gen: dict[str, Any] | None = None, sol: dict[str, Any] | None = None, **sections: Any
) -> ToolR0Config:
    data: dict[str, Any] = {
        "generator": small_role(**{"max_completion_length": 300, **(gen or {})}),
        "solver": small_role(**(sol or {})),
        "roles": {"lora_r": 4, "lora_alpha": 8},
        "loop": {"generator_prompts": 8},
        "frozen_solver": {"k": 2, "max_tokens": 8, "judge": {"max_tokens": 4, "retries": 1}},
        "seed": 0,
        "inference": {"batch_size": 8},
        "prompts": {"generator_variant": str(TINY_PROMPTS), "solver_variant": str(TINY_PROMPTS)},
    }
    for k, v in sections.items():
        data[k] = {**data.get(k, {}), **v}
    return config_from_dict(data)


def weather_tasks(n: int = 6) -> list[Task]:
    tool = Tool("w", "weather", {"city": {"type": "string"}}, ["city"])
    return [
        Task(f"What is the weather in Paris ({i})?", [tool], [ToolCall("w", {"city": "Paris"})])
        for i in range(n)
    ]


def choice_processor(tokenizer: Any, choices: list[str]) -> Any:
    import torch
    from transformers import LogitsProcessor

    eos = tokenizer.convert_tokens_to_ids("<|im_end|>")
    seqs = [list(tokenizer(c, add_special_tokens=False)["input_ids"]) + [eos] for c in choices]

    class ChoiceProcessor(LogitsProcessor):
        start: int | None = None

        def __call__(self, input_ids: Any, scores: Any) -> Any:
            if self.start is None:
                self.start = input_ids.shape[1]
            mask = torch.full_like(scores, float("-inf"))
            for r, gen in enumerate(input_ids[:, self.start :].tolist()):
                t = len(gen)
                allowed = {s[t] for s in seqs if len(s) > t and s[:t] == gen} or {eos}
                mask[r, sorted(allowed)] = 0.0
            return mask  # uniform over the allowed branches: independent of the random model's preferences

    return ChoiceProcessor()


def choice_factory(tokenizer: Any, choices: list[str]) -> Any:
    """A trainer `logits_processor_factory` restricting every row to `choices` (fresh processor per round)."""
    return lambda row_specs: choice_processor(tokenizer, choices)
