"""Tests for the Generator rewards (spec §5): gate, format, validity/grounding, band-pass difficulty, judge."""

from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from _forecast_task import gen_text
from toolr0.core.rewards import RewardConfig
from toolr0.core.rewards.generator import (
    curriculum_reward,
    difficulty_reward,
    format_reward,
    is_grounded,
    judge_score_from_attempts,
    normalise_text,
    parse_judge_score,
    semantic_reward,
    task_from_generator_text,
    validity_reward,
    value_variants,
)
from toolr0.core.rewards.terms import generator_rewards
from toolr0.core.schema import ToolCall
from toolr0.core.verify import verify_task

TOOLS = [
    {
        "name": "book_table",
        "description": "Book a restaurant table",
        "parameters": {
            "restaurant": {"type": "string", "description": "name"},
            "people": {"type": "integer", "description": "party size"},
            "date": {"type": "string", "description": "date"},
        },
        "required": ["restaurant", "people"],
    },
    {
        "name": "get_menu",
        "description": "Fetch a menu",
        "parameters": {"restaurant": {"type": "string", "description": "name"}},
    },
]
QUESTION = "Please book a table at Chez Marie for two people on 2026-03-14, and show me the Chez Marie menu."
CALLS = [
    {"name": "book_table", "arguments": {"restaurant": "Chez Marie", "people": 2, "date": "2026-03-14"}},
    {"name": "get_menu", "arguments": {"restaurant": "Chez Marie"}},
]


def completion(question=QUESTION, tools=TOOLS, calls=CALLS, think="I will design a booking task."):
    tools_text = tools if isinstance(tools, str) else json.dumps(tools)
    calls_text = calls if isinstance(calls, str) else json.dumps(calls)
    return (
        f"<think>{think}</think>\n<question>{question}</question>\n"
        f"<available_tools>{tools_text}</available_tools>\n<tool_call_answer>{calls_text}</tool_call_answer>"
    )


# ----------------------------------------------------------------------------------- normalisation
def test_normalise_text_rules():
    assert normalise_text("2026-03-14") == "2026 03 14"
    assert normalise_text("Ｃｈｅｚ  Ｍａｒｉｅ") == "chez marie"  # NFKC (full-width) + casefold
    assert normalise_text("Straße") == "strasse"  # casefold, not lower
    assert normalise_text("a\u00a0b") == "a b"  # NBSP
    assert normalise_text("  Hello,   World!!  ") == "hello world"
    assert normalise_text("café") == "caf"  # non-[a-z0-9] runs become a space


def test_value_variants():
    assert value_variants(2) == ["2", "two"]
    assert value_variants("two") == ["two", "2"]
    assert value_variants(5.0) == ["5 0", "5", "five"]
    assert value_variants(1500) == ["1500", "1 500"]  # thousands form f"{i:,}" normalised
    assert value_variants(40) == ["40", "forty"]
    assert "forty" not in value_variants(41)
    assert value_variants(19)[-1] == "nineteen"
    assert value_variants(True) == [] and value_variants(None) == []
    assert value_variants("!!!") == []


@pytest.mark.parametrize(
    "value,question,expected",
    [
        (2, "for two people", True),
        ("two", "for 2 people", True),
        (2, "for 22 people", False),  # word boundary
        ("2026-03-14", "on 2026-03-14", True),
        (1500, "transfer 1,500 dollars", True),
        (1500, "transfer 1500 dollars", True),
        ("1,500", "transfer 1,500 dollars", True),
        (1500.0, "transfer 1,500 dollars", True),  # int-valued float
        (1500.5, "transfer 1,500 dollars", False),
        ("Paris", "weather in paris?", True),
        ("Par", "weather in paris?", False),
        (30, "thirty minutes", True),
        (35, "thirty five minutes", False),  # only 0-19 and tens
        ("!!!", "anything at all", False),  # deliberate: empty variant never grounds
    ],
)
def test_grounding(value, question, expected):
    assert is_grounded(value, normalise_text(question)) is expected


# ----------------------------------------------------------------------------------- gate/format
def test_perfect_task_scores():
    b = generator_rewards(completion(), pass_rate=0.5, judge_score=5)
    assert (b.gate, b.fmt, b.valid, b.diff, b.sem, b.curr) == (1.0, 1.0, 1.0, 1.0, 1.0, 1.0)
    assert b.total == pytest.approx(3.0)


def test_gate_zeroes_everything():
    for q in ("short", "[The generated user question here]", "Follow the CONTROL SPEC exactly please"):
        b = generator_rewards(completion(question=q), pass_rate=0.5, judge_score=5)
        assert b.gate == 0 and b.total == 0 and b.curr == 0
    text = completion().replace("<question>", "").replace("</question>", "")
    b = generator_rewards(text, pass_rate=0.5, judge_score=5)
    assert b.total == 0 and b.reasons["gate"] == "missing_question"


def test_format_partial_credit():
    third = 1 / 3
    assert format_reward(completion()).value == pytest.approx(1.0)
    assert format_reward(completion(think="")).value == pytest.approx(2 * third)
    assert format_reward(completion(tools="not json")).value == pytest.approx(2 * third)
    assert format_reward(completion(tools="[]")).value == pytest.approx(2 * third)
    assert format_reward(completion(tools=[{"name": "x", "parameters": "p"}])).value == pytest.approx(
        2 * third
    )
    assert format_reward(completion(calls="[{...}]")).value == pytest.approx(2 * third)
    # deliberate (spec §11): every gold element must normalise, not only the first
    assert format_reward(completion(calls=[CALLS[0], "junk"])).value == pytest.approx(2 * third)
    text = f"<think>t</think><question>{QUESTION}</question>"
    assert format_reward(text).value == pytest.approx(0.0)


# ------------------------------------------------------------------------------------------ validity
def test_validity_checks_every_call():
    assert validity_reward(completion()).value == pytest.approx(1.0)
    bad_second = [CALLS[0], {"name": "get_menu", "arguments": {"restaurant": "Le Bistro"}}]
    v = validity_reward(completion(calls=bad_second))
    assert v.value == pytest.approx(0.8) and "ground" in v.reason
    # the reference code's first-call behaviour, for comparison
    assert (
        validity_reward(completion(calls=bad_second), RewardConfig(validity_mode="first_call")).value == 1.0
    )
    # fraction mode: 1 of 2 calls grounded
    frac = validity_reward(completion(calls=bad_second), RewardConfig(validity_mode="fraction"))
    assert frac.value == pytest.approx(0.4 + 0.4 + 0.2 * 0.5)


def test_validity_exists_and_required_from_every_place():
    unknown = [{"name": "cancel_table", "arguments": {"restaurant": "Chez Marie"}}]
    assert validity_reward(completion(calls=unknown)).value == pytest.approx(0.2)  # only grounding holds
    missing_people = [{"name": "book_table", "arguments": {"restaurant": "Chez Marie"}}]
    assert validity_reward(completion(calls=missing_people)).value == pytest.approx(0.6)
    # required in parameters.required (JSON-Schema form) and as a per-parameter flag (Hammer form)
    schema_tools = [
        {
            "name": "book_table",
            "description": "Book",
            "parameters": {
                "type": "object",
                "properties": {"restaurant": {"type": "string"}, "people": {"type": "integer"}},
                "required": ["people"],
            },
        }
    ]
    assert validity_reward(completion(tools=schema_tools, calls=missing_people)).value == pytest.approx(0.6)
    hammer_tools = [
        {
            "name": "book_table",
            "description": "Book",
            "parameters": {
                "restaurant": {"type": "str", "description": "n"},
                "people": {"type": "int", "description": "n", "required": True},
            },
        }
    ]
    assert validity_reward(completion(tools=hammer_tools, calls=missing_people)).value == pytest.approx(0.6)


def test_validity_grounding_details():
    ok = [{"name": "book_table", "arguments": {"restaurant": "chez marie", "people": "two", "flag": True}}]
    assert validity_reward(completion(calls=ok)).value == pytest.approx(1.0)  # bool skipped; "two" ~ 2
    empty_args = [{"name": "get_menu", "arguments": {}}]
    assert validity_reward(completion(calls=empty_args)).value == pytest.approx(1.0)
    assert validity_reward(completion(calls="[]")).value == 0.0
    assert validity_reward(completion(tools="nope")).value == 0.0


# ---------------------------------------------------------------------------------------- difficulty
def test_difficulty_table_k8():
    expected = [0, 0.581, 1, 1, 1, 1, 1, 0.581, 0.114]
    got = [round(difficulty_reward(i / 8).value, 3) for i in range(9)]
    assert got == expected


def test_difficulty_hard_edges_and_bad_input():
    hard = RewardConfig(band_mode="hard")
    assert [difficulty_reward(i / 8, hard).value for i in range(9)] == [0, 0, 1, 1, 1, 1, 1, 0, 0]
    for bad in (None, float("nan"), float("inf"), "0.5", True):
        assert difficulty_reward(bad).value == 0.0
    assert difficulty_reward(-3).value == 0.0 and difficulty_reward(7).value == pytest.approx(0.114, abs=1e-3)
    # p̂ < 1/K means no sample succeeded: any K's smallest nonzero p̂ counts as solved (K = 4: in band)
    assert difficulty_reward(0.25).value == 1.0 and difficulty_reward(1 / 20).value > 0
    wide = RewardConfig(sigma=0.5)
    assert difficulty_reward(1.0, wide).value > difficulty_reward(1.0).value


# ---------------------------------------------------------------------------------------- judge
@pytest.mark.parametrize(
    "text,score",
    [
        ("4", 4),
        (" 5\n", 5),
        ("3 - the question is vague", 3),
        ("Score: 4/5", 4),
        ("I would give it four.", 4),
        ("**2**", 2),
        ("Score (1-5): 4", 4),
        ("10", None),
        ("no idea", None),
        ("", None),
        ("0", None),
        (None, None),
    ],
)
def test_parse_judge_score(text, score):
    assert parse_judge_score(text) == score


def test_judge_fallback_and_semantic():
    assert judge_score_from_attempts(["??", "5"]) == (5, False)
    assert judge_score_from_attempts(["??", "??", "??", "5"]) == (3, True)  # only 3 attempts count
    assert [semantic_reward(s).value for s in (1, 2, 3, 4, 5)] == [0, 0.25, 0.5, 0.75, 1.0]
    assert semantic_reward(None).value == 0.0 and semantic_reward(7).value == 0.0


def test_curriculum_weights_and_ablation():
    assert curriculum_reward(True, 0.5, 3).value == pytest.approx(0.5 + 0.25)
    assert curriculum_reward(False, 0.5, 5).value == 0.0
    no_diff = RewardConfig(difficulty_weight=0.0)
    assert curriculum_reward(True, 0.5, 5, no_diff).value == pytest.approx(0.5)
    b = generator_rewards(completion(), pass_rate=0.0, judge_score=1)
    assert b.curr == 0.0 and b.diff == 0.0 and b.total == pytest.approx(2.0)
    b = generator_rewards(completion())  # not measured: no curriculum credit
    assert b.curr == 0.0 and b.total == pytest.approx(2.0)


def test_task_from_generator_text_and_spec_record():
    task = task_from_generator_text(completion())
    assert task is not None and [t.name for t in task.tools] == ["book_table", "get_menu"]
    assert task.calls[0] == ToolCall("book_table", CALLS[0]["arguments"])
    assert task.tools[0].required == ["restaurant", "people"]
    assert task_from_generator_text(completion(calls=[CALLS[0], 3])) is None
    assert task_from_generator_text("garbage") is None

    class Spec:
        menu_size, num_calls = 2, 1

    assert generator_rewards(completion(), spec=Spec()).reasons["spec"] == "menu=ok,calls=off"


# ------------------------------------------------------------------------------------ adversarial
ADVERSARIAL = [
    "",
    "<question>",
    completion(calls="[" * 10_000 + "]" * 10_000),
    completion(calls='[{"name": "book_table", "arguments": {"people": ' + "9" * 5000 + "}}]"),
    completion(calls='[{"name": "book_table", "arguments": {"people": NaN, "restaurant": Infinity}}]'),
    completion(calls=[{"name": "book_table", "arguments": {"restaurant": "\ud800", "people": 1e308}}]),
    completion(question="\ud800" * 20),
    completion(question="x" * 1_000_000),
    completion(tools=[{"name": "t" * 100_000, "parameters": {}}]),
    "<think><think></think><question><question>ab</question></question>" * 3,
    completion() + "<tool_call_answer>",
    completion(calls='[{"name": "book_table", "arguments": {"people": 1e999}}]'),
]


@pytest.mark.parametrize("text", ADVERSARIAL, ids=range(len(ADVERSARIAL)))
def test_adversarial_never_raise_and_in_range(text):
    b = generator_rewards(text, pass_rate=0.5, judge_score=4)
    for v in (b.fmt, b.valid, b.diff, b.sem, b.curr):
        assert 0.0 <= v <= 1.0
    assert 0.0 <= b.total <= 3.0
    task_from_generator_text(text)


FAST = settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@FAST
@given(
    st.text(max_size=300),
    st.one_of(st.none(), st.floats(allow_nan=True, allow_infinity=True)),
    st.one_of(st.none(), st.integers(-10, 10)),
)
def test_property_random_text(text, p, s):
    b = generator_rewards(text, pass_rate=p, judge_score=s)
    assert all(0.0 <= v <= 1.0 for v in (b.gate, b.fmt, b.valid, b.diff, b.sem, b.curr))
    assert 0.0 <= b.total <= 3.0


@FAST
@given(
    st.text(max_size=80),
    st.lists(
        st.fixed_dictionaries(
            {
                "name": st.sampled_from(["book_table", "get_menu", "x", ""]),
                "arguments": st.dictionaries(
                    st.sampled_from(["restaurant", "people", "date"]),
                    st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=10)),
                    max_size=3,
                ),
            }
        ),
        max_size=3,
    ),
    st.floats(min_value=0, max_value=1),
)
def test_property_structured(question, calls, p):
    b = generator_rewards(completion(question=question, calls=calls), pass_rate=p, judge_score=3)
    assert all(0.0 <= v <= 1.0 for v in (b.fmt, b.valid, b.diff, b.sem, b.curr))
    assert b.fmt in {0.0} or b.gate == 1.0


@FAST
@given(st.text(max_size=30))
def test_property_judge_parse(text):
    s = parse_judge_score(text)
    assert s is None or 1 <= s <= 5


# ------------------------------------------------------------------------------------------ no-call tasks
NO_CALL_Q = "Please cancel my standing Friday reservation at Chez Marie and refund the deposit."
NO_CALL = {"domain": "food_ordering", "context_type": "single_turn", "menu_size": 2, "num_calls": 0}
ONE_CALL = {**NO_CALL, "num_calls": 1}


def test_no_call_task_scores_like_a_perfect_task_when_the_spec_asks_for_one():
    text = completion(question=NO_CALL_Q, calls=[])
    b = generator_rewards(text, pass_rate=0.5, judge_score=5, spec=NO_CALL)
    assert (b.gate, b.fmt, b.valid, b.diff, b.curr) == (1.0, 1.0, 1.0, 1.0, 1.0)
    assert b.reasons["valid"] == "no_call:ok" and b.reasons["spec"] == "menu=ok,calls=ok"
    task = task_from_generator_text(text, "food_ordering", NO_CALL)
    assert task is not None and task.calls == [] and task.domain == "food_ordering"
    assert len(task.tools) == 2


def test_empty_gold_without_a_no_call_spec_scores_as_before():
    """No reward for dodging the calls a 1-call spec asks for (and none when the spec is unknown)."""
    text = completion(question=NO_CALL_Q, calls=[])
    for spec in (None, ONE_CALL):
        assert format_reward(text, spec=spec).value == pytest.approx(2 / 3)
        assert validity_reward(text, spec=spec).value == 0.0
        assert task_from_generator_text(text, spec=spec) is None


def test_no_call_validity_indicators():
    generic = [dict(TOOLS[0], name="api"), TOOLS[1]]
    v = validity_reward(completion(question=NO_CALL_Q, tools=generic, calls=[]), spec=NO_CALL)
    assert v.value == pytest.approx(0.6) and v.reason == "no_call:failed:menu(tool_name_generic)"
    named = "Please use get_menu to cancel my Friday reservation at Chez Marie and refund it."
    v = validity_reward(completion(question=named, calls=[]), spec=NO_CALL)
    assert v.value == pytest.approx(0.8) and "question(no_call_names_tool)" in v.reason
    v = validity_reward(completion(question=named, tools=generic, calls=[]), spec=NO_CALL)
    assert v.value == pytest.approx(0.4)
    # the gate still zeroes everything
    b = generator_rewards(completion(question="[The generated user question here]", calls=[]), spec=NO_CALL)
    assert b.total == 0.0
    # a no-call spec answered with calls is scored as a call task (spec n is not enforced)
    assert validity_reward(completion(), spec=NO_CALL).value == pytest.approx(1.0)
    assert generator_rewards(completion(), spec=NO_CALL).reasons["spec"] == "menu=ok,calls=off"


@FAST
@given(
    st.text(max_size=80),
    st.sampled_from(["[]", " [ ] ", "[{}]", "{}", "null", "[[]]", '[{"name": "get_menu", "arguments": {}}]']),
    st.one_of(st.none(), st.floats(min_value=0, max_value=1)),
    st.sampled_from([NO_CALL, ONE_CALL, None]),
)
def test_property_no_call(question, gold, p, spec):
    text = completion(question=question, calls=gold)
    b = generator_rewards(text, pass_rate=p, judge_score=3, spec=spec)
    assert all(0.0 <= v <= 1.0 for v in (b.fmt, b.valid, b.diff, b.sem, b.curr))
    no_call = spec is NO_CALL and json.loads(gold) == []
    assert b.reasons["valid"].startswith("no_call:") == (no_call and b.gate == 1.0)
    task = task_from_generator_text(text, spec=spec)
    assert task is None or (task.calls == []) == no_call


# --- issue 16 review: `...` in values, decimal grounding, the judge score parser
def test_ellipsis_in_generator_text_keeps_format_validity_and_verification():
    text = gen_text()
    assert format_reward(text).value == pytest.approx(1.0)
    assert validity_reward(text).value == pytest.approx(1.0)
    assert verify_task(text).ok
    sms = [{"name": "get_forecast", "arguments": {"city": "Lyon...", "days": 3}}]
    assert generator_rewards(gen_text(calls=sms)).fmt == pytest.approx(1.0)


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
