"""Hammer-suite loaders, the gold sweep (must be 100 %), corrupted predictions and the scorer's reasons."""

from __future__ import annotations

import json
from collections import Counter

import pytest

from _forecast_task import solver_out
from toolr0.core.schema import ToolCall
from toolr0.errors import ToolR0Error
from toolr0.eval.corrupt import EXPECTED_REASON, KINDS, corrupt_calls, solver_text
from toolr0.eval.hammer_data import HAMMER_BENCHMARKS, benchmarks_dir, load_hammer
from toolr0.eval.items import select_subset, subset_indices
from toolr0.eval.scoring import diagnose, score_completion

try:
    benchmarks_dir()
    HAVE_DATA = True
except ToolR0Error:
    HAVE_DATA = False
needs_data = pytest.mark.skipif(
    not HAVE_DATA, reason="Hammer benchmark files (../shared/benchmarks) not present"
)

# Items whose gold call names a tool absent from the item's own menu (data as shipped by Hammer): ToolAlpaca
# 30-35 (the menu lacks the called endpoint) and API-Bank L2 items whose tool was found by an earlier
# ToolSearcher turn or is simply missing. Scoring is unaffected (gold still matches gold), but a model can only
# reach these by guessing the name; RESULTS.md reports them.
GOLD_OFF_MENU = {
    "toolalpaca": {30, 31, 32, 33, 34, 35},
    "apibank_l2": {26, 66, 81, 104, 105, 117},
}


@needs_data
@pytest.mark.parametrize("name", list(HAMMER_BENCHMARKS))
def test_loader_counts_and_shapes(name):
    items = load_hammer(name)
    assert len(items) == HAMMER_BENCHMARKS[name][1]
    assert len({it.id for it in items}) == len(items)
    raw = json.loads((benchmarks_dir() / "hammer" / HAMMER_BENCHMARKS[name][0]).read_text())
    for it, row in zip(items, raw, strict=True):
        assert it.question and it.tools and it.gold
        assert len(it.gold) == len(row["answers"])  # every answer normalised, none dropped
        assert [c.name for c in it.gold] == [a.get("name") or a.get("tool") for a in row["answers"]]
        if name == "sealtool":  # {"tool","parameters"} answers
            assert it.gold[0].arguments == row["answers"][0]["parameters"]
        if name.startswith("apibank"):  # list of turns rendered as a conversation
            assert it.question.startswith("# Conversation\nUser: ")
            assert it.question.count("\n") >= len(row["query"])
    off_menu = {it.index for it in items if any(c.name not in {t.name for t in it.tools} for c in it.gold)}
    assert off_menu == GOLD_OFF_MENU.get(name, set())


@needs_data
def test_required_flags_survive_normalisation():
    item = load_hammer("toolalpaca")[0]
    tool = next(t for t in item.tools if t.name == "PublicHolidayIsTodayPublicHoliday")
    assert tool.required == ["countryCode"]
    assert "required" not in tool.properties["countryCode"]
    seal = load_hammer("sealtool")
    assert any(t.required for it in seal for t in it.tools)  # top-level required lists are read


@needs_data
@pytest.mark.parametrize("name", list(HAMMER_BENCHMARKS))
def test_gold_sweep_is_perfect(name):
    items = load_hammer(name)
    verdicts = [score_completion(solver_text(it.gold), it.gold) for it in items]
    assert all(v.correct for v in verdicts), [
        it.id for it, v in zip(items, verdicts, strict=True) if not v.correct
    ]
    assert all(v.metrics["tool_f1"] == 1.0 and v.metrics["param_f1"] == 1.0 for v in verdicts)


@needs_data
@pytest.mark.parametrize("name", list(HAMMER_BENCHMARKS))
def test_corrupted_gold_is_wrong_with_the_right_reason(name):
    items = load_hammer(name)
    kinds = Counter()
    for it in items:
        calls, kind = corrupt_calls(it.id, it.gold, it.tools)
        kinds[kind] += 1
        v = score_completion(solver_text(calls), it.gold)
        assert not v.correct, it.id
        assert v.reason == EXPECTED_REASON[kind], (it.id, kind, v.reason, v.detail)
    assert set(kinds) == set(KINDS)  # every corruption kind is exercised on every benchmark


def test_missing_data_dir_is_one_clear_line(tmp_path):
    with pytest.raises(ToolR0Error, match="benchmark data not found.*--data-dir"):
        benchmarks_dir(tmp_path / "nowhere")


def test_data_dir_may_point_at_hammer_itself(tmp_path):
    (tmp_path / "hammer").mkdir()
    assert benchmarks_dir(tmp_path / "hammer") == tmp_path.resolve()
    assert benchmarks_dir(tmp_path) == tmp_path.resolve()


def test_env_var_selects_data_dir(tmp_path, monkeypatch):
    (tmp_path / "hammer").mkdir()
    monkeypatch.setenv("TOOLR0_BENCHMARKS", str(tmp_path))
    assert benchmarks_dir() == tmp_path.resolve()


def test_subset_is_fixed_seeded_and_nested():
    a = subset_indices(399, 30, seed=0, key="apibank_l1")
    assert a == subset_indices(399, 30, seed=0, key="apibank_l1")  # same items every time
    assert len(a) == 30 and a == sorted(a) and len(set(a)) == 30
    assert set(a) <= set(
        subset_indices(399, 100, seed=0, key="apibank_l1")
    )  # a bigger run reuses a smaller one
    assert a != subset_indices(399, 30, seed=1, key="apibank_l1")
    assert a != subset_indices(399, 30, seed=0, key="apibank_l2")
    assert subset_indices(10, None, 0, "x") == list(range(10))
    assert subset_indices(10, 50, 0, "x") == list(range(10))


@needs_data
def test_select_subset_pinned_ids():
    # pins the seeded subset across Python versions/processes (string seeding is deterministic)
    ids = [it.index for it in select_subset(load_hammer("toolalpaca"), 5, seed=0)]
    assert ids == subset_indices(114, 5, 0, "toolalpaca")
    assert len(ids) == 5


# ------------------------------------------------------------------------------------- scorer reasons
GOLD = [ToolCall("get_weather", {"city": "Paris", "days": 3})]


@pytest.mark.parametrize(
    "text,reason",
    [
        ("I think the weather is nice.", "no_answer_tag"),
        ('<think>x</think><tool_call_answer>[{"name": "get_weather"', "unclosed"),
        ("<think>x</think><tool_call_answer></tool_call_answer>", "empty_answer"),
        ("<think>x</think><tool_call_answer>not json at all</tool_call_answer>", "unparseable"),
        ("<think>x</think><tool_call_answer>[]</tool_call_answer>", "no_call"),
        ("<think>x</think><tool_call_answer>[1, 2]</tool_call_answer>", "no_call"),
        (solver_text([{"name": "get_time", "arguments": {"city": "Paris", "days": 3}}]), "wrong_name"),
        (solver_text([{"name": "get_weather", "arguments": {"city": "Paris"}}]), "missing_arg"),
        (
            solver_text([{"name": "get_weather", "arguments": {"city": "Paris", "days": 3, "u": 1}}]),
            "extra_arg",
        ),
        (solver_text([{"name": "get_weather", "arguments": {"city": "Rome", "days": 3}}]), "wrong_value"),
        (solver_text([GOLD[0], GOLD[0]]), "wrong_count"),
    ],
)
def test_reasons(text, reason):
    v = score_completion(text, GOLD)
    assert not v.correct
    assert v.reason == reason, v.detail


@pytest.mark.parametrize(
    "args",
    [
        {"city": "Paris", "days": "3"},  # numbers as strings (loose gold types)
        {"city": "  Paris ", "days": 3.0},  # whitespace, 3.0 == 3
        {"days": 3, "city": "Paris"},
    ],
)
def test_normalised_values_match(args):
    v = score_completion(solver_text([{"name": "get_weather", "arguments": args}]), GOLD)
    assert v.correct and v.reason == "ok"


def test_order_free_and_lenient_diagnostic():
    gold = [ToolCall("a", {"x": 1}), ToolCall("b", {})]
    assert score_completion(solver_text([gold[1], gold[0]]), gold).correct
    # an unclosed answer is wrong for the headline but counted by the lenient diagnostic
    v = score_completion(
        '<think>t</think><tool_call_answer>[{"name": "a", "arguments": {"x": 1}}, '
        '{"name": "b", "arguments": {}}]',
        gold,
    )
    assert not v.correct and v.reason == "unclosed" and v.lenient_correct


def test_diagnose_pairs_same_named_calls_by_content():
    gold = [ToolCall("g", {"p": "P"}), ToolCall("g", {"p": "B", "m": "S"})]
    assert diagnose([ToolCall("g", {}), ToolCall("g", {"p": "B", "m": "S"})], gold)[0] == "missing_arg"
    assert (
        diagnose([ToolCall("g", {"p": "Q"}), ToolCall("g", {"p": "B", "m": "S"})], gold)[0] == "wrong_value"
    )


def test_scorer_never_raises_on_garbage():
    for text in [
        None,
        "",
        "<tool_call_answer>" * 50,
        "<tool_call_answer>[" + "[" * 5000 + "</tool_call_answer>",
        12,
    ]:
        v = score_completion(text, GOLD)  # type: ignore[arg-type]
        assert not v.correct and v.reason


# --- issue 16 review: junk list elements
def test_junk_list_elements_make_the_prediction_wrong():
    gold = [ToolCall("get_weather", {"city": "Paris"})]
    text = solver_out([gold[0].to_dict(), 17, "junk"])
    v = score_completion(text, gold)
    assert not v.correct and v.reason == "malformed_call"
    assert "2 of 3" in v.detail
    assert not v.lenient_correct
    # a python-call element is a call: the lenient diagnostic reads it
    assert score_completion(solver_out([gold[0].to_dict()]), gold).correct
