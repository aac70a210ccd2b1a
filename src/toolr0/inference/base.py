"""The one sampling interface every backend implements (transformers, vLLM, OpenAI-compatible HTTP).

`Sampler.generate(prompts, params, adapter)` takes chat conversations and returns, for each prompt,
`params.n` completion strings. Backends keep the stop string in the text (the Solver parser needs the
closing `</tool_call_answer>`) and cut everything after it. Token counts and timings of the latest call
are in `sampler.last_stats`; `generate_detailed` returns them per completion.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

Messages = list[dict[str, Any]]


@dataclass(frozen=True)
class SamplingParams:
    """Decoding settings of one call. temperature 0 means greedy; top_k 0 means no top-k cut."""

    n: int = 1
    temperature: float = 1.0
    top_p: float = 1.0
    max_new_tokens: int = 256
    stop: tuple[str, ...] = ()
    seed: int | None = 0
    top_k: int = 0
    repetition_penalty: float = 1.0

    def __post_init__(self) -> None:
        if isinstance(self.stop, str):  # a single stop string given bare
            object.__setattr__(self, "stop", (self.stop,))
        elif not isinstance(self.stop, tuple):
            object.__setattr__(self, "stop", tuple(self.stop))
        if self.n < 1:
            raise ValueError(f"n must be >= 1, got {self.n}")
        if self.max_new_tokens < 1:
            raise ValueError(f"max_new_tokens must be >= 1, got {self.max_new_tokens}")
        if self.temperature < 0 or not 0 < self.top_p <= 1:
            raise ValueError("temperature must be >= 0 and top_p in (0, 1]")

    @property
    def greedy(self) -> bool:
        return self.temperature <= 1e-5

    def key(self) -> dict[str, Any]:
        """A JSON-able dict of every field (for content-hash cache keys and logs)."""
        return {
            "n": self.n,
            "temperature": self.temperature,
            "top_p": self.top_p,
            "max_new_tokens": self.max_new_tokens,
            "stop": list(self.stop),
            "seed": self.seed,
            "top_k": self.top_k,
            "repetition_penalty": self.repetition_penalty,
        }

    def replace(self, **changes: Any) -> SamplingParams:
        return SamplingParams(**{**self.key(), "stop": self.stop, **changes})


@dataclass
class Completion:
    """One sampled completion with its accounting."""

    text: str
    completion_tokens: int = 0
    finish_reason: str = "length"  # "stop" (stop string), "eos", or "length"


@dataclass
class GenerationStats:
    """Totals of one `generate` call."""

    prompts: int = 0
    sequences: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    seconds: float = 0.0
    forward_calls: int = 0
    prefill_tokens: int = 0  # token positions run through prefill, padding included (hf backend; 0: unknown)
    decoded_row_steps: int = 0  # rows x decode steps the forward passes ran (hf backend; 0: unknown)

    @property
    def row_fill(self) -> float:
        """Generated tokens per decoded row-step (1.0: no row decoded past its end; 0.0: unknown)."""
        return self.completion_tokens / self.decoded_row_steps if self.decoded_row_steps else 0.0

    @property
    def tokens_per_second(self) -> float:
        return self.completion_tokens / self.seconds if self.seconds > 0 else 0.0

    def add(self, other: GenerationStats) -> None:
        for f in (
            "prompts",
            "sequences",
            "prompt_tokens",
            "completion_tokens",
            "seconds",
            "forward_calls",
            "prefill_tokens",
            "decoded_row_steps",
        ):
            setattr(self, f, getattr(self, f) + getattr(other, f))


@dataclass
class GenerationResult:
    """Per-prompt lists of n completions plus call totals."""

    completions: list[list[Completion]] = field(default_factory=list)
    stats: GenerationStats = field(default_factory=GenerationStats)

    def texts(self) -> list[list[str]]:
        return [[c.text for c in row] for row in self.completions]


@runtime_checkable
class Sampler(Protocol):
    """Chat messages in, `n` completions per prompt out. `adapter` selects a LoRA adapter (None = base)."""

    last_stats: GenerationStats

    def generate(
        self, prompts: list[Messages], params: SamplingParams, adapter: str | None = None
    ) -> list[list[str]]: ...


class BaseSampler:
    """Shared plumbing: `generate` delegates to `generate_detailed` and records `last_stats`."""

    #: identifies the weights being sampled (cache keys); backends set it from the model name/path.
    checkpoint_id: str = "unknown"

    def __init__(self) -> None:
        self.last_stats = GenerationStats()

    def generate(
        self, prompts: list[Messages], params: SamplingParams, adapter: str | None = None
    ) -> list[list[str]]:
        return self.generate_detailed(prompts, params, adapter=adapter).texts()

    def generate_detailed(
        self, prompts: list[Messages], params: SamplingParams, adapter: str | None = None
    ) -> GenerationResult:
        t0 = time.perf_counter()
        result = self._generate(prompts, params, adapter)
        result.stats.seconds = time.perf_counter() - t0
        result.stats.prompts = len(prompts)
        self.last_stats = result.stats
        return result

    def _generate(
        self, prompts: list[Messages], params: SamplingParams, adapter: str | None
    ) -> GenerationResult:
        raise NotImplementedError


def cut_at_stop(text: str, stop: tuple[str, ...] | list[str]) -> tuple[str, bool]:
    """Cut `text` right after the earliest stop string (kept in the text); (text, stopped)."""
    best: tuple[int, int] | None = None  # (start, -length): first occurrence, longest on ties
    for s in stop:
        i = text.find(s) if s else -1
        if i >= 0 and (best is None or (i, -len(s)) < best):
            best = (i, -len(s))
    return (text[: best[0] - best[1]], True) if best is not None else (text, False)
