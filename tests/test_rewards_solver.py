"""Tests for the Solver rewards (spec §7.2 format, §7.3 accuracy) and the unclosed-answer option (issue 8)."""

from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from _forecast_task import solver_out
from toolr0.core.completions import parse_solver_output
from toolr0.core.parsing import extract_last_tag
from toolr0.core.rewards import RewardConfig
from toolr0.core.rewards.solver import (
    solver_accuracy_reward,
    solver_accuracy_score,
    solver_format_reward,
    solver_format_score,
)
from toolr0.core.rewards.terms import solver_total
from toolr0.core.schema import ToolCall as C
from toolr0.eval.scoring import score_completion

GOLD = [C("get_weather", {"city": "Paris", "days": 3})]


def out(answer, think="I should call get_weather."):
    a = answer if isinstance(answer, str) else json.dumps(answer)
    return f"<think>{think}</think>\n<tool_call_answer>{a}</tool_call_answer>"


# ------------------------------------------------------------------------------------------ format
@pytest.mark.parametrize(
    "text,value",
    [
        ("no tags at all", 0.0),
        ("<tool_call_answer>  </tool_call_answer>", 0.0),
        ("<tool_call_answer>not json</tool_call_answer>", 0.3),
        ("<tool_call_answer>[1, 2]</tool_call_answer>", 0.6),
        ("<tool_call_answer>[]</tool_call_answer>", 0.6),
        ('<tool_call_answer>[{"name": "f", "arguments": {...}}]</tool_call_answer>', 0.3),  # `...` rejected
        ('<tool_call_answer>[{"name": "f", "arguments": {}}]</tool_call_answer>', 1.0),  # <think> not needed
        ("<tool_call_answer>{'name': 'f', 'arguments': {'a': None}}</tool_call_answer>", 1.0),  # single dict
        ('<TOOL_CALL_ANSWER>```json\n[{"name": "f"}]\n```</Tool_Call_Answer>', 1.0),
        ('<tool_call_answer>[{"name": "f"}, 7]</tool_call_answer>', 1.0),  # failures dropped
        ('<tool_call_answer>[{"name": "f"}]', 0.0),  # unclosed: faithful default
    ],
)
def test_format_values(text, value):
    assert solver_format_reward(text).value == pytest.approx(value)
    assert solver_format_score(text) == pytest.approx(value)


def test_format_unclosed_option():
    text = '<think>t</think><tool_call_answer>[{"name": "f", "arguments": {}}]'
    cfg = RewardConfig(allow_unclosed_answer=True)
    r = solver_format_reward(text, cfg)
    assert r.value == 1.0 and "unclosed" in r.reason
    assert solver_format_reward(text).value == 0.0


# -------------------------------------------------------------------------------------- accuracy
def test_accuracy_exact_and_requirements():
    good = out([{"name": "get_weather", "arguments": {"city": "Paris", "days": 3}}])
    assert solver_accuracy_reward(good, GOLD).value == 1.0
    assert (
        solver_accuracy_reward(
            out([{"name": "get_weather", "arguments": {"city": "Paris", "days": 3}}], think=""), GOLD
        ).value
        == 0.0
    )
    no_think = '<tool_call_answer>[{"name": "get_weather", "arguments": {"city": "Paris", "days": 3}}]</tool_call_answer>'
    assert solver_accuracy_reward(no_think, GOLD).reason == "no_think"
    assert solver_accuracy_reward(out("garbage"), GOLD).value == 0.0
    assert solver_accuracy_reward(out([1, 2]), GOLD).value == 0.0
    # gold given as dicts, as a JSON string, or as ToolCalls: all the same
    for g in (
        [{"name": "get_weather", "arguments": {"city": "Paris", "days": 3}}],
        json.dumps([GOLD[0].to_dict()]),
    ):
        assert solver_accuracy_score(good, g) == 1.0


def test_accuracy_partial_values():
    # "3" vs 3 matches (rule 2); "3.0" vs 3 does not (rule 2 is final)
    assert (
        solver_accuracy_score(
            out([{"name": "get_weather", "arguments": {"city": "Paris", "days": "3"}}]), GOLD
        )
        == 1.0
    )
    r = solver_accuracy_score(
        out([{"name": "get_weather", "arguments": {"city": "Paris", "days": "3.0"}}]), GOLD
    )
    assert r == pytest.approx(0.2 + 0.3 + 0.5 * 0.5)
    # wrong name, same arguments
    assert solver_accuracy_score(
        out([{"name": "weather", "arguments": {"city": "Paris", "days": 3}}]), GOLD
    ) == pytest.approx(0.8)
    # missing one key: key F1 = 2/3, shared value matches
    assert solver_accuracy_score(
        out([{"name": "get_weather", "arguments": {"city": "Paris"}}]), GOLD
    ) == pytest.approx(0.2 + 0.2 + 0.5)


def test_accuracy_extra_and_missing_calls():
    gold2 = [C("f", {"a": 1}), C("g", {"b": "x"})]
    both = [{"name": "f", "arguments": {"a": 1}}, {"name": "g", "arguments": {"b": "x"}}]
    assert solver_accuracy_score(out(both), gold2) == 1.0
    assert solver_accuracy_score(out(list(reversed(both))), gold2) == 1.0  # greedy, order-free
    assert solver_accuracy_score(out(both[:1]), gold2) == pytest.approx(0.5)  # missing call via s̄
    extra = both + [{"name": "h", "arguments": {}}, {"name": "k", "arguments": {}}]
    assert solver_accuracy_score(out(extra), gold2) == pytest.approx(1 / (1 + 0.25 * 2))
    cfg = RewardConfig(extra_call_alpha=1.0)
    assert solver_accuracy_score(out(extra), gold2, cfg) == pytest.approx(1 / 3)


def test_accuracy_empty_gold():
    assert solver_accuracy_score(out([]), []) == 1.0
    assert solver_accuracy_score(out([{"name": "f", "arguments": {}}]), []) == 0.0
    assert solver_accuracy_score(out([1]), []) == 0.0  # garbage is not "no call"
    assert solver_accuracy_score(out("nope"), []) == 0.0


def test_accuracy_unclosed_option_and_total():
    text = '<think>t</think><tool_call_answer>[{"name": "get_weather", "arguments": {"city": "Paris", "days": 3}}]'
    assert solver_accuracy_score(text, GOLD) == 0.0
    cfg = RewardConfig(allow_unclosed_answer=True)
    r = solver_accuracy_reward(text, GOLD, cfg)
    assert r.value == 1.0 and "unclosed" in r.reason
    assert solver_total(text, GOLD, cfg) == pytest.approx(2.0)
    assert solver_total(text, GOLD) == 0.0


# ------------------------------------------------------------------------------------ adversarial
ADVERSARIAL = [
    "",
    "<think>",
    "<think>x</think><tool_call_answer>" + "[" * 10_000 + "]" * 10_000 + "</tool_call_answer>",
    out('[{"name": "get_weather", "arguments": {"days": ' + "9" * 10_000 + "}}]"),
    out('[{"name": "get_weather", "arguments": {"days": NaN, "city": Infinity}}]'),
    out([{"name": "\ud800", "arguments": {"\udfff": "\ud800"}}]),
    out("x" * 1_000_000),
    out([{"name": "get_weather", "arguments": {"city": "Paris", "days": 3}}] * 2000),
    "<tool_call_answer><tool_call_answer>[]</tool_call_answer></tool_call_answer>",
    "<think>a</think>" * 1000 + "<tool_call_answer>[{'name': 'f'",
]


@pytest.mark.parametrize("text", ADVERSARIAL, ids=range(len(ADVERSARIAL)))
@pytest.mark.parametrize("allow", [False, True])
def test_adversarial(text, allow):
    cfg = RewardConfig(allow_unclosed_answer=allow)
    f = solver_format_reward(text, cfg).value
    assert f in {0.0, 0.3, 0.6, 1.0} or f == pytest.approx(0.6)
    for gold in (GOLD, [], [C("\ud800", {"x": float("nan")})]):
        a = solver_accuracy_reward(text, gold, cfg).value
        assert 0.0 <= a <= 1.0
        assert 0.0 <= solver_total(text, gold, cfg) <= 2.0


FAST = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
leaf = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=8))
call = st.fixed_dictionaries(
    {
        "name": st.sampled_from(["get_weather", "f", " ", "get_weather "]),
        "arguments": st.dictionaries(st.sampled_from(["city", "days", "z"]), leaf, max_size=3),
    }
)


@FAST
@given(st.text(max_size=300), st.booleans())
def test_property_random_text(text, allow):
    cfg = RewardConfig(allow_unclosed_answer=allow)
    assert solver_format_score(text, cfg) in {0.0, 0.3, 0.6, 1.0} or solver_format_score(
        text, cfg
    ) == pytest.approx(0.6)
    assert 0.0 <= solver_accuracy_score(text, GOLD, cfg) <= 1.0


@FAST
@given(st.lists(call, max_size=5), st.lists(call, min_size=1, max_size=3))
@example(  # "..." inside a string value once made the answer unparseable (issue 16): a flaky failure
    pred=[{"name": "f", "arguments": {"z": "late..."}}], gold=[{"name": "f", "arguments": {"z": "a...b"}}]
)
def test_property_structured(pred, gold):
    text = out(pred)
    a = solver_accuracy_score(text, gold)
    assert 0.0 <= a <= 1.0
    if any(c["name"].strip() for c in pred):
        assert solver_format_score(text) == 1.0
    else:
        assert solver_format_score(text) == pytest.approx(0.6)  # parses, nothing normalises
    # the gold answer itself always scores 1 unless a value is NaN (NaN never equals itself)
    nan = any(isinstance(v, float) and v != v for c in gold for v in c["arguments"].values())
    named = all(c["name"].strip() for c in gold)
    if not nan and named:
        assert solver_accuracy_score(out(gold), gold) == pytest.approx(1.0)


# --- issue 16 review: `...` inside a value, a stray second closing tag
def test_solver_answer_with_ellipsis_in_a_value_scores_full():
    gold = [C("send_sms", {"to": "Anna", "text": "Running late... sorry"})]
    text = solver_out([gold[0].to_dict()])
    assert solver_format_reward(text).value == pytest.approx(1.0)
    assert solver_accuracy_reward(text, gold).value == pytest.approx(1.0)
    assert score_completion(text, gold).correct


def test_stray_closing_tag_after_a_correct_answer():
    gold = [C("get_weather", {"city": "Paris", "days": 3})]
    text = solver_out([gold[0].to_dict()]) + "</tool_call_answer>"
    assert parse_solver_output(text).parsed
    assert solver_total(text, gold) == pytest.approx(2.0)
    assert extract_last_tag("<a> X </a> tail </a>", "a") == "X"
    assert extract_last_tag("<a>first</a> <a>second</a></a>", "a") == "second"
    # a question mentioning the tag earlier still yields the real last block
    assert extract_last_tag("see <a> here. <a>real</a>", "a") == "real"
