"""The native Solver format: prompt, reply parser, rewards and scoring (docs/solver_format.md)."""

from __future__ import annotations

import json

from hypothesis import given
from hypothesis import strategies as st

from toolr0.core.native import openai_tools, parse_native_output, render_native_calls
from toolr0.core.rewards.config import RewardConfig
from toolr0.core.rewards.solver import (
    native_format_reward,
    solver_accuracy_reward,
    solver_format_reward,
)
from toolr0.core.rewards.terms import SOLVER_TERMS, SolverSample, solver_total
from toolr0.core.schema import ToolCall
from toolr0.core.solver_format import SolverFormat, split_tools
from toolr0.eval.scoring import score_completion

NATIVE = SolverFormat("native")
WEATHER = {
    "name": "get_weather",
    "description": "Current weather for a city",
    "parameters": {
        "type": "object",
        "properties": {"city": {"type": "string"}, "unit": {"type": "string"}},
        "required": ["city"],
    },
}
STOCK = {"name": "get_stock_price", "parameters": {"symbol": {"type": "string", "required": True}}}
GOLD = [ToolCall("get_weather", {"city": "Lisbon", "unit": "celsius"})]


def block(name: str, args: dict) -> str:
    return "<tool_call>\n" + json.dumps({"name": name, "arguments": args}) + "\n</tool_call>"


# ------------------------------------------------------------------------------------------ prompt
def test_native_messages_carry_openai_tools_and_the_bare_question() -> None:
    msgs = NATIVE.messages("Weather in Lisbon?", [WEATHER, STOCK])
    chat, tools = split_tools(msgs)
    assert chat == [{"role": "user", "content": "Weather in Lisbon?"}]
    assert [t["type"] for t in tools] == ["function", "function"]
    assert tools[0]["function"]["name"] == "get_weather"
    assert tools[1]["function"]["parameters"]["required"] == ["symbol"]  # Hammer-style flag resolved


def test_reason_first_adds_a_system_line_and_requires_think() -> None:
    fmt = SolverFormat("native", reason_first=True)
    chat, _ = split_tools(fmt.messages("q?", [WEATHER]))
    assert chat[0]["role"] == "system" and "<think>" in chat[0]["content"]
    reply = block("get_weather", {"city": "Lisbon", "unit": "celsius"})
    assert solver_accuracy_reward(reply, GOLD, fmt=fmt).reason == "no_think"
    assert solver_accuracy_reward("<think>Weather.</think>\n" + reply, GOLD, fmt=fmt).value == 1.0


def test_reference_format_is_unchanged() -> None:
    ref = SolverFormat()
    msgs = ref.messages("q?", [WEATHER])
    assert [m["role"] for m in msgs] == ["system", "user"]
    assert split_tools(msgs) == (msgs, None)
    assert ref.stop == ("</tool_call_answer>",) and NATIVE.stop == ()


def test_split_tools_renders_through_a_chat_template() -> None:
    from toolr0.inference.hf import render_prompt
    from toolr0.inference.tiny import tiny_tokenizer

    tok = tiny_tokenizer()
    text = render_prompt(tok, NATIVE.messages("Weather in Lisbon?", [WEATHER]))
    assert "get_weather" in text and "Weather in Lisbon?" in text
    assert "tools" not in json.dumps(split_tools(NATIVE.messages("q", [WEATHER]))[0])


# ------------------------------------------------------------------------------------------ parser
def test_hermes_blocks_are_strict_calls() -> None:
    text = block("get_weather", {"city": "Lisbon"}) + "\n" + block("get_stock_price", {"symbol": "AAPL"})
    p = parse_native_output(text)
    assert p.wrapper == "tool_call" and p.strict_ok and p.reason == "ok"
    assert [c.name for c in p.calls] == ["get_weather", "get_stock_price"] == [c.name for c in p.strict_calls]


def test_fenced_and_bare_json_are_read_leniently_not_strictly() -> None:
    call = {"name": "get_weather", "arguments": {"city": "Lisbon"}}
    fenced = parse_native_output("Sure:\n```json\n" + json.dumps(call) + "\n```")
    assert fenced.wrapper == "fence" and fenced.calls[0].name == "get_weather"
    assert fenced.strict_calls == [] and not fenced.strict_ok
    bare = parse_native_output(json.dumps({"name": "get_weather", "parameters": {"city": "Lisbon"}}))
    assert bare.wrapper == "bare" and bare.calls == [ToolCall("get_weather", {"city": "Lisbon"})]
    llama = parse_native_output('<|python_tag|>{"name": "a", "parameters": {}}; {"name": "b", "parameters": {}}')
    assert [c.name for c in llama.calls] == ["a", "b"]


def test_prose_is_no_call_and_data_json_is_not_a_call() -> None:
    p = parse_native_output("None of these tools can book a flight, sorry.")
    assert p.no_call and p.parsed and p.calls == [] and p.reason == "no_call"
    d = parse_native_output('The user is {"name": "Ana", "age": 3}.')
    assert d.calls == [] and d.no_call


def test_an_echoed_tool_schema_is_not_a_call() -> None:
    echo = '<tools>\n{"type": "function", "function": {"name": "get_weather", "description": "w", "parameters": ' \
        '{"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}\n</tools>'
    p = parse_native_output(echo)
    assert p.calls == [] and p.no_call
    call = parse_native_output('{"type": "function", "function": {"name": "get_weather", "arguments": {"city": "X"}}}')
    assert call.calls == [ToolCall("get_weather", {"city": "X"})]


def test_cut_and_malformed_blocks() -> None:
    cut = parse_native_output('<tool_call>\n{"name": "get_weather", "arguments": {"city": "Lis')
    assert cut.unclosed and not cut.parsed and not cut.no_call
    bad = parse_native_output("<tool_call>not json</tool_call>")
    assert bad.malformed_blocks == 1 and not bad.parsed and bad.reason == "malformed_tool_call"
    some = parse_native_output("<tool_call>oops</tool_call>" + block("get_weather", {"city": "X"}))
    assert some.parsed and some.calls and not some.strict_ok


def test_a_complete_call_after_an_unclosed_tag_counts_leniently_only() -> None:
    """Seen from a trained 0.5B Solver on BFCL: the closing tag dropped inside a code fence. The call is complete,
    so the headline reads it; the strict figure (the template's own blocks) does not, and it stays unclosed."""
    fenced = '```json\n<tool_call>\n{"name": "get_weather", "arguments": {"city": "Lisbon"}}\n```'
    p = parse_native_output(fenced)
    assert p.calls == [ToolCall("get_weather", {"city": "Lisbon"})] and p.parsed
    assert p.unclosed and p.strict_calls == [] and not p.strict_ok and p.reason == "unclosed_tool_call"
    cut = parse_native_output('```json\n<tool_call>\n{"name": "get_weather", "arguments": {"city": "Lis')
    assert cut.calls == [] and not cut.parsed  # a call cut off mid-way is still no call


def test_think_is_set_aside() -> None:
    p = parse_native_output('<think>The user wants {"name": "x", "arguments": {}}</think>No tool fits.')
    assert p.think and p.no_call


@given(st.text(max_size=400))
def test_parser_is_total(text: str) -> None:
    p = parse_native_output(text)
    assert isinstance(p.reason, str) and isinstance(p.calls, list)
    value = native_format_reward(p).value
    assert value in (0.0, 0.3, 0.6, 1.0) or abs(value - 0.6) < 1e-9 or abs(value - 1.0) < 1e-9


@given(st.lists(st.tuples(st.from_regex(r"[a-z_]{1,12}", fullmatch=True), st.dictionaries(
    st.from_regex(r"[a-z]{1,6}", fullmatch=True), st.one_of(st.integers(), st.text(max_size=20)), max_size=3
)), min_size=1, max_size=3))
def test_rendered_calls_round_trip(calls: list) -> None:
    tc = [ToolCall(n, a) for n, a in calls]
    p = parse_native_output(render_native_calls(tc))
    assert p.strict_ok and p.calls == tc == p.strict_calls


# ------------------------------------------------------------------------------------------ rewards
def test_native_format_reward_grid() -> None:
    cfg = RewardConfig()
    good = block("get_weather", {"city": "Lisbon"})
    assert solver_format_reward(good, cfg, NATIVE).value == 1.0
    assert solver_format_reward("No tool applies.", cfg, NATIVE).value == 0.6
    fenced = '```json\n{"name": "get_weather", "arguments": {"city": "Lisbon"}}\n```'
    assert abs(solver_format_reward(fenced, cfg, NATIVE).value - 0.3) < 1e-9
    assert solver_format_reward("<tool_call>{bad</tool_call>", cfg, NATIVE).value == 0.0


def test_native_accuracy_keeps_the_spec_formula() -> None:
    reply = block("get_weather", {"city": "Lisbon", "unit": "celsius"})
    assert solver_accuracy_reward(reply, GOLD, fmt=NATIVE).value == 1.0  # no <think> needed
    extra = reply + block("get_stock_price", {"symbol": "AAPL"})
    assert abs(solver_accuracy_reward(extra, GOLD, fmt=NATIVE).value - 1 / 1.25) < 1e-9  # α = 0.25
    assert solver_accuracy_reward("No tool fits.", [], fmt=NATIVE).value == 1.0
    assert solver_accuracy_reward(reply, [], fmt=NATIVE).value == 0.0
    assert solver_accuracy_reward("No tool fits.", GOLD, fmt=NATIVE).value == 0.0
    assert solver_total(reply, GOLD, fmt=NATIVE) == 2.0


def test_a_native_reply_cut_at_the_limit_earns_nothing_unless_unclosed_answers_are_allowed() -> None:
    # deliberate: a cut native reply is the reference format's unclosed answer (spec §7.2); read as plain
    # "no call" it earned 1.6 of 2 on a no-call task and GRPO grew prose to the limit (RESULTS.md, v2 run)
    cfg = RewardConfig()
    prose = "I cannot help with that because " * 20
    call = block("get_weather", {"city": "Lisbon", "unit": "celsius"})
    for text, gold in ((prose, []), (prose, GOLD), (call, GOLD)):
        cut = SolverSample.of(text, gold, cfg, NATIVE, cut=True)
        assert cut.parse.reason == "cut_at_limit"
        assert [t.score(cut, cfg).value for t in SOLVER_TERMS] == [0.0, 0.0]
        whole = SolverSample.of(text, gold, cfg, NATIVE)
        assert sum(t.score(whole, cfg).value for t in SOLVER_TERMS) > 0.5
    lenient = RewardConfig(allow_unclosed_answer=True, no_call_full_format=False)
    kept = SolverSample.of(prose, [], lenient, NATIVE, cut=True)
    assert [t.score(kept, lenient).value for t in SOLVER_TERMS] == [0.6, 1.0]
    ref = "<think>x</think><tool_call_answer>" + json.dumps([GOLD[0].to_dict()]) + "</tool_call_answer>"
    ref_cut = SolverSample.of(ref, GOLD, cfg, cut=True)  # the reference format reads its own tags (spec)
    assert [t.score(ref_cut, cfg).value for t in SOLVER_TERMS] == [1.0, 1.0]


def test_reference_rewards_unchanged_by_default() -> None:
    ref = '<think>x</think><tool_call_answer>[{"name": "get_weather", "arguments": {"city": "Lisbon", "unit": "celsius"}}]</tool_call_answer>'
    assert solver_format_reward(ref).value == 1.0 and solver_accuracy_reward(ref, GOLD).value == 1.0
    assert solver_format_reward(block("get_weather", {"city": "Lisbon"})).value == 0.0


# ------------------------------------------------------------------------------------------ scoring
def test_native_scoring_headline_and_strict() -> None:
    fenced = '```json\n{"name": "get_weather", "arguments": {"city": "Lisbon", "unit": "celsius"}}\n```'
    v = score_completion(fenced, GOLD, "native")
    assert v.correct and v.strict_correct is False
    v = score_completion(block("get_weather", {"city": "Lisbon", "unit": "celsius"}), GOLD, "native")
    assert v.correct and v.strict_correct
    v = score_completion("I can't do that.", GOLD, "native")
    assert not v.correct and v.reason == "no_call"
    v = score_completion("No tool for that.", [], "native")
    assert v.correct and v.strict_correct
    v = score_completion(block("get_weather", {"city": "Lisbon"}), [], "native")
    assert not v.correct and v.reason == "unexpected_call"
    assert score_completion(fenced, GOLD).correct is False  # the reference reading is unchanged


def test_openai_reply_tool_calls_become_blocks() -> None:
    from toolr0.inference.openai_backend import reply_text

    msg = {
        "content": None,
        "tool_calls": [{"type": "function", "function": {"name": "get_weather", "arguments": '{"city": "Lisbon"}'}}],
    }
    p = parse_native_output(reply_text(msg))
    assert p.strict_ok and p.calls == [ToolCall("get_weather", {"city": "Lisbon"})]
    assert reply_text({"content": "hello"}) == "hello"


def test_openai_tools_skip_unusable_entries() -> None:
    assert [t["function"]["name"] for t in openai_tools([WEATHER, 17, {"x": 1}])] == ["get_weather"]


def test_the_right_no_call_answer_earns_full_format_on_a_no_call_task() -> None:
    """Deliberate, not in the paper (no no-call tasks there): on the spec §7.2 grid a wrong call in good form
    (1.0 format) out-earned the right refusal (0.6) on a no-call task; the v3 run's Solver learned to call on
    every request (RESULTS.md). ``no_call_full_format: false`` restores the grid."""
    cfg, grid = RewardConfig(), RewardConfig(no_call_full_format=False)
    prose = "No tool here can book a table; you could call the restaurant."
    call = block("get_weather", {"city": "Lisbon", "unit": "celsius"})
    assert solver_format_reward(prose, cfg, NATIVE, gold=[]).value == 1.0
    assert solver_format_reward(prose, grid, NATIVE, gold=[]).value == 0.6
    assert solver_total(prose, [], cfg, NATIVE) == 2.0 and solver_total(prose, [], grid, NATIVE) == 1.6
    assert solver_total(call, [], cfg, NATIVE) == solver_total(call, [], grid, NATIVE) == 1.0
    # call tasks, unknown gold and the format of a call are untouched
    assert solver_format_reward(prose, cfg, NATIVE, gold=GOLD).value == 0.6
    assert solver_format_reward(prose, cfg, NATIVE).value == 0.6
    assert solver_format_reward(call, cfg, NATIVE, gold=GOLD).value == 1.0
    # a cut reply is still nothing, and the reference format's explicit [] is the no-call answer there
    cut = SolverSample.of(prose * 10, [], cfg, NATIVE, cut=True)
    assert [t.score(cut, cfg).value for t in SOLVER_TERMS] == [0.0, 0.0]
    ref_empty = "<think>Nothing fits.</think><tool_call_answer>[]</tool_call_answer>"
    assert solver_format_reward(ref_empty, cfg, gold=[]).value == 1.0
    assert solver_format_reward(ref_empty, grid, gold=[]).value == 0.6
    assert solver_format_reward(ref_empty, cfg, gold=GOLD).value == 0.6


def test_bare_json_scan_is_bounded_on_bracket_garbage():
    """The bare-JSON scan tried the decoder at every "{", whose error counts the lines up to its position:
    quadratic (~3 s for 60,000 braces). It now skips a "{" that cannot open an object and stops after reading
    4× the text in failed attempts. Nesting past Python's recursion limit reads as no call, like shallow
    unclosed brackets (it was "parse_error: RecursionError"). A call after prose braces is still found."""
    import time

    from toolr0.core.native import parse_native_output

    t0 = time.perf_counter()
    assert parse_native_output("x" + "{" * 60_000).reason == "no_call"
    assert time.perf_counter() - t0 < 1.0
    for deep in ("I cannot help" + "[" * 5_000, '{"a":' * 4_000, '[{"a": [' * 2_000):
        assert parse_native_output(deep).reason == parse_native_output(deep[:40]).reason == "no_call"
    call = '{"name": "get_weather", "arguments": {"city": "Paris"}}'
    p = parse_native_output("Sure {see below} [1] {{ok}} here: " + call)
    assert p.reason == "calls_in_bare" and [c.name for c in p.calls] == ["get_weather"]
