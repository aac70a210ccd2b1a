"""TRL-shaped reward functions: values match the core rewards, one batched service call per round,
extra metrics logged, never raising on garbage; datasets carry the columns the rewards need."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from _training_support import GEN_GOOD, GEN_PARTIAL, SOLVER_GOOD, SOLVER_WRONG, weather_tasks
from toolr0.core.rewards import generator as grw
from toolr0.core.rewards.config import RewardConfig
from toolr0.core.rewards.terms import GENERATOR_TERMS, SOLVER_TERMS, generator_rewards, solver_total
from toolr0.core.solver_format import SolverFormat
from toolr0.training import data as tdata
from toolr0.training.reward_funcs import (
    completion_text,
    generator_reward_funcs,
    generator_weights,
    solver_reward_funcs,
    solver_weights,
)


def _conv(texts):
    return [[{"role": "assistant", "content": t}] for t in texts]


class FakeService:
    def __init__(self, p=0.5, score=5):
        self.calls, self.p, self.score = [], p, score

    def pass_rates(self, tasks):
        self.calls.append(("pass_rates", len(tasks)))
        return [self.p] * len(tasks)

    def judge(self, tasks):
        self.calls.append(("judge", len(tasks)))
        return [self.score] * len(tasks)


def test_generator_rewards_match_core_and_batch_the_service():
    cfg = RewardConfig()
    svc = FakeService(p=0.5, score=5)
    fmt, val, cur = generator_reward_funcs(cfg, svc)
    assert [f.__name__ for f in (fmt, val, cur)] == [
        "generator_format",
        "generator_validity",
        "generator_curriculum",
    ]
    texts = [GEN_GOOD, GEN_PARTIAL, "garbage", GEN_GOOD]
    spec = json.dumps({"domain": "weather", "context_type": "single_turn", "menu_size": 1, "num_calls": 1})
    logged = {}
    kw = {
        "prompts": [[]] * 4,
        "completion_ids": [[]] * 4,
        "spec_json": [spec] * 4,
        "log_metric": lambda k, v: logged.__setitem__(k, v),
        "trainer_state": None,
    }
    assert fmt(completions=_conv(texts), **kw) == [grw.format_reward(t, cfg).value for t in texts]
    assert val(completions=_conv(texts), **kw) == [grw.validity_reward(t, cfg).value for t in texts]
    cu = cur(completions=_conv(texts), **kw)
    # p̂ 0.5 is in band (r_diff 1), judge 5 → r_sem 1: r_curr = 1 for parseable tasks, 0 for garbage
    assert cu == [1.0, 1.0, 0.0, 1.0]
    assert svc.calls == [("pass_rates", 3), ("judge", 3)]  # ONE call each for the whole batch
    assert logged["generator/tasks_scored_rate"] == 0.75 and logged["generator/p_hat_mean"] == 0.5
    assert "generator/gate_rate" in logged and "generator/fully_valid_rate" in logged


def test_curriculum_without_service_and_with_failing_service():
    _, _, cur = generator_reward_funcs(RewardConfig(), None)
    assert cur(completions=_conv([GEN_GOOD])) == [0.0]

    class Broken:
        def pass_rates(self, tasks):
            raise RuntimeError("server down")

        def judge(self, tasks):
            return [5]

    _, _, cur = generator_reward_funcs(RewardConfig(), Broken())
    assert cur(completions=_conv([GEN_GOOD])) == [0.0]  # logged, not raised


def test_no_difficulty_ablation_skips_pass_rates():
    svc = FakeService(score=3)
    _, _, cur = generator_reward_funcs(RewardConfig(difficulty_weight=0.0), svc)
    assert cur(completions=_conv([GEN_GOOD])) == [0.25]  # 0.5 · r_sem(3) = 0.5 · 0.5
    assert [c[0] for c in svc.calls] == ["judge"]


def test_solver_rewards_use_calls_column():
    fmt, acc = solver_reward_funcs(RewardConfig())
    gold = json.dumps([{"name": "w", "arguments": {"city": "Paris"}}])
    texts = [SOLVER_GOOD, SOLVER_WRONG, "nothing"]
    logged = {}
    assert fmt(completions=_conv(texts), calls_json=[gold] * 3) == [1.0, 1.0, 0.0]
    a = acc(completions=_conv(texts), calls_json=[gold] * 3, log_metric=lambda k, v: logged.__setitem__(k, v))
    assert a[0] == 1.0 and 0 < a[1] < 1 and a[2] == 0.0
    assert abs(logged["solver/exact_rate"] - 1 / 3) < 1e-9
    assert solver_weights(RewardConfig()) == [1.0, 1.0] and generator_weights(RewardConfig()) == [
        1.0,
        1.0,
        1.0,
    ]


@settings(max_examples=60, deadline=None)
@given(st.lists(st.one_of(st.text(max_size=200), st.none(), st.integers()), min_size=1, max_size=6))
def test_reward_functions_never_raise(junk):
    comps = [[{"role": "assistant", "content": x}] if isinstance(x, str) else x for x in junk]
    for f in (*generator_reward_funcs(RewardConfig(), FakeService()), *solver_reward_funcs(RewardConfig())):
        out = f(completions=comps, calls_json=["not json"] * len(comps), spec_json=[None] * len(comps))
        assert len(out) == len(comps) and all(0.0 <= v <= 1.0 for v in out)


def test_completion_text_shapes():
    assert completion_text("x") == "x"
    assert completion_text([{"role": "assistant", "content": "a"}]) == "a"
    assert completion_text(None) == ""


def test_generator_dataset_is_seeded_and_carries_the_spec():
    a = tdata.generator_rows(5, seed=7)
    b = tdata.generator_rows(5, seed=7)
    assert a == b and a != tdata.generator_rows(5, seed=8)
    spec = tdata.spec_of(a[0]["spec_json"])
    assert spec is not None and a[0]["prompt"][-1]["role"] == "user"
    assert spec.domain in a[0]["prompt"][0]["content"] + a[0]["prompt"][1]["content"]


def test_solver_dataset_from_curriculum_jsonl(tmp_path):
    from toolr0.io import atomic_write_jsonl

    tasks = weather_tasks(3)
    rows = [{"question": "rendered", "answer": [], "task": t.to_dict()} for t in tasks]  # self-play record
    rows.append({"question": "bad record"})
    p = tmp_path / "cur.jsonl"
    atomic_write_jsonl(p, rows)
    loaded = tdata.load_tasks(p)
    assert [t.question for t in loaded] == [t.question for t in tasks]
    ds = tdata.solver_rows(loaded)
    assert json.loads(ds[0]["calls_json"]) == [{"name": "w", "arguments": {"city": "Paris"}}]
    assert "User request:" in ds[0]["prompt"][-1]["content"]


class _Failing:
    """A service whose calls fail while `down` is set; records how often it was asked."""

    def __init__(self, url="http://127.0.0.1:9/v1"):
        self.down, self.calls = True, 0
        self.sampler = type("S", (), {"base_url": url})()

    def pass_rates(self, tasks):
        self.calls += 1
        if self.down:
            raise ConnectionError("connection refused\nsecond line")
        return [0.5] * len(tasks)

    def judge(self, tasks):
        return [5] * len(tasks)


def test_reward_service_failing_n_times_in_a_row_stops_the_phase_naming_the_url():
    import pytest

    from toolr0.training.reward_funcs import RewardServiceError

    svc = _Failing()
    _, _, cur = generator_reward_funcs(RewardConfig(), svc, max_failures=3)
    assert cur(completions=_conv([GEN_GOOD])) == [0.0]
    assert cur(completions=_conv([GEN_GOOD])) == [0.0]
    with pytest.raises(RewardServiceError) as err:
        cur(completions=_conv([GEN_GOOD]))
    msg = str(err.value)
    assert "http://127.0.0.1:9/v1" in msg and "3 times in a row" in msg and "\n" not in msg
    assert svc.calls == 3


def test_a_success_resets_the_failure_count_and_zero_keeps_warn_only():
    svc = _Failing()
    _, _, cur = generator_reward_funcs(RewardConfig(), svc, max_failures=2)
    cur(completions=_conv([GEN_GOOD]))  # 1 failure
    svc.down = False
    assert cur(completions=_conv([GEN_GOOD])) == [1.0]  # success resets
    svc.down = True
    cur(completions=_conv([GEN_GOOD]))  # 1 failure again, no raise
    svc2 = _Failing()
    _, _, cur2 = generator_reward_funcs(RewardConfig(), svc2, max_failures=0)
    for _ in range(5):  # 0: the previous behaviour (warn, score the missing terms 0) stays reachable
        assert cur2(completions=_conv([GEN_GOOD])) == [0.0]


def test_service_location_names_the_server_or_the_in_process_sampler():
    from toolr0.training.reward_funcs import service_location

    assert service_location(_Failing("http://127.0.0.1:5/v1")) == "http://127.0.0.1:5/v1"
    assert "in-process" in service_location(FakeService())


def test_no_call_spec_rows_score_empty_gold_and_reach_the_solver():
    """spec_json of each row decides whether a gold of [] is a no-call task (format, validity, r_curr)."""
    cfg = RewardConfig()
    seen = []

    class Svc(FakeService):
        def pass_rates(self, tasks):
            seen.extend(tasks)
            return super().pass_rates(tasks)

    fmt, val, cur = generator_reward_funcs(cfg, Svc(p=0.5, score=5))
    calls = grw.analyse_generator_output(GEN_GOOD).parse.answer_text
    text = GEN_GOOD.replace(calls, "[]")
    no_call = {"domain": "weather", "context_type": "single_turn", "menu_size": 1, "num_calls": 0}
    specs = [json.dumps(no_call), json.dumps({**no_call, "num_calls": 1})]
    kw = {"completions": _conv([text, text]), "spec_json": specs}
    assert fmt(**kw) == [grw.format_reward(text, cfg, no_call).value, grw.format_reward(text, cfg).value]
    assert fmt(**kw)[0] > fmt(**kw)[1]
    assert val(**kw)[0] > 0 and val(**kw)[1] == 0.0
    assert cur(**kw) == [1.0, 0.0]
    assert len(seen) == 1 and seen[0].calls == []


def test_no_call_curriculum_tasks_are_trained_with_the_empty_gold_rule(tmp_path):
    """A selected no-call task (calls []) reaches Solver GRPO, where only an explicit [] earns accuracy."""
    from toolr0.core.schema import Task
    from toolr0.io import atomic_write_jsonl

    call_task = weather_tasks(1)[0]
    no_call = Task("Please cancel my weather alert subscription for Paris.", call_task.tools, [], "weather")
    rows = [
        {"question": "rendered", "answer": t.to_dict()["calls"], "task": t.to_dict()}
        for t in (call_task, no_call)
    ]
    rows.append({"question": "no calls key", "task": {"question": "Paris weather alerts?", "tools": []}})
    p = tmp_path / "cur.jsonl"
    atomic_write_jsonl(p, rows)
    loaded = tdata.load_tasks(p)
    assert [t.calls == [] for t in loaded] == [False, True]
    ds = tdata.solver_rows(loaded)
    assert json.loads(ds[1]["calls_json"]) == []
    _, acc = solver_reward_funcs(RewardConfig())
    texts = ["<think>none fits</think><tool_call_answer>[]</tool_call_answer>", SOLVER_GOOD]
    assert acc(completions=_conv(texts), calls_json=[ds[1]["calls_json"]] * 2) == [1.0, 0.0]


# ------------------------------------------------------------------- one declaration, one parse per completion
_QUESTIONS = ["What is the weather in Paris today?", "Hi", "[The generated user question here]", ""]
_TOOLS = [
    '[{"name":"w","description":"weather","parameters":{"city":{"type":"string"}},"required":["city"]}]',
    '[{"name":"w"}, {"name":"t","parameters":{"q":{"type":"string"}}}]',
    "not json",
    "",
]
_ANSWERS = [
    '[{"name":"w","arguments":{"city":"Paris"}}]',
    '[{"name":"w","arguments":{"town":"Rome"}}]',
    '[{"name":"x","arguments":{}}, {"name":"w","arguments":{"city":"Paris"}}]',
    "[]",
    "{oops",
]
_SPECS = [
    None,
    {"domain": "weather", "context_type": "single_turn", "menu_size": 1, "num_calls": 1},
    {"domain": "weather", "context_type": "single_turn", "menu_size": 1, "num_calls": 0},
]


@st.composite
def _generator_text(draw):
    if draw(st.booleans()):
        return draw(st.text(max_size=80))
    q, tools, ans = (draw(st.sampled_from(xs)) for xs in (_QUESTIONS, _TOOLS, _ANSWERS))
    return (
        f"<think>{draw(st.sampled_from(['ok', '']))}</think><question>{q}</question>"
        f"<available_tools>{tools}</available_tools><tool_call_answer>{ans}</tool_call_answer>"
    )


_weights = st.floats(0, 3, allow_nan=False)


def _weighted_sum(funcs, weights, **kw):
    per_func = [f(**kw) for f in funcs]
    return [
        sum(w * col[i] for w, col in zip(weights, per_func, strict=True)) for i in range(len(per_func[0]))
    ]


@settings(max_examples=40, deadline=None)
@given(
    st.lists(st.tuples(_generator_text(), st.sampled_from(_SPECS)), min_size=1, max_size=5),
    st.sampled_from([0.0, 0.125, 0.25, 0.5, 0.875, 1.0]),
    st.integers(1, 5),
    st.tuples(_weights, _weights, _weights, st.sampled_from([0.0, 0.5])),
)
def test_core_generator_total_is_the_weighted_sum_trl_computes(rows, p, score, w):
    cfg = RewardConfig(
        generator_format_weight=w[0],
        generator_validity_weight=w[1],
        generator_curriculum_weight=w[2],
        difficulty_weight=w[3],
    )
    funcs = generator_reward_funcs(cfg, FakeService(p=p, score=score))
    texts = [t for t, _ in rows]
    spec_json = [json.dumps(s) if s else None for _, s in rows]
    trl = _weighted_sum(funcs, generator_weights(cfg), completions=_conv(texts), spec_json=spec_json)
    for (text, spec), got in zip(rows, trl, strict=True):
        # the service only sees a parseable task of a gated completion
        scored = grw.analyse_generator_output(text).gate and grw.task_from_generator_text(text, "", spec)
        core = generator_rewards(text, cfg, p if scored else None, score if scored else None, spec)
        assert core.total == pytest.approx(got, abs=1e-12)


_REPLIES = [
    SOLVER_GOOD,
    SOLVER_WRONG,
    "<think>x</think><tool_call_answer>[]</tool_call_answer>",
    '<tool_call>{"name": "w", "arguments": {"city": "Paris"}}</tool_call>',
    "nothing",
]
_GOLDS = [[{"name": "w", "arguments": {"city": "Paris"}}], []]


@settings(max_examples=40, deadline=None)
@given(
    st.lists(
        st.tuples(st.one_of(st.sampled_from(_REPLIES), st.text(max_size=60)), st.sampled_from(_GOLDS)),
        min_size=1,
        max_size=5,
    ),
    st.tuples(_weights, _weights),
    st.sampled_from(["reference", "native"]),
)
def test_core_solver_total_is_the_weighted_sum_trl_computes(rows, w, fmt_name):
    cfg = RewardConfig(solver_format_weight=w[0], solver_accuracy_weight=w[1])
    fmt = SolverFormat(name=fmt_name)
    funcs = solver_reward_funcs(cfg, fmt)
    texts = [t for t, _ in rows]
    trl = _weighted_sum(
        funcs, solver_weights(cfg), completions=_conv(texts), calls_json=[json.dumps(g) for _, g in rows]
    )
    for (text, gold), got in zip(rows, trl, strict=True):
        assert solver_total(text, gold, cfg, fmt) == pytest.approx(got, abs=1e-12)


def test_solver_rewards_read_cut_replies_from_trls_completion_ids():
    cfg, native = RewardConfig(), SolverFormat(name="native")
    fmt, acc = solver_reward_funcs(cfg, native, max_completion_length=4, end_token_ids=(0, 9))
    texts = ["No tool applies here."] * 3
    ids = [[5, 6, 7, 8], [5, 6, 7, 9], [5, 6]]  # cut at 4; ends with an end id at 4; finished early
    logged: dict[str, float] = {}
    kw = {"calls_json": ["[]"] * 3, "completion_ids": ids, "log_metric": logged.__setitem__}
    assert fmt(_conv(texts), **kw) == [0.0, 1.0, 1.0]  # gold [] here: the right no-call answer, full format
    assert acc(_conv(texts), **kw) == [0.0, 1.0, 1.0]
    assert logged["solver/cut_rate"] == pytest.approx(1 / 3)
    fmt, _ = solver_reward_funcs(cfg, native)  # no limit given: nothing counts as cut
    assert fmt(_conv(texts), **kw) == [1.0, 1.0, 1.0]
    grid = RewardConfig(no_call_full_format=False)
    assert solver_reward_funcs(grid, native, max_completion_length=4, end_token_ids=(0, 9))[0](
        _conv(texts), **kw
    ) == [0.0, 0.6, 0.6]


def test_adapters_and_weights_follow_the_declaration():
    cfg = RewardConfig(generator_validity_weight=0.25, solver_format_weight=0.5)
    for funcs, terms, weights in (
        (generator_reward_funcs(cfg), GENERATOR_TERMS, generator_weights(cfg)),
        (solver_reward_funcs(cfg), SOLVER_TERMS, solver_weights(cfg)),
    ):
        assert [f.__name__ for f in funcs] == [t.name for t in terms]
        assert weights == [t.weight_of(cfg) for t in terms]
    assert generator_weights(cfg) == [1.0, 0.25, 1.0] and solver_weights(cfg) == [0.5, 1.0]


def test_each_completion_is_parsed_once_per_step(monkeypatch):
    """Before one parse cache per batch, a Generator batch of 4 was parsed 15 times and a Solver batch 8 times."""
    from toolr0.core.rewards import solver as srw

    seen = {"generator": 0, "solver": 0}

    def counting(real, role):
        def parse(*a, **k):
            seen[role] += 1
            return real(*a, **k)

        return parse

    monkeypatch.setattr(grw, "parse_generator_output", counting(grw.parse_generator_output, "generator"))
    monkeypatch.setattr(srw, "parse_solver_output", counting(srw.parse_solver_output, "solver"))
    texts = [GEN_GOOD, GEN_PARTIAL, "garbage", GEN_GOOD]
    kw = {"completions": _conv(texts), "spec_json": [None] * 4, "prompts": [[]] * 4}
    for f in generator_reward_funcs(RewardConfig(), FakeService()):
        f(**kw)
    assert seen["generator"] == 4
    for f in solver_reward_funcs(RewardConfig()):
        f(completions=_conv(texts), calls_json=["[]"] * 4)
    assert seen["solver"] == 4
    for f in generator_reward_funcs(RewardConfig(), FakeService()):  # the next step: a new batch, parsed anew
        f(completions=_conv(texts[:2]), spec_json=[None] * 2)
    assert seen["generator"] == 6


def test_curriculum_reward_records_each_steps_p_hat_for_the_loops_histograms(tmp_path, monkeypatch):
    """`p_hat_path`: one row per reward call with the step it trains (TRL's global_step + 1) and the p̂ of
    the parseable tasks only; another rank writes its own file (no interleaved appends); read back by
    `tb_log.phase_a_p_hat`, which pools the ranks and keeps a redone step's last row."""
    from types import SimpleNamespace

    from toolr0.io import read_jsonl
    from toolr0.selfplay.tb_log import phase_a_p_hat

    path = tmp_path / "p_hat.jsonl"
    spec = json.dumps({"domain": "weather", "context_type": "single_turn", "menu_size": 1, "num_calls": 1})
    texts = [GEN_GOOD, "garbage", GEN_GOOD]

    def step(global_step, p, rank="0"):
        monkeypatch.setenv("RANK", rank)
        _, _, cur = generator_reward_funcs(RewardConfig(), FakeService(p=p), p_hat_path=path)
        cur(completions=_conv(texts), spec_json=[spec] * 3, trainer_state=SimpleNamespace(global_step=global_step))

    step(0, 0.25)
    step(1, 0.5)
    step(1, 0.75, rank="1")
    assert list(read_jsonl(path)) == [{"step": 1, "p_hat": [0.25, 0.25]}, {"step": 2, "p_hat": [0.5, 0.5]}]
    assert list(read_jsonl(tmp_path / "p_hat.rank1.jsonl")) == [{"step": 2, "p_hat": [0.75, 0.75]}]
    step(0, 1.0)  # a resumed phase redoes step 1
    assert phase_a_p_hat(tmp_path) == {1: [1.0, 1.0], 2: [0.5, 0.5, 0.75, 0.75]}
