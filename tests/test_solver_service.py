"""The frozen-Solver service: pass rates on whole call lists, judge retries/fallback, cross-verification
modes, the content-hash cache (hits, clear, persistence) and an end-to-end run on the tiny model."""

from __future__ import annotations

import json

import pytest

from toolr0.core.frozen_solver import FrozenSolverConfig, VerifyConfig
from toolr0.core.schema import Task, Tool, ToolCall
from toolr0.inference.base import BaseSampler, Completion, GenerationResult, SamplingParams
from toolr0.inference.solver_service import SolverService, content_key

WEATHER = Tool(
    "get_weather",
    "Get the weather for a city",
    {"city": {"type": "string", "description": "City"}, "unit": {"type": "string", "description": "Unit"}},
    ["city"],
)
STOCK = Tool(
    "get_stock", "Get a stock price", {"ticker": {"type": "string", "description": "Symbol"}}, ["ticker"]
)


def _answer(calls) -> str:
    return f"<think>ok</think>\n<tool_call_answer>{json.dumps(calls)}</tool_call_answer>"


GOOD_1 = _answer([{"name": "get_weather", "arguments": {"city": "Paris", "unit": "celsius"}}])
WRONG_ARG = _answer([{"name": "get_weather", "arguments": {"city": "paris", "unit": "celsius"}}])
FIRST_ONLY = _answer([{"name": "get_weather", "arguments": {"city": "Paris"}}])
BOTH = _answer(
    [
        {"name": "get_weather", "arguments": {"city": "Paris"}},
        {"name": "get_stock", "arguments": {"ticker": "ACME"}},
    ]
)
BOTH_LOOSE = _answer(
    [
        {"name": "get_weather", "arguments": {"city": "Paris "}},
        {"name": "get_stock", "arguments": {"ticker": "ACME"}},
    ]
)


class ScriptedSampler(BaseSampler):
    """Returns scripted completions keyed by a marker in the last message; records every call."""

    checkpoint_id = "scripted"

    def __init__(self, script: dict[str, list[str]]):
        super().__init__()
        self.script = script
        self.calls: list[tuple[int, SamplingParams]] = []

    def _generate(self, prompts, params, adapter):
        self.calls.append((len(prompts), params))
        rows = []
        for msgs in prompts:
            text = msgs[-1]["content"]
            key = next(k for k in self.script if k in text)
            outs = self.script[key]
            rows.append([Completion(outs[i % len(outs)]) for i in range(params.n)])
        return GenerationResult(completions=rows)


def _tasks():
    single = Task(
        "What's the weather in Paris in celsius? [T1]",
        [WEATHER],
        [ToolCall("get_weather", {"city": "Paris", "unit": "celsius"})],
    )
    double = Task(
        "Weather in Paris and the ACME price [T2]",
        [WEATHER, STOCK],
        [ToolCall("get_weather", {"city": "Paris"}), ToolCall("get_stock", {"ticker": "ACME"})],
    )
    return single, double


def test_pass_rates_score_whole_call_lists_in_one_batched_call():
    single, double = _tasks()
    s = ScriptedSampler(
        {"[T1]": [GOOD_1, WRONG_ARG, GOOD_1, "no answer"], "[T2]": [FIRST_ONLY, BOTH, BOTH, BOTH_LOOSE]}
    )
    svc = SolverService(s, FrozenSolverConfig(), seed=1)
    assert svc.pass_rates([single, double.to_dict()], K=8) == [0.5, 0.5]
    assert len(s.calls) == 1 and s.calls[0][0] == 2
    params = s.calls[0][1]
    assert params.n == 8 and params.temperature == 0.7 and params.stop == ("</tool_call_answer>",)
    detail = svc.pass_rates_detailed([double], K=8)[0]
    assert (
        detail.successes == 4 and "mismatch" in detail.reasons
    )  # the first-call-only answer fails (spec §10.2)


def test_build_solver_service_reads_frozen_solver_and_the_master_seed():
    from toolr0.config import load_config
    from toolr0.inference.solver_service import build_solver_service

    single, _ = _tasks()
    over = ["frozen_solver.k=3", "frozen_solver.temperature=0.5", "frozen_solver.max_tokens=77", "seed=21"]
    over += ["rewards.allow_unclosed_answer=true"]
    cfg = load_config(None, over)
    s = ScriptedSampler({"[T1]": [GOOD_1]})
    svc = build_solver_service(cfg, s, checkpoint_id="ck", adapter="solver")
    assert svc.pass_rates([single]) == [1.0]
    params = s.calls[0][1]
    assert (params.n, params.temperature, params.max_new_tokens, params.seed) == (3, 0.5, 77, 21)
    assert (svc.checkpoint_id, svc.adapter, svc.cfg is cfg.frozen_solver) == ("ck", "solver", True)
    assert svc.allow_unclosed  # one reading of a Solver reply: the GRPO reward's and the frozen Solver's


def test_cache_is_content_keyed_and_cleared():
    single, double = _tasks()
    s = ScriptedSampler({"[T1]": [GOOD_1], "[T2]": [BOTH]})
    svc = SolverService(s, seed=3)
    first = svc.pass_rates([single, double, Task.from_dict(single.to_dict())])
    assert first == [1.0, 1.0, 1.0] and len(s.calls) == 1 and s.calls[0][0] == 2  # duplicate sampled once
    svc.pass_rates([Task.from_dict(double.to_dict())])  # equal content, new object: a hit
    assert len(s.calls) == 1 and svc.cache.hits >= 1
    svc.pass_rates([single], seed=4)  # a different seed is a different query
    assert len(s.calls) == 2
    svc.clear()
    svc.pass_rates([single])
    assert len(s.calls) == 3


def test_content_key_covers_checkpoint_prompt_params_and_seed():
    msgs = [{"role": "system", "content": "S"}, {"role": "user", "content": "U"}]
    p = SamplingParams(n=8, temperature=0.7, seed=1)
    k = content_key("ck", msgs, p, "pass_rate")
    assert k == content_key(
        "ck", [dict(m) for m in msgs], SamplingParams(n=8, temperature=0.7, seed=1), "pass_rate"
    )
    for other in (
        content_key("ck2", msgs, p, "pass_rate"),
        content_key("ck", [msgs[0], {"role": "user", "content": "U2"}], p, "pass_rate"),
        content_key("ck", [{"role": "system", "content": "S2"}, msgs[1]], p, "pass_rate"),
        content_key("ck", msgs, p.replace(n=4), "pass_rate"),
        content_key("ck", msgs, p.replace(seed=2), "pass_rate"),
        content_key("ck", msgs, p.replace(temperature=1.0), "pass_rate"),
        content_key("ck", msgs, p, "cross_verify"),
    ):
        assert other != k


def test_empty_gold_needs_an_explicit_empty_list():
    t = Task("Nothing to call here, just chatting [T3]", [WEATHER], [])
    s = ScriptedSampler(
        {
            "[T3]": [
                "<tool_call_answer>[]</tool_call_answer>",
                "garbage",
                GOOD_1,
                "<tool_call_answer>oops</tool_call_answer>",
            ]
        }
    )
    assert SolverService(s).pass_rates([t], K=4) == [0.25]


def test_judge_retries_with_suffix_then_falls_back():
    single, double = _tasks()
    suffix = FrozenSolverConfig().judge.retry_suffix

    class Judge(BaseSampler):
        def __init__(self):
            super().__init__()
            self.calls = []

        def _generate(self, prompts, params, adapter):
            self.calls.append(params)
            rows = []
            for m in prompts:
                text = m[-1]["content"]
                retry = text.rstrip().endswith(suffix)
                if "[T1]" in text:
                    rows.append([Completion("Four out of five" if not retry else "4")])
                else:
                    rows.append([Completion("hmm")])
            return GenerationResult(completions=rows)

    j = Judge()
    svc = SolverService(j, FrozenSolverConfig())
    detail = svc.judge_detailed([single, double])
    assert detail[0] == (4, ["Four out of five"], False)  # spelled-out number parses on the first try
    assert detail[1] == (3, ["hmm", "hmm", "hmm"], True)  # three attempts, then the fallback score
    assert [p.temperature for p in j.calls] == [0.1, 0.1, 0.1] and j.calls[0].max_new_tokens == 16
    assert svc.judge([single]) == [4]


def test_cross_verify_names_vs_full_call():
    single, double = _tasks()
    s = ScriptedSampler({"[T1]": [WRONG_ARG, GOOD_1], "[T2]": [BOTH_LOOSE, FIRST_ONLY]})
    svc = SolverService(s, FrozenSolverConfig(verify=VerifyConfig(mode="names", k=10, tau=0.2)))
    names = svc.cross_verify([single, double])
    assert [r.agreement for r in names] == [1.0, 0.5]
    a, extra = names[1]
    assert a == 0.5 and extra["kept"] and extra["mode"] == "names"
    full = SolverService(s, FrozenSolverConfig(verify=VerifyConfig(mode="full_call", tau=0.6))).cross_verify(
        [single, double]
    )
    # "paris" != "Paris"; "Paris " matches "Paris" under the §7.3 whitespace rule
    assert [r.agreement for r in full] == [0.5, 0.5] and not full[0].extra["kept"]
    p = s.calls[0][1]
    assert p.n == 10 and p.temperature == 0.001 and p.top_p == 0.95 and p.max_new_tokens == 1024


def test_judge_labels_parse_or_fall_back():
    single, double = _tasks()
    s = ScriptedSampler({"[T1]": ["Hard."], "[T2]": ["dunno"]})
    assert SolverService(s).judge_labels([single, double]) == [
        ("hard", "Hard.", False),
        ("medium", "dunno", True),
    ]


def test_end_to_end_on_tiny_model_is_deterministic(torch_one_thread):
    pytest.importorskip("torch")
    from toolr0.inference.hf import HFSampler
    from toolr0.inference.models import tiny_random_model

    sampler = HFSampler(*tiny_random_model(seed=0), batch_size=4)
    single, double = _tasks()
    a = SolverService(sampler, FrozenSolverConfig(max_tokens=8), seed=5)
    b = SolverService(sampler, FrozenSolverConfig(max_tokens=8), seed=5)
    ra, rb = a.pass_rates_detailed([single, double], K=3), b.pass_rates_detailed([single, double], K=3)
    assert ra == rb and all(r.K == 3 and r.p_hat == 0.0 for r in ra)  # a random model never answers
    assert sampler.last_stats.sequences == 6
    assert all(1 <= s <= 5 for s in a.judge([single]))
