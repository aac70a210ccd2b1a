"""Regression tests for the correctness bugs an outside review of the core found (issue 16), one group per bug.

Each test failed before its fix: ``...`` inside strings, decimal grounding, null gold values, evaluation exact
match, a stray closing answer tag, the judge score parser, and real questions the hardened gate rejected.
"""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from toolr0.core.completions import parse_solver_output
from toolr0.core.matching import eval_values_equal, exact_match, prf
from toolr0.core.parsing import extract_last_tag, parse_relaxed
from toolr0.core.question_gate import question_gate
from toolr0.core.rewards.generator import (
    format_reward,
    is_grounded,
    normalise_text,
    parse_judge_score,
    validity_reward,
    value_variants,
)
from toolr0.core.rewards.solver import solver_accuracy_reward, solver_format_reward
from toolr0.core.rewards.terms import generator_rewards, solver_total
from toolr0.core.schema import ToolCall as C
from toolr0.core.verify import verify_task
from toolr0.eval.scoring import score_completion

TOOLS = [
    {
        "name": "get_forecast",
        "description": "Weather forecast for a city: temperature, rain, wind...",
        "parameters": {
            "city": {"type": "string", "description": "City name, e.g. Paris..."},
            "days": {"type": "integer", "description": "Number of days"},
        },
        "required": ["city", "days"],
    }
]
QUESTION = "What will the weather be like in Lyon over the next 3 days? I am planning a hike."
CALLS = [{"name": "get_forecast", "arguments": {"city": "Lyon", "days": 3}}]


def gen_text(question=QUESTION, tools=TOOLS, calls=CALLS, think="A forecast task for a hiker."):
    return (
        f"<think>{think}</think>\n<question>{question}</question>\n"
        f"<available_tools>{json.dumps(tools)}</available_tools>\n"
        f"<tool_call_answer>{json.dumps(calls)}</tool_call_answer>"
    )


def solver_out(calls, think="I call the tool."):
    return f"<think>{think}</think>\n<tool_call_answer>{json.dumps(calls)}</tool_call_answer>"


# ------------------------------------------------------------------------- 1. `...` inside strings
@pytest.mark.parametrize(
    "text",
    [
        '[{"name": "send_sms", "arguments": {"text": "Running late... sorry"}}]',
        "[{'name': 'send_sms', 'arguments': {'text': 'Wait... what?'}}]",  # literal_eval path
        '[{"name": "f", "arguments": {"a": True, "t": "so..."}}]',  # constant-replacement path
        '[{"name": "f", "arguments": {"t": "\\"quoted\\" then ..."}}]',  # escaped quotes
        json.dumps(TOOLS),
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


def test_ellipsis_in_generator_text_keeps_format_validity_and_verification():
    text = gen_text()
    assert format_reward(text).value == pytest.approx(1.0)
    assert validity_reward(text).value == pytest.approx(1.0)
    assert verify_task(text).ok
    sms = [{"name": "get_forecast", "arguments": {"city": "Lyon...", "days": 3}}]
    assert generator_rewards(gen_text(calls=sms)).fmt == pytest.approx(1.0)


def test_solver_answer_with_ellipsis_in_a_value_scores_full():
    gold = [C("send_sms", {"to": "Anna", "text": "Running late... sorry"})]
    text = solver_out([gold[0].to_dict()])
    assert solver_format_reward(text).value == pytest.approx(1.0)
    assert solver_accuracy_reward(text, gold).value == pytest.approx(1.0)
    assert score_completion(text, gold).correct


def test_verify_rejects_placeholder_values_but_not_prose_with_an_ellipsis():
    tools = [
        {
            "name": "send_sms",
            "description": "Send a text message",
            "parameters": {
                "to": {"type": "string", "description": "Recipient"},
                "text": {"type": "string", "description": "Message"},
            },
            "required": ["to", "text"],
        }
    ]
    q = "Text Anna the message 'Running late... sorry' right away, she is waiting for me."
    good = [{"name": "send_sms", "arguments": {"to": "Anna", "text": "Running late... sorry"}}]
    assert verify_task(gen_text(q, tools, good)).ok
    for slot in ("...", "…", "Meeting about ..."):
        bad = [{"name": "send_sms", "arguments": {"to": "Anna", "text": slot}}]
        assert verify_task(gen_text(q, tools, bad)).reason == "placeholder_value", slot


# ------------------------------------------------------------------------------ 2. decimal grounding
@pytest.mark.parametrize(
    "value,question",
    [
        (12.50, "Please pay the water bill of $12.50 today."),
        ("12.50", "Please pay the water bill of $12.50 today."),
        (12.5, "Please pay the water bill of 12.5 dollars."),
        (1250.75, "Transfer 1,250.75 euros to my savings account."),
        (1250.75, "Transfer 1250.75 euros to my savings account."),
        ("1250.75", "Transfer 1,250.75 euros to my savings account."),
        (0.5, "Add 0.50 kg of flour."),
    ],
)
def test_decimal_values_are_grounded(value, question):
    assert is_grounded(value, normalise_text(question))


@pytest.mark.parametrize(
    "value,question",
    [
        (12.5, "Please pay the water bill of $12.05 today."),
        (12.5, "Please pay the water bill of $125 today."),
        (1250.75, "Transfer 1,250.7 euros."),
        (12.5, "Please pay the water bill of $12.500001 today."),
    ],
)
def test_decimal_grounding_stays_exact(value, question):
    assert not is_grounded(value, normalise_text(question))


def test_decimal_variants_leave_integers_alone():
    assert value_variants(5.0) == ["5 0", "5", "five"]
    assert value_variants(12.5) == ["12 5", "12 50"]


def test_money_task_earns_full_validity():
    tools = [
        {
            "name": "pay_bill",
            "description": "Pay a utility bill",
            "parameters": {
                "utility": {"type": "string", "description": "Which bill"},
                "amount": {"type": "number", "description": "Amount in dollars"},
            },
            "required": ["utility", "amount"],
        }
    ]
    q = "Please pay the water bill of $12.50 from my checking account today."
    calls = [{"name": "pay_bill", "arguments": {"utility": "water", "amount": 12.50}}]
    assert validity_reward(gen_text(q, tools, calls)).value == pytest.approx(1.0)


# ---------------------------------------------------------------------------------- 3. null gold values
def test_null_gold_value_loses_validity_and_fails_verification():
    calls = [{"name": "get_forecast", "arguments": {"city": None, "days": 3}}]
    text = gen_text(calls=calls)
    v = validity_reward(text)
    assert v.value < 1.0 and "args" in v.reason and "ground" in v.reason
    assert verify_task(text).reason == "null_value"
    optional = [
        {
            **TOOLS[0],
            "parameters": {**TOOLS[0]["parameters"], "unit": {"type": "string", "description": "C or F"}},
        }
    ]
    calls = [{"name": "get_forecast", "arguments": {"city": "Lyon", "days": 3, "unit": None}}]
    assert validity_reward(gen_text(tools=optional, calls=calls)).value < 1.0
    assert verify_task(gen_text(tools=optional, calls=calls)).reason == "null_value"


# ------------------------------------------------------------------------- 4. evaluation exact match
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


def test_junk_list_elements_make_the_prediction_wrong():
    gold = [C("get_weather", {"city": "Paris"})]
    text = solver_out([gold[0].to_dict(), 17, "junk"])
    v = score_completion(text, gold)
    assert not v.correct and v.reason == "malformed_call"
    assert "2 of 3" in v.detail
    assert not v.lenient_correct
    # a python-call element is a call: the lenient diagnostic reads it
    assert score_completion(solver_out([gold[0].to_dict()]), gold).correct


# --------------------------------------------------------------------- 5. stray second closing tag
def test_stray_closing_tag_after_a_correct_answer():
    gold = [C("get_weather", {"city": "Paris", "days": 3})]
    text = solver_out([gold[0].to_dict()]) + "</tool_call_answer>"
    assert parse_solver_output(text).parsed
    assert solver_total(text, gold) == pytest.approx(2.0)
    assert extract_last_tag("<a> X </a> tail </a>", "a") == "X"
    assert extract_last_tag("<a>first</a> <a>second</a></a>", "a") == "second"
    # a question mentioning the tag earlier still yields the real last block
    assert extract_last_tag("see <a> here. <a>real</a>", "a") == "real"


# ---------------------------------------------------------------------------- 6. judge score parser
@pytest.mark.parametrize(
    "reply,score",
    [
        ("One of the best: 5", 5),
        ("One of the best.", None),
        ("No one would ask this. Score: 2", 2),
        ("2-3", None),
        ("Score: 3 to 4", None),
        ("2 or 3", None),
        ("4", 4),
        ("4/5", 4),
        ("Score (1-5): 4", 4),
        ("four out of 5", 4),
        ("Four.", 4),
        ("5 - excellent question", 5),
    ],
)
def test_judge_score_parser(reply, score):
    assert parse_judge_score(reply) == score


# ------------------------------------------------------------------- 7. question-gate false positives
@pytest.mark.parametrize(
    "question",
    [
        "Translate 'I am sorry, but I cannot attend' into French",
        "Translate \"I'm sorry, but I can't help you today\" into German for my email.",
        "Send the message <urgent> to channel ops-alerts",
        "Can you make a tool call to fetch my calendar",
    ],
)
def test_real_questions_pass_the_gate(question):
    assert question_gate(question) == (True, "ok")


@pytest.mark.parametrize(
    "question,reason",
    [
        ("I'm sorry, but I can't assist with that request.", "refusal"),
        ("I'm sorry, but I can't translate 'hello' for you.", "refusal"),
        ("Send the message <message> to <channel> please", "question_placeholder"),
        ("Send the message <message_text> to channel ops-alerts", "question_placeholder"),
        ("Can you convert <amount> dollars to euros for me?", "question_placeholder"),
        ("Generate 1 educational recommendation for a retail_ecommerce tool call.", "echo"),
        ("Write a tool call for the weather domain.", "echo"),
    ],
)
def test_gate_still_rejects_garbage(question, reason):
    assert question_gate(question) == (False, reason)


def test_literal_angle_value_from_the_question_is_not_a_placeholder_value():
    tools = [
        {
            "name": "post_message",
            "description": "Post a message to a chat channel",
            "parameters": {
                "channel": {"type": "string", "description": "Channel name"},
                "message": {"type": "string", "description": "Message text"},
            },
            "required": ["channel", "message"],
        }
    ]
    q = "Send the message <urgent> to channel ops-alerts right now, the on-call team needs it."
    calls = [{"name": "post_message", "arguments": {"channel": "ops-alerts", "message": "<urgent>"}}]
    assert verify_task(gen_text(q, tools, calls)).ok
    bad = [{"name": "post_message", "arguments": {"channel": "ops-alerts", "message": "<text>"}}]
    assert verify_task(gen_text(q, tools, bad)).reason == "placeholder_value"


# ---------------------------------------------------------------------------------------- clean-up
def test_report_and_plots_do_not_import_each_other():
    import ast
    from pathlib import Path

    import toolr0.selfplay.plots as plots

    tree = ast.parse(Path(plots.__file__).read_text())
    imported = {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
    imported |= {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    assert "toolr0.selfplay.report" not in imported


@pytest.mark.parametrize(
    "question,ok",
    [
        ("Post 'Deploy done' and then the text '<b>' to channel ops, thanks a lot.", True),
        ("Please set the status to '<away>' on my profile until the end of the day.", True),
        ("Post the quoted word 'hello' and then <channel> details for the team.", False),
        ("Reply 'ok, thanks' to the email about <subject_line> from yesterday.", False),
    ],
)
def test_quoted_angle_text_is_literal_but_slots_after_a_quote_are_not(question, ok):
    assert question_gate(question)[0] is ok
