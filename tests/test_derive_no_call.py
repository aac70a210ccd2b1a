"""No-call tasks derived from call tasks (core/derive_no_call.py, `loop.no_call_from_calls`)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from toolr0.core.derive_no_call import (
    DERIVED_KEY,
    MENU_KEY,
    chosen_for_derivation,
    derive_no_call,
    pick_other,
    with_other_menu,
)
from toolr0.core.schema import Task, Tool, ToolCall


def _tool(name: str, *params: str) -> Tool:
    return Tool(name, f"{name} does it", {p: {"type": "string"} for p in params}, list(params[:1]))


FORECAST = _tool("get_forecast", "city", "days")
CURRENCY = _tool("convert_currency", "amount", "to")
QUESTION = "What will the weather be like in Lisbon over the next 3 days?"


def test_gold_tools_leave_the_menu_and_the_gold_is_empty():
    task = Task(
        QUESTION, [FORECAST, CURRENCY], [ToolCall("get_forecast", {"city": "Lisbon", "days": 3})], "weather"
    )
    d = derive_no_call(task)
    assert d is not None and d.question == QUESTION and d.calls == [] and d.domain == "weather"
    assert [t.name for t in d.tools] == ["convert_currency"]
    assert d.meta[DERIVED_KEY] == ["get_forecast"]
    assert [t.name for t in task.tools] == [
        "get_forecast",
        "convert_currency",
    ]  # the source task is untouched


def test_no_derivation_without_calls_without_a_remaining_tool_or_with_a_stand_in():
    call = ToolCall("get_forecast", {"city": "Lisbon", "days": 3})
    assert derive_no_call(Task(QUESTION, [FORECAST, CURRENCY], [])) is None  # already a no-call task
    assert derive_no_call(Task(QUESTION, [FORECAST], [call])) is None  # nothing left on the menu
    # a remaining tool taking every argument of the gold call could serve the request in its stead
    stand_in = _tool("weather_outlook", "City", "days", "units")
    assert derive_no_call(Task(QUESTION, [FORECAST, stand_in], [call])) is None
    # one that takes only some of them cannot (the 'place' tool of a two-argument call)
    partial = _tool("get_weather_report", "city")
    assert derive_no_call(Task(QUESTION, [FORECAST, partial], [call])) is not None


def test_two_call_task_drops_both_gold_tools():
    other = _tool("get_air_quality", "station")
    calls = [
        ToolCall("get_forecast", {"city": "Oslo", "days": 2}),
        ToolCall("convert_currency", {"amount": 5, "to": "EUR"}),
    ]
    d = derive_no_call(Task("Oslo for 2 days, and 5 to EUR", [FORECAST, CURRENCY, other], calls))
    assert d is not None and [t.name for t in d.tools] == ["get_air_quality"]


def test_choice_is_stable_and_near_the_share():
    ids = [f"c{i}" for i in range(4000)]
    picked = [chosen_for_derivation(i, 0.3, seed=7) for i in ids]
    assert picked == [chosen_for_derivation(i, 0.3, seed=7) for i in ids]  # a resumed run picks the same
    assert abs(sum(picked) / len(ids) - 0.3) < 0.03
    assert not any(chosen_for_derivation(i, 0.0, 7) for i in ids[:50])
    assert all(chosen_for_derivation(i, 1.0, 7) for i in ids[:50])


@given(
    names=st.lists(st.text(min_size=1, max_size=8), min_size=0, max_size=4),
    gold=st.lists(st.text(max_size=8), max_size=3),
    args=st.dictionaries(st.text(max_size=6), st.integers(), max_size=3),
)
def test_never_raises_and_never_keeps_a_gold_tool(names, gold, args):
    tools = [_tool(n, *list(args)[:2]) for n in names]
    task = Task("q", tools, [ToolCall(g, dict(args)) for g in gold])
    d = derive_no_call(task)
    if d is not None:
        assert d.calls == [] and d.tools and not ({t.name for t in d.tools} & set(gold))


# --- loop.no_call_from_other_menus: the question with another domain's whole menu
SMS = _tool("send_sms", "number", "text")
MAIL = _tool("send_mail", "address")
WEATHER = Task(
    QUESTION, [FORECAST, CURRENCY], [ToolCall("get_forecast", {"city": "Lisbon", "days": 3})], "weather"
)
TEXT = Task(
    "Text 555-0100 that I am late",
    [SMS, MAIL],
    [ToolCall("send_sms", {"number": "555-0100"})],
    "communication",
)


def test_question_with_another_domains_menu():
    d = with_other_menu(WEATHER, TEXT, "c7")
    assert d is not None and d.question == QUESTION and d.calls == [] and d.domain == "weather"
    assert [t.name for t in d.tools] == ["send_sms", "send_mail"]
    assert d.meta[DERIVED_KEY] == ["get_forecast"] and d.meta[MENU_KEY] == "c7"


def test_no_other_menu_from_the_same_domain_a_gold_tool_or_a_stand_in():
    same_domain = Task("x", [SMS], TEXT.calls, "weather")
    assert with_other_menu(WEATHER, same_domain, "c1") is None  # a near tool of the same domain might serve
    assert with_other_menu(Task(QUESTION, [FORECAST], [], "weather"), TEXT, "c1") is None  # already no-call
    with_gold_tool = Task("x", [FORECAST, SMS], TEXT.calls, "communication")
    assert with_other_menu(WEATHER, with_gold_tool, "c1") is None
    stand_in = Task("x", [_tool("outlook", "city", "days"), SMS], TEXT.calls, "communication")
    assert with_other_menu(WEATHER, stand_in, "c1") is None  # takes every argument of the gold call


def test_other_menu_choice_is_stable_and_never_the_same_domain():
    candidates = [("a", "weather"), ("b", "weather"), ("c", "communication"), ("d", "finance")]
    picks = {pick_other(f"t{i}", "weather", candidates, seed=3) for i in range(40)}
    assert picks == {"c", "d"}  # both other domains drawn, never a weather task
    assert pick_other("t1", "weather", candidates, 3) == pick_other(
        "t1", "weather", list(reversed(candidates)), 3
    )
    assert pick_other("a", "weather", [("a", "weather"), ("b", "weather")], 3) is None
