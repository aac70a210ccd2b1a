"""Tests for toolr0.core.parsing: tags, fences, relaxed/strict parsing, every call shape, whole completions."""

from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from _forecast_task import FORECAST_TOOLS
from toolr0.core.completions import GeneratorParse, SolverParse, parse_generator_output, parse_solver_output
from toolr0.core.parsing import (
    ParseResult,
    extract_last_tag,
    extract_unclosed_tail,
    normalise_call,
    normalise_calls,
    parse_python_calls,
    parse_relaxed,
    parse_strict_json,
    strip_fences,
)
from toolr0.core.schema import ToolCall

GOOD = '[{"name": "get_weather", "arguments": {"city": "Paris"}}]'


# ---------------------------------------------------------------------------------------------- tags
def test_last_tag_basic_and_case_insensitive():
    assert extract_last_tag("<think> a </think>", "think") == "a"
    assert extract_last_tag("<THINK>b</Think>", "think") == "b"
    assert extract_last_tag("<think>a</think><think>c</think>", "think") == "c"


def test_last_tag_when_question_mentions_tag():
    # the notes' failure: a non-greedy findall()[-1] would return the span from the mention onwards
    text = (
        "<question>Put the call in <tool_call_answer> please</question>\n"
        f"<tool_call_answer>{GOOD}</tool_call_answer>"
    )
    assert extract_last_tag(text, "tool_call_answer") == GOOD


def test_last_tag_missing_or_truncated():
    assert extract_last_tag("<think>no close", "think") is None
    assert extract_last_tag("no open</think>", "think") is None
    assert extract_last_tag("", "think") is None
    assert extract_last_tag(None, "think") is None  # type: ignore[arg-type]
    assert extract_last_tag("<think></think>", "think") == ""


def test_unclosed_tail():
    assert extract_unclosed_tail(f"<tool_call_answer>{GOOD}", "tool_call_answer") == GOOD
    assert extract_unclosed_tail(f"<tool_call_answer>{GOOD}</tool_call_answer>", "tool_call_answer") is None


def test_strip_fences():
    assert strip_fences(f"```json\n{GOOD}\n```") == GOOD
    assert strip_fences(f"```\n{GOOD}```") == GOOD
    assert strip_fences(f"Here it is:\n```json\n{GOOD}\n```\nthanks") == GOOD
    assert strip_fences(f"  {GOOD}  ") == GOOD
    assert strip_fences(f"```json\n{GOOD}\n```\nThis calls the weather tool.") == GOOD
    assert strip_fences("```true```") == "true"
    assert strip_fences(f"```json\n{GOOD}") == GOOD  # truncated: opening fence only
    code = '[{"name": "run", "arguments": {"src": "```print(1)```"}}]'
    assert strip_fences(code) == code  # JSON text with fences inside a value is left alone


# ------------------------------------------------------------------------------------------ relaxed
def test_relaxed_json_literal_eval_and_replacement():
    assert parse_relaxed('{"a": 1}').method == "json"
    r = parse_relaxed("{'a': (1, 2), 'b': None}")
    assert r.ok and r.method == "literal_eval" and r.value == {"a": [1, 2], "b": None}
    # literal_eval cannot read `null`, and json cannot read True: the third step handles mixed text
    r = parse_relaxed('{"a": True, "b": null}')
    assert r.ok and r.method == "json_replaced" and r.value == {"a": True, "b": None}


def test_relaxed_rejects_ellipsis_and_garbage():
    assert parse_relaxed('[{"name": "f", "arguments": {...}}]').reason == "ellipsis"
    assert not parse_relaxed("not json at all").ok
    assert parse_relaxed("   ").reason == "empty"
    assert parse_relaxed(None).reason == "not_text"  # type: ignore[arg-type]


def test_relaxed_guards():
    deep = "[" * 10_000 + "]" * 10_000
    assert not parse_relaxed(deep).ok
    assert not parse_relaxed("1" * 5000).ok  # beyond Python's int digit limit
    assert parse_relaxed("[NaN, Infinity]").ok  # json.loads accepts these
    assert not parse_relaxed("{" * 300 + "'a': 1" + "}" * 300).ok


def test_strict_json():
    assert parse_strict_json(GOOD).ok
    assert not parse_strict_json("{'a': 1}").ok
    assert not parse_strict_json("[NaN]").ok
    assert not parse_strict_json("[1, 2,]").ok
    assert parse_strict_json(f"```json\n{GOOD}\n```").ok
    assert not parse_strict_json(f"```json\n{GOOD}\n```", fences=False).ok


# ------------------------------------------------------------------------------------ call shapes
@pytest.mark.parametrize(
    "obj",
    [
        {"name": "f", "arguments": {"a": 1}},
        {"function": {"name": "f", "arguments": {"a": 1}}},
        {"type": "function", "function": {"name": "f", "arguments": '{"a": 1}'}},
        {"tool": "f", "parameters": {"a": 1}},
        {"tool_name": "f", "arguments": {"a": 1}},
        {"name": "f", "a": 1},  # flat dict
        {"tool_name": "f", "a": 1},
        {"name": " f ", "arguments": "{'a': 1}"},
        "f(a=1)",
    ],
)
def test_every_call_shape(obj):
    assert normalise_call(obj) == ToolCall("f", {"a": 1})


def test_single_key_form_is_opt_in():
    assert normalise_call({"f": {"a": 1}}) is None  # faithful default
    assert normalise_call({"f": {"a": 1}}, single_key=True) == ToolCall("f", {"a": 1})
    assert normalise_calls([{"f": {"a": 1}}], single_key=True) == [ToolCall("f", {"a": 1})]
    assert normalise_call({"arguments": {"a": 1}}, single_key=True) is None


def test_call_shape_failures():
    assert normalise_call({"name": "", "arguments": {}}) is None
    assert normalise_call({"name": "f", "arguments": "[1, 2]"}) is None
    assert normalise_call({"name": "f", "arguments": 3}) is None
    assert normalise_call([1]) is None
    assert normalise_call({"arguments": {"a": 1}}) is None
    assert normalise_call({"name": "f", "arguments": None}) == ToolCall("f", {})
    assert normalise_call({"name": "f", "arguments": ""}) == ToolCall("f", {})


def test_normalise_calls_lists_and_messages():
    assert normalise_calls([{"name": "f"}, "junk", 3, {"tool": "g", "parameters": {}}]) == [
        ToolCall("f", {}),
        ToolCall("g", {}),
    ]
    msg = {"role": "assistant", "tool_calls": [{"function": {"name": "f", "arguments": '{"x": "y"}'}}]}
    assert normalise_calls(msg) == [ToolCall("f", {"x": "y"})]
    assert normalise_calls(GOOD) == [ToolCall("get_weather", {"city": "Paris"})]
    assert normalise_calls("[f(a=1), g(b='x')]") == [ToolCall("f", {"a": 1}), ToolCall("g", {"b": "x"})]
    assert normalise_calls(None) == []


def test_python_calls():
    assert parse_python_calls("f(a=1, b='x')") == [ToolCall("f", {"a": 1, "b": "x"})]
    assert parse_python_calls('[f(a=1), g(b="x", c=[1, 2], d=-3.5, e=None)]') == [
        ToolCall("f", {"a": 1}),
        ToolCall("g", {"b": "x", "c": [1, 2], "d": -3.5, "e": None}),
    ]
    assert parse_python_calls("math.sqrt(x=4)") == [ToolCall("math.sqrt", {"x": 4})]
    assert parse_python_calls("g()") == [ToolCall("g", {})]
    # unsafe or unmappable input is refused, never evaluated
    assert parse_python_calls("f(__import__('os').system('true'))") is None
    assert parse_python_calls("f(a=__import__('os'))") is None
    assert parse_python_calls("f(1)") is None
    assert parse_python_calls("f(**x)") is None
    assert parse_python_calls("not a call") is None


# ------------------------------------------------------------------------------------ completions
def test_solver_output_faithful_and_unclosed():
    text = f"<think>r</think>\n<tool_call_answer>{GOOD}"
    sp = parse_solver_output(text)
    assert not sp.parsed and sp.answer_text is None and sp.reason == "missing_answer"
    sp = parse_solver_output(text, allow_unclosed=True)
    assert sp.parsed and sp.unclosed and sp.calls == [ToolCall("get_weather", {"city": "Paris"})]
    closed = parse_solver_output(f"<think>r</think><tool_call_answer>{GOOD}</tool_call_answer>")
    assert closed.parsed and not closed.unclosed and closed.think == "r"


def test_solver_output_unclosed_prefers_closed_block():
    text = f"<tool_call_answer>{GOOD}</tool_call_answer> then <tool_call_answer>[garbage"
    sp = parse_solver_output(text, allow_unclosed=True)
    assert sp.parsed and not sp.unclosed


def test_solver_output_variants():
    sp = parse_solver_output("<think>x</think><tool_call_answer>[]</tool_call_answer>")
    assert sp.parsed and sp.empty_answer and not sp.normalised and sp.reason == "ok"
    sp = parse_solver_output("<tool_call_answer>[1, 2]</tool_call_answer>")
    assert sp.parsed and not sp.normalised and sp.reason == "no_normalisable_call"
    sp = parse_solver_output("<tool_call_answer>[f(a=1)]</tool_call_answer>")
    assert not sp.parsed
    sp = parse_solver_output("<tool_call_answer>[f(a=1)]</tool_call_answer>", python_calls=True)
    assert sp.parsed and sp.calls == [ToolCall("f", {"a": 1})]
    assert parse_solver_output("<tool_call_answer> </tool_call_answer>").reason == "empty_answer"


def test_generator_output():
    text = (
        "<think>t</think><question>q?</question><available_tools>[]</available_tools>"
        "<tool_call_answer>[]</tool_call_answer>"
    )
    gp = parse_generator_output(text)
    assert gp.all_tags and gp.reasons == []
    gp = parse_generator_output("<question>q</question><think></think>")
    assert not gp.all_tags and "empty_think" in gp.reasons and "missing_available_tools" in gp.reasons


# ------------------------------------------------------------------------------------ adversarial
ADVERSARIAL = [
    "",
    "<think>",
    "</tool_call_answer>",
    "<tool_call_answer><tool_call_answer>[]</tool_call_answer></tool_call_answer>",
    "<think><think>a</think></think><tool_call_answer>[{'name': 'f'}]",
    "<tool_call_answer>" + "[" * 10_000 + "]" * 10_000 + "</tool_call_answer>",
    "<tool_call_answer>" + '{"a":' * 10_000 + "1" + "}" * 10_000 + "</tool_call_answer>",
    "<tool_call_answer>[" + "9" * 100_000 + "]</tool_call_answer>",
    "<tool_call_answer>[1e999999, -Infinity, NaN]</tool_call_answer>",
    '<tool_call_answer>[{"name": "\ud800", "arguments": {"\udfff": "\ud800"}}]</tool_call_answer>',
    "<tool_call_answer>" + "x" * 1_000_000 + "</tool_call_answer>",
    "<think>" + "a" * 1_000_000,
    "<tool_call_answer>(" * 5_000,
    "<tool_call_answer>f(a=" + "(" * 5_000 + "1" + ")" * 5_000 + ")</tool_call_answer>",
    "\x00\xff<question>\u200b</question>",
]


@pytest.mark.parametrize("text", ADVERSARIAL, ids=range(len(ADVERSARIAL)))
def test_adversarial_inputs_never_raise(text):
    for allow in (False, True):
        sp = parse_solver_output(text, allow_unclosed=allow, python_calls=allow)
        assert isinstance(sp, SolverParse) and isinstance(sp.reason, str)
    assert isinstance(parse_generator_output(text), GeneratorParse)
    inner = text.replace("<tool_call_answer>", "").replace("</tool_call_answer>", "")
    for fn in (parse_relaxed, parse_strict_json):
        assert isinstance(fn(inner), ParseResult)
    assert isinstance(normalise_calls(inner), list)
    assert parse_python_calls(inner) is None or isinstance(parse_python_calls(inner), list)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=20,
)

FAST = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@FAST
@given(st.text(max_size=400))
def test_property_random_text(text):
    sp = parse_solver_output(text, allow_unclosed=True, python_calls=True)
    assert isinstance(sp.calls, list) and all(isinstance(c, ToolCall) for c in sp.calls)
    parse_generator_output(text)
    parse_relaxed(text)
    parse_strict_json(text)
    normalise_calls(text)
    normalise_call(text)
    parse_python_calls(text)


@FAST
@given(json_values)
def test_property_json_values_roundtrip_and_normalise(value):
    text = json.dumps(value)
    r = parse_relaxed(text)
    assert r.ok
    calls = normalise_calls(value)
    assert all(isinstance(c.name, str) and c.name and isinstance(c.arguments, dict) for c in calls)


@FAST
@given(
    st.lists(
        st.sampled_from(
            [
                "<think>",
                "</think>",
                "<tool_call_answer>",
                "</tool_call_answer>",
                "[",
                "]",
                '{"name": "f"}',
                ",",
                "x",
                "<question>",
                "</question>",
            ]
        ),
        max_size=30,
    )
)
def test_property_tag_soup(parts):
    text = "".join(parts)
    sp = parse_solver_output(text, allow_unclosed=True)
    if sp.answer_text is not None:
        assert sp.answer_text == sp.answer_text.strip()
    parse_generator_output(text)


# --- `...` inside strings parses; only a placeholder `...` is refused (issue 16 review)
@pytest.mark.parametrize(
    "text",
    [
        '[{"name": "send_sms", "arguments": {"text": "Running late... sorry"}}]',
        "[{'name': 'send_sms', 'arguments': {'text': 'Wait... what?'}}]",  # literal_eval path
        '[{"name": "f", "arguments": {"a": True, "t": "so..."}}]',  # constant-replacement path
        '[{"name": "f", "arguments": {"t": "\\"quoted\\" then ..."}}]',  # escaped quotes
        json.dumps(FORECAST_TOOLS),
    ],
)
def test_ellipsis_inside_a_string_parses(text):
    r = parse_relaxed(text)
    assert r.ok, r.reason


_json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.text(alphabet=st.sampled_from("ab .…'\"\\,{}[]"), max_size=12),
    lambda ch: st.lists(ch, max_size=3) | st.dictionaries(st.text(max_size=4), ch, max_size=3),
    max_leaves=8,
)


@settings(max_examples=200, deadline=None)
@given(_json_values, st.booleans())
def test_any_json_value_parses_whatever_its_strings_hold(value, ascii_only):
    text = json.dumps(value, ensure_ascii=ascii_only)
    r = parse_relaxed(text)
    assert r.ok and r.value == value, (text, r.reason)


@pytest.mark.parametrize(
    "text",
    [
        '[{"name": "f", "arguments": {...}}]',
        "[...]",
        '[{"name": "f", "arguments": {}}, ...]',
        '{"name": "f", "arguments": {"a": ...}}',
        '[{"name": "f", "arguments": {"a": "x"}}] ...',
    ],
)
def test_placeholder_ellipsis_is_still_rejected(text):
    assert parse_relaxed(text).reason == "ellipsis"


@pytest.mark.parametrize(
    "text",
    ["f(a=1if 1 else 2)", "[f(a=0x1for)]", 'f(a="\\d")', "[1if 1 else 2]", '["\\d", 1_]', "f(a=09)"],
)
def test_python_literal_readers_leak_no_compiler_warning(text):
    """Python's tokenizer warns (SyntaxWarning "invalid decimal literal", DeprecationWarning "invalid escape
    sequence") on such model text; the readers swallow it where they parse, so nothing reaches stderr."""
    import warnings

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")  # would surface any warning the readers let through
        parse_python_calls(text)
        parse_relaxed(text)
        parse_solver_output(f"<tool_call_answer>{text}</tool_call_answer>")
    assert [str(w.message) for w in caught] == []
