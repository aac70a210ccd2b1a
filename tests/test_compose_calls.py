"""Two-call tasks composed from two solved one-call tasks (core/compose_calls.py, `loop.two_call_from_solved`)."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from test_derive_no_call import CURRENCY, FORECAST, MAIL, SMS, WEATHER, _tool  # the same tools and task
from toolr0.core.compose_calls import (
    COMPOSED_KEY,
    MAX_MENU,
    Part,
    can_compose,
    compose,
    compose_pairs,
    join_questions,
)
from toolr0.core.schema import Task, ToolCall

TEXT = Task(
    "Send an SMS to 1234567890 saying I am late",
    [SMS, MAIL],
    [ToolCall("send_sms", {"number": "1234567890", "text": "I am late"})],
    "communication",
)


def test_both_requests_both_gold_calls_both_gold_tools():
    task = compose(WEATHER, TEXT, seed=1)
    assert task is not None
    assert task.question == (
        "What will the weather be like in Lisbon over the next 3 days? Also, send an SMS to 1234567890 saying I am late"
    )
    assert task.calls == WEATHER.calls + TEXT.calls
    assert {t.name for t in task.tools} == {"get_forecast", "convert_currency", "send_sms", "send_mail"}
    assert task.domain == "weather"  # the first request's: a spec domain the curriculum's quotas know
    assert [t.name for t in WEATHER.tools] == ["get_forecast", "convert_currency"]  # the parts are untouched


def test_questions_join_into_one_request():
    assert join_questions("Book a table for 2", "What time is it in Oslo?") == (
        "Book a table for 2. Also, what time is it in Oslo?"
    )
    assert join_questions("Book a table for 2!", "SMS Ann that I am late") == (
        "Book a table for 2! Also, SMS Ann that I am late"  # an acronym keeps its capitals
    )


def test_what_cannot_be_composed():
    two_calls = Task("Oslo and Rome", [FORECAST], [ToolCall("get_forecast", {"city": "Oslo"})] * 2)
    assert compose(WEATHER, two_calls, seed=0) is None  # only one-call parts
    assert compose(WEATHER, Task("x", [SMS], []), seed=0) is None  # a no-call part
    same_tool = Task("Forecast for Rome", [FORECAST], [ToolCall("get_forecast", {"city": "Rome"})])
    assert compose(WEATHER, same_tool, seed=0) is None  # one gold tool twice: not this kind
    # a tool name defined two ways across the menus: the Solver could not tell which is meant
    other_currency = _tool("convert_currency", "value")
    clash = Task(TEXT.question, [SMS, other_currency], TEXT.calls, "communication")
    assert not can_compose(WEATHER, clash) and compose(WEATHER, clash, seed=0) is None
    # the same tool defined the same way on both menus is shared, once
    shared = Task(TEXT.question, [SMS, CURRENCY], TEXT.calls, "communication")
    task = compose(WEATHER, shared, seed=0)
    assert task is not None and [t.name for t in task.tools].count("convert_currency") == 1


def test_menu_keeps_both_gold_tools_within_the_cap():
    many = [_tool(f"extra_{i}", "x") for i in range(6)]
    a = Task(WEATHER.question, [FORECAST, *many[:3]], WEATHER.calls, "weather")
    b = Task(TEXT.question, [*many[3:], SMS], TEXT.calls, "communication")
    for seed in range(20):
        task = compose(a, b, seed)
        names = [t.name for t in task.tools]
        assert len(names) == MAX_MENU and {"get_forecast", "send_sms"} <= set(names)
        assert {"extra_0", "extra_3"} <= set(names)  # distractors taken in turn from both menus
    positions = {[t.name for t in compose(a, b, s).tools].index("get_forecast") for s in range(20)}
    assert len(positions) > 1  # the seeded order puts the gold tool in more than one place


def _parts(n: int) -> list[Part]:
    parts = []
    for i in range(n):
        tool = _tool(f"tool_{i}", "x")
        parts.append(
            Part(f"t{i}", Task(f"Do thing {i} with x{i}", [tool], [ToolCall(tool.name, {"x": f"x{i}"})], "d"))
        )
    return parts


def test_pairs_are_distinct_stable_and_spread_over_the_parts():
    parts = _parts(6)
    out = compose_pairs(parts, 3, seed=5)
    assert out == compose_pairs(parts, 3, seed=5)  # a resumed run composes the same tasks
    assert len(out) == 3
    used = [i for a, b, _ in out for i in (a, b)]
    assert sorted(used) == sorted(p.id for p in parts)  # every part used once before any is reused
    for a, b, task in out:
        assert task.meta[COMPOSED_KEY] == [a, b] and len(task.calls) == 2
    all_pairs = compose_pairs(parts, 100, seed=5)
    assert len(all_pairs) == 15 and len({frozenset((a, b)) for a, b, _ in all_pairs}) == 15
    assert compose_pairs(parts[:1], 4, seed=5) == [] and compose_pairs(parts, 0, seed=5) == []


_names = st.sampled_from(["a", "b", "c", "get_x", "send_y", ""])
_values = st.one_of(st.text(max_size=5), st.integers(), st.none())
_tools = st.lists(
    st.builds(lambda n, p: _tool(n, *p), _names, st.lists(st.sampled_from(["x", "y", "z"]), max_size=3)),
    max_size=6,
)
_calls = st.lists(
    st.builds(ToolCall, _names, st.dictionaries(st.sampled_from(["x", "y"]), _values, max_size=2)), max_size=2
)
_tasks = st.builds(Task, st.text(max_size=30), _tools, _calls, st.sampled_from(["", "travel"]))


@settings(max_examples=300, deadline=None)
@given(_tasks, _tasks, st.integers(0, 2**31 - 1))
def test_never_raises_and_a_composed_task_holds_both_calls(a, b, seed):
    task = compose(a, b, seed)
    if task is None:
        return
    names = [t.name for t in task.tools]
    assert task.calls == [a.calls[0], b.calls[0]] and len(names) == len(set(names)) <= MAX_MENU
    gold_on_menu = {c.name for c in task.calls} & {t.name for t in a.tools + b.tools}
    assert gold_on_menu <= set(names)
