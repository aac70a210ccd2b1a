"""Tests for toolr0.core.matching: spec §7.3 value rules, pair score, greedy matching, exact match, P/R/F1."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from _forecast_task import solver_out
from toolr0.core.matching import (
    calls_equal_canonical,
    eval_values_equal,
    exact_match,
    greedy_match,
    pair_score,
    prf,
    values_match,
)
from toolr0.core.schema import ToolCall as C
from toolr0.eval.scoring import score_completion


# ------------------------------------------------------------------------------------- value rules
@pytest.mark.parametrize(
    "a,b,expected",
    [
        ("Paris", "Paris", True),  # rule 1
        (5, 5.0, True),  # rule 1 (Python equality)
        (5, "5", True),  # rule 2: int vs numeric str
        ("+5", "5", True),  # rule 2: leading + removed
        ("5", "5.0", False),  # rule 2 is final: no numeric fallback
        (5, "5.0", False),  # rule 2 again
        ("-3", -3, True),
        ("05", "5", False),  # rule 2: stripped strings differ
        (" 7 ", 7, True),  # rule 2 strips
        (5.0, "5", True),  # float is not int/str: rule 3 numeric
        (0.1 + 0.2, 0.3, True),  # rule 3 tolerance
        ("1e3", 1000, True),  # rule 3: numeric strings
        ("1234567890123456", 1234567890123456.0, False),  # rule 3: > 15 digits not coerced
        ("New  York", "New York", True),  # rule 4 whitespace
        ("new york", "New York", False),  # rule 4 is case-sensitive
        ({"a": [1, 2]}, {"a": [1, 2]}, True),
        ([1, 2], [2, 1], False),  # rule 5 canonical JSON
        ({"b": 1, "a": 2}, {"a": 2, "b": 1}, True),
        (None, None, True),
        (None, "None", False),
        (True, True, True),
        (True, 1, False),  # deliberate: bools only match bools (Python has True == 1)
        (False, 0, False),
        (True, "true", False),
        (float("nan"), float("nan"), False),
    ],
)
def test_values_match_rules(a, b, expected):
    assert values_match(a, b) is expected
    assert values_match(b, a) is expected


def test_pair_score_components():
    g = C("f", {"a": 1, "b": "x"})
    assert pair_score(C("f", {"a": 1, "b": "x"}), g) == pytest.approx(1.0)
    assert pair_score(C("g", {"a": 1, "b": "x"}), g) == pytest.approx(0.8)  # wrong name
    # keys {a} vs {a,b}: F1 = 2/3; shared a matches: v = 1
    assert pair_score(C("f", {"a": 1}), g) == pytest.approx(0.2 + 0.3 * 2 / 3 + 0.5)
    # keys equal, one of two values wrong
    assert pair_score(C("f", {"a": 2, "b": "x"}), g) == pytest.approx(0.2 + 0.3 + 0.25)
    assert pair_score(C("f", {}), C("f", {})) == pytest.approx(1.0)
    assert pair_score(C("f", {}), g) == pytest.approx(0.2)  # one side empty: k = 0, v = 0
    assert pair_score(C("f", {"z": 1}), g) == pytest.approx(0.2)  # no shared key
    assert pair_score(C("", {}), C("", {})) == pytest.approx(0.8)  # empty names never match


def test_greedy_match_order_and_use_once():
    gold = [C("f", {"a": 1}), C("f", {"a": 2})]
    pred = [C("f", {"a": 2}), C("f", {"a": 1})]
    m = greedy_match(pred, gold)
    assert [(g, p) for g, p, _ in m.pairs] == [(0, 1), (1, 0)]
    assert m.mean == pytest.approx(1.0)
    # one prediction cannot serve two gold calls
    m = greedy_match([C("f", {"a": 1})], gold)
    assert len(m.pairs) == 1 and m.unmatched_gold == [1]
    assert m.mean == pytest.approx(0.5)  # (1.0 + 0) / 2
    # a zero-score prediction is never matched
    m = greedy_match([C("", {"zz": 1})], [C("f", {"a": 1})])
    assert m.pairs == [] and m.mean == 0.0


# --------------------------------------------------------------------------------------- evaluation
def test_eval_equality_differs_from_reward_rule2():
    # The reward's rule 2 says "5" != "5.0"; evaluation reads loose benchmark types, so a number matches either
    # string (two strings still compare as text: test_eval_values_that_differ below).
    assert not values_match("5", "5.0")
    assert all(eval_values_equal(x, 5) and eval_values_equal(5, x) for x in ("5", "5.0", 5, 5.0))
    assert eval_values_equal("  New   York ", "New York")
    assert eval_values_equal("TRUE", True) and eval_values_equal("TRUE", "true")
    assert eval_values_equal({"a": ["1", 2.5]}, {"a": [1, 2.5]})


def test_exact_match():
    gold = [C("f", {"a": 5, "city": "New York"}), C("g", {})]
    assert exact_match([C("g", {}), C("f", {"city": "New  York", "a": "5.0"})], gold)  # order-free
    assert not exact_match([C("g", {}), C("f", {"city": "New York", "a": 5})], gold, ordered=True)
    assert not exact_match([C("f", {"a": 5, "city": "New York"})], gold)  # count
    assert not exact_match([C("f", {"a": 5}), C("g", {})], gold)  # key set
    assert not exact_match([C("f", {"a": 6, "city": "New York"}), C("g", {})], gold)  # value
    assert not exact_match([C("f", {"a": 5, "city": "new york"}), C("g", {})], gold)  # case kept
    assert exact_match([], [])
    # multiset: duplicates count
    assert not exact_match([C("g", {}), C("g", {})], [C("g", {}), C("f", {})])


def test_prf_values():
    gold = [C("f", {"a": 1, "b": "x"}), C("g", {"c": 2})]
    pred = [C("f", {"a": "1", "b": "y"}), C("h", {"c": 2})]
    r = prf(pred, gold)
    assert r["tool_p"] == pytest.approx(0.5) and r["tool_r"] == pytest.approx(0.5)
    # param triples: pred {(f,a,1), (f,b,y), (h,c,2)}, gold {(f,a,1), (f,b,x), (g,c,2)}: 1 shared
    assert r["param_p"] == pytest.approx(1 / 3) and r["param_r"] == pytest.approx(1 / 3)
    assert r["param_f1"] == pytest.approx(1 / 3)
    assert (r["param_tp"], r["param_pred"], r["param_gold"]) == (1, 3, 3)
    perfect = prf(gold, gold)
    assert all(perfect[k] == 1.0 for k in ("tool_f1", "param_f1"))
    none = prf([], gold)
    assert none["tool_p"] == 0.0 and none["tool_r"] == 0.0 and none["tool_f1"] == 0.0
    both_empty = prf([], [])
    assert both_empty["tool_f1"] == 1.0 and both_empty["param_f1"] == 1.0


def test_calls_equal_canonical():
    g = [C("f", {"a": 1, "b": "x"}), C("g", {"c": True})]
    assert calls_equal_canonical([C("f", {"b": "x", "a": 1}), C("g", {"c": True})], g)  # key order ignored
    assert not calls_equal_canonical([C("g", {"c": True}), C("f", {"a": 1, "b": "x"})], g)  # ordered
    assert calls_equal_canonical([C("g", {"c": True}), C("f", {"a": 1, "b": "x"})], g, ordered=False)
    assert not calls_equal_canonical([C("f", {"a": 1.0, "b": "x"}), C("g", {"c": True})], g)  # 1.0 != 1
    assert not calls_equal_canonical([C("f", {"a": "1", "b": "x"}), C("g", {"c": True})], g)  # type
    assert not calls_equal_canonical([C("f", {"a": 1, "b": "x"}), C("g", {"c": 1})], g)  # True != 1
    assert not calls_equal_canonical([C("f", {"a": 1, "b": "x"})], g)  # first call only: fails
    assert not calls_equal_canonical([C("f", {"a": {1: 2, "x": 3}})], [C("f", {"a": {1: 2, "x": 3}})])


# -------------------------------------------------------------------------------------- properties
values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**30), max_value=10**30)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=12)
    | st.sampled_from(["5", "5.0", "+5", "1e3", "\ud800", " 7 ", "nan", "inf"]),
    lambda ch: st.lists(ch, max_size=3) | st.dictionaries(st.text(max_size=4), ch, max_size=3),
    max_leaves=10,
)
calls = st.builds(
    C, st.sampled_from(["f", "g", " f", ""]), st.dictionaries(st.sampled_from("abc"), values, max_size=3)
)


@settings(max_examples=80, deadline=None)
@given(values, values)
def test_property_values_match_total_and_symmetric(a, b):
    r = values_match(a, b)
    assert isinstance(r, bool)
    assert r == values_match(b, a)


@settings(max_examples=60, deadline=None)
@given(st.lists(calls, max_size=4), st.lists(calls, max_size=4))
def test_property_matching_ranges(pred, gold):
    for p in pred:
        for g in gold:
            assert 0.0 <= pair_score(p, g) <= 1.0 + 1e-12
    m = greedy_match(pred, gold)
    assert 0.0 <= m.mean <= 1.0 + 1e-12
    assert len(m.pairs) <= min(len(pred), len(gold))
    r = prf(pred, gold)
    assert all(0.0 <= r[k] <= 1.0 for k in ("tool_p", "tool_r", "tool_f1", "param_p", "param_r", "param_f1"))
    assert isinstance(exact_match(pred, gold), bool)
    assert isinstance(calls_equal_canonical(pred, gold, ordered=False), bool)
    assert exact_match(gold, list(reversed(gold)))  # order-free
    assert calls_equal_canonical(gold, list(reversed(gold)), ordered=False)
    if all(c.name.strip() for c in gold) and not any(_has_nan(c.arguments) for c in gold):
        assert greedy_match(gold, gold).mean == pytest.approx(1.0 if gold else 0.0)


def _has_nan(x) -> bool:
    if isinstance(x, float):
        return math.isnan(x)
    if isinstance(x, dict):
        return any(_has_nan(v) for v in x.values())
    if isinstance(x, list):
        return any(_has_nan(v) for v in x)
    return False


def _deep(n: int) -> list:
    x: list = []
    for _ in range(n):
        x = [x]
    return x


@pytest.mark.parametrize(
    "value",
    [_deep(10_000), 10**5000, float("nan"), float("inf"), "\ud800", "x" * 1_000_000, {"k": _deep(5_000)}],
    ids=["deep", "hugeint", "nan", "inf", "surrogate", "1MB", "deepdict"],
)
def test_adversarial_values_never_raise(value):
    p, g = C("f", {"a": value}), C("f", {"a": value})
    assert isinstance(values_match(value, value), bool)
    assert 0.0 <= pair_score(p, g) <= 1.0
    assert 0.0 <= greedy_match([p], [g]).mean <= 1.0
    assert isinstance(exact_match([p], [g]), bool)
    assert isinstance(calls_equal_canonical([p], [g]), bool)
    r = prf([p], [g])
    assert all(0.0 <= r[k] <= 1.0 for k in ("tool_f1", "param_f1"))
    assert isinstance(eval_values_equal(value, value), bool)


# --- issue 16 review: evaluation value equality and exact match
@pytest.mark.parametrize(
    "pred,gold",
    [
        ("02134", "2134"),
        ("+15551234567", "15551234567"),
        ("3.10", "3.1"),
        ("5", "5.0"),
        (12345678901234567, 12345678901234568),
        ("12345678901234567", "12345678901234568"),
        ("12345678901234567", 12345678901234568),
        (12345678901234567, 12345678901234568.0),
        ("02134", 2134),
        ("+15551234567", 15551234567),
        ("1e3", "1000"),
    ],
)
def test_eval_values_that_differ(pred, gold):
    assert not eval_values_equal(pred, gold)
    assert not exact_match([C("f", {"v": pred})], [C("f", {"v": gold})])
    assert not score_completion(
        solver_out([{"name": "f", "arguments": {"v": pred}}]), [C("f", {"v": gold})]
    ).correct


@pytest.mark.parametrize(
    "pred,gold",
    [
        ("5", 5),  # loose benchmark types: a number written as a string (spec §12.1)
        ("5.0", 5),
        (5.0, 5),
        ("3.10", 3.1),
        ("  New   York ", "New York"),
        ("true", True),
        (12345678901234567, "12345678901234567"),
        (0.1 + 0.2, 0.3),  # spec §7.3 rule 3 tolerance for genuine numbers
        (["1", 2.5], [1, "2.5"]),
        ({"a": "7"}, {"a": 7}),
    ],
)
def test_eval_values_that_match(pred, gold):
    assert eval_values_equal(pred, gold)
    assert exact_match([C("f", {"v": pred})], [C("f", {"v": gold})])


_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**20), max_value=10**20)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=10)
    | st.sampled_from(["5", "5.0", "+5", "05", "3.10", "3.1", "1e3", "true", " 7 ", "-0", "0.0"]),
    lambda ch: st.lists(ch, max_size=3) | st.dictionaries(st.text(max_size=3), ch, max_size=3),
    max_leaves=8,
)


@settings(max_examples=150, deadline=None)
@given(_values, _values)
def test_eval_equality_is_reflexive_and_symmetric(a, b):
    assert eval_values_equal(a, a)
    assert eval_values_equal(a, b) == eval_values_equal(b, a)


def test_exact_match_is_a_multiset_match_under_the_new_equality():
    gold = [C("f", {"v": "3.1"}), C("f", {"v": 3.1})]
    assert exact_match([C("f", {"v": 3.1}), C("f", {"v": "3.1"})], gold)
    assert exact_match(
        [C("f", {"v": "3.1"}), C("f", {"v": "3.10"})], [C("f", {"v": 3.1}), C("f", {"v": "3.1"})]
    )
    assert not exact_match([C("f", {"v": "3.10"}), C("f", {"v": "3.10"})], gold)


def test_prf_uses_the_same_equality():
    m = prf([C("f", {"zip": "02134", "n": "5"})], [C("f", {"zip": "2134", "n": 5})])
    assert m["param_tp"] == 1 and m["tool_tp"] == 1
