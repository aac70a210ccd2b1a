"""Seeded mutation fuzzing of the whole pure core: every reader, verifier, reward and the eval scorer must be
total on model text (no exception escapes, no swallowed error) and every reward must stay in [0, 1].

Inputs are realistic seeds (valid Generator tasks, reference and native Solver replies) put through 1-4
random mutations each (truncation, insertion and deletion, span duplication, tag swaps, unicode, huge
numbers, nested brackets, splices of two seeds), drawn from `random.Random(SEED)`, so a failure names an
index that reproduces it.
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Callable
from typing import Any

from toolr0.core.completions import parse_generator_output, parse_solver_output
from toolr0.core.native import parse_native_output
from toolr0.core.rewards.config import RewardConfig
from toolr0.core.rewards.generator import analyse_generator_output, format_reward, validity_reward
from toolr0.core.rewards.solver import native_format_reward, solver_accuracy_reward, solver_format_reward
from toolr0.core.schema import ToolCall
from toolr0.core.solver_format import SolverFormat
from toolr0.core.spec import TaskSpec
from toolr0.core.verify import verify_task
from toolr0.eval.scoring import REASONS, score_completion

SEED = 20260131
MAX_CHARS = 2000  # about 500 tokens; longer texts mostly cost time in the readers' JSON scans
N_GENERATOR, N_SOLVER = 25_000, 75_000

_TOOLS = (
    '[{"name": "get_weather", "description": "Current weather in a city", "parameters": {"city": '
    '{"type": "string", "description": "City name"}, "units": {"type": "string", "enum": ["c", "f"]}}, '
    '"required": ["city"]}, {"name": "book_table", "description": "Book a restaurant table", "parameters": '
    '{"restaurant": {"type": "string"}, "people": {"type": "integer"}, "time": {"type": "string"}}, '
    '"required": ["restaurant", "people"]}]'
)
_Q1 = "What is the weather in Paris right now, in celsius please?"
_Q2 = "Check the weather in Oslo and book a table for 4 people at Maaemo at 19:00."
_Q0 = "Please cancel my gym membership at the Oslo club before Friday."
_C1 = '[{"name": "get_weather", "arguments": {"city": "Paris", "units": "c"}}]'
_C2 = (
    '[{"name": "get_weather", "arguments": {"city": "Oslo"}}, {"name": "book_table", "arguments": '
    '{"restaurant": "Maaemo", "people": 4, "time": "19:00"}}]'
)


def _gen(question: str, calls: str, tools: str = _TOOLS, think: str = "One call answers it.") -> str:
    return (
        f"<think>{think}</think>\n<question>{question}</question>\n<available_tools>{tools}</available_tools>\n"
        f"<tool_call_answer>{calls}</tool_call_answer>"
    )


GENERATOR_SEEDS = [
    (_gen(_Q1, _C1), TaskSpec("weather", "single_turn", 2, 1)),
    (_gen(_Q2, _C2), TaskSpec("travel", "single_turn", 2, 2)),
    (_gen(_Q0, "[]"), TaskSpec("fitness", "single_turn", 2, 0)),
    (_gen(_Q1, "[{'name': 'get_weather', 'arguments': {'city': 'Paris', 'units': None}}]"), None),
    (_gen(_Q1, f"```json\n{_C1}\n```"), TaskSpec("weather", "single_turn", 2, 1)),
    ("Sure! Here is a task.\n" + _gen(_Q2, _C2) + "\nHope this helps.", TaskSpec("travel", "single_turn", 3, 2)),
]
_NATIVE1 = '<tool_call>\n{"name": "get_weather", "arguments": {"city": "Paris", "units": "c"}}\n</tool_call>'
SOLVER_SEEDS = [
    f"<think>The user wants the weather.</think>\n<tool_call_answer>{_C1}</tool_call_answer>",
    f"<think>Two things.</think><tool_call_answer>{_C2}</tool_call_answer>",
    "<think>No tool cancels a membership.</think><tool_call_answer>[]</tool_call_answer>",
    "<think>x</think><tool_call_answer>[get_weather(city='Paris', units='c')]</tool_call_answer>",
    f"<think>y</think><tool_call_answer>\n```json\n{_C1}\n```\n</tool_call_answer>",
    '<think>cut</think><tool_call_answer>[{"name": "get_weather", "arguments": {"city": "Par',
    _NATIVE1,
    _NATIVE1 + "\n" + _NATIVE1.replace("get_weather", "book_table"),
    f"```json\n{_C1}\n```",
    "I cannot cancel memberships with these tools.",
    "<think>weather</think>\n" + _NATIVE1,
]
GOLDS: list[list[ToolCall]] = [
    [ToolCall("get_weather", {"city": "Paris", "units": "c"})],
    [ToolCall("get_weather", {"city": "Oslo"}), ToolCall("book_table", {"restaurant": "Maaemo", "people": 4, "time": "19:00"})],
    [],
]  # fmt: skip

TAGS = ["think", "question", "available_tools", "tool_call_answer", "tool_call", "tool_calls", "answer"]
PIECES = [
    "<", ">", "/", "[", "]", "{", "}", '"', "'", "\\", ",", ":", "\n", " ", "...", "```", "```json\n",
    "null", "NaN", "Infinity", "-Infinity", "1e999", "9" * 400, "-0", "0x1for", "1if", "True", "None",
    "\x00", "\ud800", "é", "日本語", "🙂", "\u202e", "\u200b", "\ufeff", "İ", "ﬁ", "\\u0000", "\\ud83d",
    "__import__('os')", "lambda: 0", "**{'a': 1}", "f(*x)", "<|im_end|>", "<|endoftext|>", "</s>",
]  # fmt: skip
NUMBERS = ["1e999", "-1e999", "9" * 1000, "1" + "0" * 400 + ".5", "NaN", "-0.0", "0.1e-400", "12_000", "0o17"]
NON_TEXT: list[Any] = [None, 0, 1.5, b"<think>x</think>", ["<question>"], {"a": 1}]


def _pos(rng: random.Random, s: str) -> int:
    return rng.randrange(len(s) + 1)


def _mutate(rng: random.Random, s: str, donors: list[str]) -> str:
    """One random edit of s."""
    op = rng.randrange(10)
    if op == 0:  # truncation (a reply cut at the token limit)
        return s[: _pos(rng, s)]
    if op == 1:  # insertion of a meaningful piece
        i = _pos(rng, s)
        return s[:i] + rng.choice(PIECES) + s[i:]
    if op == 2:  # deletion of a span
        i = _pos(rng, s)
        return s[:i] + s[i + rng.randrange(1, 40) :]
    if op == 3:  # duplication of a span (repeated blocks, repeated keys)
        i = _pos(rng, s)
        j = min(len(s), i + rng.randrange(1, 200))
        return s[:j] + s[i:j] * rng.randrange(1, 4) + s[j:]
    if op == 4:  # tag swap: one tag name replaced by another, or an open tag turned into a close tag
        a, b = rng.choice(TAGS), rng.choice(TAGS)
        return s.replace(f"<{a}>", rng.choice([f"<{b}>", f"</{a}>", f"< {a} >", f"<{a.upper()}>"]), 1)
    if op == 5:  # unicode in a random place
        i = _pos(rng, s)
        return s[:i] + "".join(chr(rng.randrange(0x80, 0x30000)) for _ in range(rng.randrange(1, 6))) + s[i:]
    if op == 6:  # huge or odd number where a value was
        return s.replace(rng.choice(['"Paris"', '"c"', "4", '"Oslo"', '"19:00"']), rng.choice(NUMBERS), 1)
    if op == 7:  # nested brackets, shallow to far past any depth limit
        k = rng.choice([2, 30, 120, 1000, 3000])
        o, c = rng.choice([("[", "]"), ("{", "}"), ("(", ")"), ('{"a":', "}")])
        i = _pos(rng, s)
        return s[:i] + o * k + (c * k if rng.random() < 0.5 else "") + s[i:]
    if op == 8:  # splice with another seed
        d = rng.choice(donors)
        return s[: _pos(rng, s)] + d[rng.randrange(len(d) + 1) :]
    return s[: _pos(rng, s)].swapcase() if rng.random() < 0.2 else s  # occasionally keep the seed intact


def _inputs(rng: random.Random, seeds: list[str], n: int) -> Any:
    for _ in range(n):
        if rng.random() < 0.002:
            yield rng.choice(NON_TEXT)
            continue
        s = rng.choice(seeds)
        for _ in range(rng.randrange(1, 5)):
            s = _mutate(rng, s, seeds)
        yield s[:MAX_CHARS]


class _Checker:
    """Runs targets on inputs: counts calls, exceptions and out-of-range rewards, keeps a few examples."""

    def __init__(self) -> None:
        self.failures: list[str] = []
        self.calls = 0
        self.seconds: dict[str, float] = {}

    def run(self, targets: list[Target], text: Any, extra: Any, i: int) -> None:
        for name, fn, check in targets:
            self.calls += 1
            t0 = time.perf_counter()
            try:
                problem = check(fn(text, extra))
            except Exception as e:  # noqa: BLE001 - what this test is for
                problem = f"raised {type(e).__name__}: {e}"[:200]
            self.seconds[name] = self.seconds.get(name, 0.0) + time.perf_counter() - t0
            if problem is not None:
                self.failures.append(f"input {i}, {name}: {problem}" if len(self.failures) < 20 else "...")


Target = tuple[str, Callable[[Any, Any], Any], Callable[[Any], "str | None"]]


def _reward(rv: Any) -> str | None:
    v = rv.value
    if not (isinstance(v, float | int) and math.isfinite(v) and 0.0 <= v <= 1.0):
        return f"reward {v!r} out of [0, 1]"
    if str(rv.reason).startswith("error"):
        return f"swallowed error {rv.reason}"
    return None


def _analysed(text: Any, spec: Any) -> list[Any]:
    a = analyse_generator_output(text)
    return [format_reward(a, _CFG, spec), validity_reward(a, _CFG, spec)]


def _rewards(values: list[Any]) -> str | None:
    return next((p for p in map(_reward, values) if p is not None), None)


def _ok(_: Any) -> None:
    return None


def _verdict(v: Any) -> str | None:
    if v.ok and v.task is None:
        return "ok verdict without a task"
    return None if isinstance(v.reason, str) and v.reason else f"bad reason {v.reason!r}"


def _scored(v: Any) -> str | None:
    if v.reason not in REASONS:
        return f"reason {v.reason!r} not in REASONS"
    bad = {k: x for k, x in v.metrics.items() if not math.isfinite(float(x))}
    return f"non-finite metrics {bad}" if bad else None


_CFG, _NATIVE = RewardConfig(), SolverFormat(name="native")
GENERATOR_TARGETS: list[Target] = [  # (name, fn(text, spec), check)
    ("parse_generator_output", lambda x, _: parse_generator_output(x), _ok),
    ("verify_task", verify_task, _verdict),
    # format and validity on one analysis of the text, as the reward functions share one parse per step
    ("format_reward, validity_reward", lambda x, spec: _analysed(x, spec), _rewards),
    ("parse_solver_output", lambda x, _: parse_solver_output(x), _ok),
]
# the readers themselves run inside these: score_completion calls parse_solver_output strict and lenient,
# native_format_reward calls parse_native_output
SOLVER_TARGETS: list[Target] = [  # (name, fn(text, gold), check)
    ("solver_format_reward", lambda x, gold: solver_format_reward(x, _CFG, gold=gold), _reward),
    ("solver_format_reward native", lambda x, gold: solver_format_reward(x, _CFG, _NATIVE, gold), _reward),
    ("native_format_reward", lambda x, _: native_format_reward(x, _CFG), _reward),
    ("solver_accuracy_reward", lambda x, gold: solver_accuracy_reward(x, gold, _CFG), _reward),
    ("solver_accuracy_reward native", lambda x, gold: solver_accuracy_reward(x, gold, _CFG, _NATIVE), _reward),
    ("score_completion", score_completion, _scored),
    ("score_completion native", lambda x, gold: score_completion(x, gold, "native"), _scored),
    ("parse_generator_output", lambda x, _: parse_generator_output(x), _ok),
    ("parse_native_output", lambda x, _: parse_native_output(x), _ok),
]


def test_fuzz_the_pure_core_100k_inputs():
    """100,000 mutated inputs (25,000 Generator-shaped, 75,000 Solver-shaped), 775,000 target calls.
    Measured on the 2-core dev machine with a benchmark loading both cores (load average ~6, nice 10):
    83 s wall, 53 s CPU. After issue 30's hot-path changes (tests/test_hot_paths.py), alternated with the code
    before on the same machine (load 4-5.5, nice 10): 37-71 s wall, 37-43 s CPU (before: 43-85 s wall, 43-50 s
    CPU). Unloaded it should take about the CPU time; if CI runs on loaded cores, lower N_SOLVER first (the
    Solver side, five native readings of each reply, is now most of the time)."""
    rng = random.Random(SEED)
    chk = _Checker()
    t0 = time.perf_counter()
    gen_texts = [t for t, _ in GENERATOR_SEEDS]
    specs = [s for _, s in GENERATOR_SEEDS] + [TaskSpec("fitness", "single_turn", 2, 0)]
    for i, text in enumerate(_inputs(rng, gen_texts, N_GENERATOR)):
        chk.run(GENERATOR_TARGETS, text, rng.choice(specs), i)
    solver_texts = SOLVER_SEEDS + gen_texts[:1]
    for i, text in enumerate(_inputs(rng, solver_texts, N_SOLVER), start=N_GENERATOR):
        chk.run(SOLVER_TARGETS, text, rng.choice(GOLDS), i)
    seconds = time.perf_counter() - t0
    assert chk.failures == [], "\n".join(chk.failures)
    assert chk.calls == len(GENERATOR_TARGETS) * N_GENERATOR + len(SOLVER_TARGETS) * N_SOLVER
    slowest = sorted(chk.seconds.items(), key=lambda kv: -kv[1])[:4]
    print(f"fuzz: {N_GENERATOR + N_SOLVER} inputs, {chk.calls} calls, {seconds:.1f} s; slowest {slowest}")
