"""Structural verification, the hardened question gate and dedup (spec §5.1, §6.2, §6.3; issue 8 item 2).

Bad generations below are modelled on the default model's measured failure modes
(../shared/notes/default-model.md): markdown instead of tags, echoed template sentences, `<placeholder>` values,
list-valued / nested parameters, refusals, schema copied into the arguments.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from _forecast_task import FORECAST_TOOLS, gen_text
from toolr0.core.dedup import dedup, dedup_fingerprint, task_quality
from toolr0.core.question_gate import question_gate
from toolr0.core.rewards.generator import validity_reward
from toolr0.core.schema import Task, Tool, ToolCall
from toolr0.core.spec import TaskSpec
from toolr0.core.verify import is_fragment_value, verify_task

QUESTION = "Can you convert 250 US dollars to euros for my trip to Paris next week?"
TOOLS = [
    {
        "name": "convert_currency",
        "description": "Convert an amount of money between two currencies",
        "parameters": {
            "amount": {"type": "number", "description": "Amount to convert"},
            "from_currency": {"type": "string", "description": "Source currency"},
            "to_currency": {"type": "string", "description": "Target currency"},
        },
        "required": ["amount", "from_currency", "to_currency"],
    },
    {
        "name": "get_stock_price",
        "description": "Latest price of a listed stock",
        "parameters": {"symbol": {"type": "string", "description": "Ticker symbol"}},
    },
]
CALLS = [
    {
        "name": "convert_currency",
        "arguments": {"amount": 250, "from_currency": "US dollars", "to_currency": "euros"},
    }
]


def gen(question=QUESTION, tools=TOOLS, calls=CALLS, think="The user needs a conversion.") -> str:
    """A Generator completion; tools/calls given as objects are dumped as JSON, strings are used verbatim."""
    t = tools if isinstance(tools, str) or tools is None else json.dumps(tools)
    c = calls if isinstance(calls, str) or calls is None else json.dumps(calls)
    parts = [f"<think>{think}</think>"] if think is not None else []
    if question is not None:
        parts.append(f"<question>{question}</question>")
    if t is not None:
        parts.append(f"<available_tools>{t}</available_tools>")
    if c is not None:
        parts.append(f"<tool_call_answer>{c}</tool_call_answer>")
    return "\n".join(parts)


def tool_with(**changes):
    tool = json.loads(json.dumps(TOOLS[0]))
    tool.update(changes)
    return [tool, TOOLS[1]]


def call_args(args, name="convert_currency"):
    return [{"name": name, "arguments": args}]


def test_good_task_passes_and_is_normalised():
    v = verify_task(gen(), spec=TaskSpec("finance", "single_turn", 2, 1))
    assert v.ok and v.reason == "ok"
    assert v.task.question == QUESTION and v.task.domain == "finance"
    assert v.task.tools[0].required == ["amount", "from_currency", "to_currency"]
    assert v.task.tools[0].to_json_schema()["parameters"]["type"] == "object"
    assert v.task.calls == [ToolCall("convert_currency", CALLS[0]["arguments"])]
    assert v.details["menu_size_ok"] and v.details["num_calls_ok"]


def test_spec_compliance_recorded_not_enforced():
    v = verify_task(gen(), spec=TaskSpec("finance", "single_turn", 5, 2))
    assert v.ok
    assert v.details["menu_size_ok"] is False and v.details["num_calls_ok"] is False


def test_required_from_all_three_places_is_enforced():
    # JSON-Schema form with parameters.required, plus a Hammer-style per-parameter flag.
    tools = [
        {
            "name": "book_table",
            "description": "Book a restaurant table",
            "parameters": {
                "type": "object",
                "properties": {
                    "restaurant": {"type": "string", "description": "Restaurant"},
                    "guests": {"type": "integer", "description": "Guests", "required": True},
                },
                "required": ["restaurant"],
            },
        }
    ]
    q = "Please book a table at Luigi's Trattoria tonight for four of us, guests 4."
    assert verify_task(
        gen(q, tools, [{"name": "book_table", "arguments": {"restaurant": "Luigi's Trattoria"}}])
    ).reason == ("call_missing_required")
    ok = verify_task(
        gen(q, tools, [{"name": "book_table", "arguments": {"restaurant": "Luigi's Trattoria", "guests": 4}}])
    )
    assert ok.ok and set(ok.task.tools[0].required) == {"restaurant", "guests"}


# One realistic bad generation per reason code, in the order of spec §6.2.
BAD = {
    "empty": "   \n  ",
    "cjk": gen(question="请帮我把250美元换成欧元，我下周去巴黎旅行。"),
    "prompt_echo": "CONTROL SPEC (MUST FOLLOW EXACTLY)\n- Domain: finance\n" + gen(),
    "missing_tag:question": "### Task\n**Question:** Convert 250 US dollars to euros for my Paris trip.\n"
    "**Tools:** convert_currency(amount, from_currency, to_currency)",
    "missing_tag:available_tools": gen(tools=None),
    "missing_tag:tool_call_answer": gen(calls=None),
    "refusal": "I'm sorry, but I can't assist with that request.",
    "question_short": gen(question="Convert"),
    "placeholder_question": gen(question="[The generated user question here]"),
    "echo": gen(
        question="Write a natural user question (no bullet points or meta-instructions) about finance."
    ),
    "question_placeholder": gen(
        question="Can you convert <amount> from <from_currency> to <to_currency> for me?"
    ),
    "question_ellipsis": gen(
        question="# Conversation\nUser: ...\nAgent: ...\nUser: convert 250 US dollars to euros"
    ),
    "question_markdown": gen(
        question="### User Question\nCan you convert 250 US dollars to euros for my trip?"
    ),
    "tools_not_strict_json": gen(tools=json.dumps(TOOLS).replace('"name"', "'name'")),
    "tools_not_list": gen(tools=TOOLS[0]),
    "tools_empty": gen(tools=[]),
    "tool_name_generic": gen(tools=tool_with(name="tool")),
    "tool_names_duplicate": gen(tools=[TOOLS[0], TOOLS[0]]),
    "tool_description_short": gen(tools=tool_with(description="conv")),
    "parameters_empty": gen(tools=tool_with(parameters={})),
    "param_type_invalid:array": gen(
        tools=tool_with(
            parameters={**TOOLS[0]["parameters"], "amount": {"type": "array", "description": "amounts"}}
        )
    ),
    "param_type_invalid:list[str]": gen(
        tools=tool_with(
            parameters={**TOOLS[0]["parameters"], "amount": {"type": "List[str]", "description": "x"}}
        )
    ),
    "param_type_invalid:<missing>": gen(
        tools=tool_with(parameters={**TOOLS[0]["parameters"], "amount": {"description": "no type"}})
    ),
    "required_not_list": gen(tools=tool_with(required="amount")),
    # hardened departure: required may only name the tool's own parameters
    "required_unknown_param": gen(tools=tool_with(required=["amount", "from_currency", "currency"])),
    "calls_not_strict_json": gen(calls="[{'name': 'convert_currency', 'arguments': {'amount': 250}}]"),
    "calls_not_list": gen(calls=CALLS[0]),
    "calls_empty": gen(calls=[]),
    "call_malformed": gen(calls=["convert_currency(amount=250)"]),
    "call_unknown_tool": gen(calls=[{**CALLS[0], "name": "currency_converter"}]),
    "placeholder_value": gen(
        calls=call_args({"amount": 250, "from_currency": "<from_currency>", "to_currency": "euros"})
    ),
    "call_args_not_flat": gen(
        calls=call_args({"amount": [250, 300], "from_currency": "US dollars", "to_currency": "euros"})
    ),
    "call_args_empty": gen(calls=call_args({})),
    "call_missing_required": gen(calls=call_args({"amount": 250, "from_currency": "US dollars"})),
    "trivial_question_short": gen(
        question="Convert 250 USD to EUR.",
        calls=call_args({"amount": 250, "from_currency": "USD", "to_currency": "EUR"}),
    ),
    "trivial_banned_phrase": gen(
        question="Explain how 250 US dollars convert into euros for my trip to Paris."
    ),
    "trivial_single_lookup": gen(
        question="What is the latest stock price of the company with ticker AAPL today?",
        calls=[{"name": "get_stock_price", "arguments": {"symbol": "AAPL"}}],
    ),
    # hardened: a number the gold does not hold (the Solver passes it as an argument the tool lacks)
    "question_extra_number": gen(
        question="Can you convert 250 US dollars to euros at a 2 percent fee for Paris?"
    ),
    # hardened: more questions than the gold calls answer
    "question_asks_more": gen(
        question="Can you convert 250 US dollars to euros? Is that a good rate? Should I wait until spring?"
    ),
}


@pytest.mark.parametrize("reason", sorted(BAD))
def test_every_reason_code(reason):
    v = verify_task(BAD[reason])
    assert not v.ok and v.task is None
    assert v.reason == reason


@pytest.mark.parametrize(
    "args",
    [
        {
            "amount": 250,
            "from_currency": {"type": "string", "description": "Source currency"},
            "to_currency": "euros",
        },
        {"amount": 250, "from_currency": "...", "to_currency": "euros"},
        {"amount": 250, "from_currency": "string", "to_currency": "euros"},
        {"amount": 250, "from_currency": "US dollars", "to_currency": "<currency code>"},
        {"amount": 250, "from_currency": "from_currency", "to_currency": "euros"},
        {"amount": 250, "from_currency": "US dollars", "to_currency": " Amount"},
    ],
    ids=["schema-as-arguments", "ellipsis", "type-name-as-value", "angle", "own-name", "other-param-name"],
)
def test_placeholder_values(args):
    assert verify_task(gen(calls=call_args(args))).reason == "placeholder_value"


@pytest.mark.parametrize("value", ["amount", "for"], ids=["parameter-name", "function-word"])
def test_a_value_the_enum_lists_is_a_value(value):
    """Neither a parameter's name nor a function word is a placeholder or a fragment when the enum lists it."""
    params = TOOLS[0]["parameters"]
    enum_tool = tool_with(
        parameters={**params, "to_currency": {"type": "string", "description": "x", "enum": [value, "euros"]}}
    )
    args = {"amount": 250, "from_currency": "US dollars", "to_currency": value}
    assert verify_task(gen(tools=enum_tool, calls=call_args(args))).ok


@pytest.mark.parametrize(
    "value", ["for", "Please", "Save time and money with your", "build a real estate website with", "the"]
)
def test_fragment_values_are_rejected(value):
    args = {"amount": 250, "from_currency": "US dollars", "to_currency": value}
    assert verify_task(gen(calls=call_args(args))).reason == "fragment_value"


@pytest.mark.parametrize(
    "value",
    [
        "euros",
        "A",
        "Portland, OR",
        "10:00 AM",
        "on",
        "any",
        "created_at",
        "Tell me my balance, please",
        "to Paris",
    ],
)
def test_codes_states_and_whole_phrases_are_not_fragments(value):
    assert not is_fragment_value(value)
    args = {"amount": 250, "from_currency": "US dollars", "to_currency": value}
    assert verify_task(gen(calls=call_args(args))).reason != "fragment_value"


@given(st.one_of(st.text(max_size=40), st.integers(), st.floats(), st.booleans(), st.none()))
def test_fragment_check_never_raises(value):
    assert is_fragment_value(value) in (True, False)


def test_fragment_rule_spares_real_gold_values():
    """Measured false-positive rate of the rule on real tool calls: 1 of the Hammer data's 1,851 string gold
    values (a Seal-Tools ``text`` of "to")."""
    from toolr0.errors import ToolR0Error
    from toolr0.eval import registry
    from toolr0.eval.runner import expand_benchmarks

    try:
        items = [it for b in expand_benchmarks(["hammer"])[0] for it in registry.get(b).load()]
    except ToolR0Error:
        pytest.skip("Hammer benchmark files (../shared/benchmarks) not present")
    values = [
        x
        for it in items
        for c in it.gold
        for v in c.arguments.values()
        for x in (v if isinstance(v, list) else [v])
        if isinstance(x, str)
    ]
    assert len(values) == 1851 and sum(map(is_fragment_value, values)) == 1


def test_markdown_instead_of_tags_is_flagged_in_details():
    v = verify_task(BAD["missing_tag:question"])
    assert v.details == {"markdown": True}
    assert verify_task("Sure! Here is a task about finance.").details == {"markdown": False}


def test_refusal_inside_question_and_echo_of_compact_toy():
    assert verify_task(
        gen(question="As an AI language model, I cannot generate a task for that domain.")
    ).reason == ("refusal")
    toy = "Please paint the north fence of my garden sky blue with 3 coats."
    assert question_gate(toy) == (False, "echo")
    assert (
        verify_task(
            gen(question="I see <tool_call_answer> as the tool call answer block, convert 250 USD.")
        ).reason
        == "echo"
    )


def test_think_may_restate_rules_without_prompt_echo():
    think = "Every argument value must be written in the question exactly as it appears in the call, so I add 250."
    assert verify_task(gen(think=think)).ok


@pytest.mark.parametrize(
    "question",
    [
        "I cannot log in to my banking app; please reset the password for the user anna_k92 now.",
        "# Conversation\nUser: I need a taxi tomorrow.\nAgent: Where to?\nUser: To 5th Avenue at 7 pm, for 2 people.",
        "Is 3 < 5 true? Also, convert 250 US dollars to euros for my Paris trip.",
        "Please check whether the API key sk-1234 for the system account is still valid.",
    ],
)
def test_gate_accepts_ordinary_questions(question):
    assert question_gate(question) == (True, "ok")


def test_question_gate_spec_patterns():
    for q in (
        "Follow the CONTROL SPEC for finance",
        "[the generated user question about weather]",
        "rules to satisfy: 1",
    ):
        assert question_gate(q) == (False, "placeholder_question")
    assert question_gate("  hi  ") == (False, "question_short")
    assert question_gate(None) == (False, "missing_question")


def test_last_occurrence_of_tags_is_used():
    text = "<question>draft question that is not good</question>\n" + gen()
    assert verify_task(text).ok


# ------------------------------------------------------------------------------------------------- dedup
def _task(q, tools=("convert_currency",), calls=("convert_currency",), args=("amount",)):
    return Task(
        question=q,
        tools=[Tool(n, "desc ok", {"amount": {"type": "number"}}, []) for n in tools],
        calls=[ToolCall(n, {a: 1 for a in args}) for n in calls],
    )


def test_fingerprint_normalises_digits_case_and_whitespace():
    a = _task("Convert 250 USD   to EUR")
    b = _task("convert 999 usd to eur")
    c = _task("convert 999 usd to gbp")
    assert dedup_fingerprint(a) == dedup_fingerprint(b) != dedup_fingerprint(c)
    assert dedup_fingerprint(a) != dedup_fingerprint(_task("Convert 250 USD to EUR", args=("amount", "to")))
    assert dedup_fingerprint(a) == dedup_fingerprint(a.to_dict())  # dict form gives the same fingerprint
    assert len(dedup_fingerprint(a)) == 40


def test_task_quality_formula():
    t = _task("x" * 110, tools=("a1", "b1"), calls=("a1",))
    assert task_quality(t) == pytest.approx(0.5 + 1 / 3 + 0.5)
    assert (
        task_quality(_task("dummy" + "x" * 300, tools=("a1", "b1", "c1", "d1"), calls=("a1", "b1", "c1")))
        == 2.0
    )
    assert task_quality(_task("lorem ipsum")) == 0.0


def test_dedup_keeps_best_per_fingerprint_stable_on_ties():
    short = _task("convert 1 usd to eur")
    other = _task("a different question entirely")
    longer = Task("convert 2 usd to eur", short.tools + [Tool("extra_tool", "d", {}, [])], short.calls)
    tie = _task("Convert 3 USD to EUR")
    kept, dropped = dedup([short, other, longer, tie])
    # `longer` has another tool, so another fingerprint; `tie` duplicates `short` with equal quality: first wins.
    assert kept == [short, other, longer] and dropped == [3]
    # Same fingerprint (whitespace collapses) but a longer raw question: higher quality, so it replaces `short`.
    spaced = _task("convert 4 usd" + " " * 200 + "to eur")
    assert dedup_fingerprint(spaced) == dedup_fingerprint(short) and task_quality(spaced) > task_quality(
        short
    )
    kept, dropped = dedup([short, other, spaced])
    assert kept == [other, spaced] and dropped == [0]
    assert dedup([]) == ([], [])


# --------------------------------------------------------------------------------------- never raises
garbage = st.one_of(
    st.text(max_size=300),
    st.sampled_from(
        [
            "<question>" * 50,
            "<question><question>x</question></question>",
            gen()[: len(gen()) // 2],
            gen(calls="[" * 5000 + "]" * 5000),
            gen(calls='[{"name": "convert_currency", "arguments": {"amount": 1e999999}}]'),
            gen(calls='[{"name": "convert_currency", "arguments": {"amount": NaN}}]'),
            gen(tools='[{"name": "x' + "\ud800" + '"}]'),
            gen(question="\ud800\udfff" * 20),
            "x" * 1_000_000,
            gen(question="q" * 1_000_000),
        ]
    ),
    st.builds(gen, st.text(max_size=80), st.text(max_size=80), st.text(max_size=80)),
    st.builds(
        gen, st.just(QUESTION), st.just(TOOLS), st.lists(st.dictionaries(st.text(max_size=5), st.integers()))
    ),
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(garbage)
def test_verify_and_gate_never_raise(text):
    v = verify_task(text)
    assert isinstance(v.ok, bool) and isinstance(v.reason, str) and v.reason
    assert (v.task is not None) == v.ok
    ok, reason = question_gate(text)
    assert isinstance(ok, bool) and isinstance(reason, str)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=10),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=5), children, max_size=4)
    ),
    max_leaves=20,
)


@settings(max_examples=150, deadline=None)
@given(st.lists(json_values | st.builds(_task, st.text(max_size=30)), max_size=8))
def test_dedup_and_quality_never_raise(items):
    kept, dropped = dedup(items)
    assert len(kept) + len(dropped) == len(items)
    for it in items:
        q = task_quality(it)
        assert 0.0 <= q <= 3.0 and not math.isnan(q)
        assert isinstance(dedup_fingerprint(it), str)


def test_non_string_inputs():
    for obj in (None, 3, b"bytes", ["<question>"], {"a": 1}):
        assert verify_task(obj).reason == "empty"
        assert question_gate(obj)[0] is False


@pytest.mark.parametrize(
    "text",
    [
        "I'm sorry, but I can't assist with that.",
        "I'm sorry, I cannot help with that request.",
        "Sorry, I'm not able to help with generating that.",
        "I apologize, but I cannot create a task for this domain.",
    ],
)
def test_bare_refusals(text):
    assert verify_task(text).reason == "refusal"
    assert question_gate(text) == (False, "refusal")


BENCH = Path(__file__).resolve().parents[2] / "shared" / "benchmarks" / "hammer"


@pytest.mark.skipif(not BENCH.is_dir(), reason="shared benchmarks not present")
def test_gate_accepts_real_user_questions():
    """False-positive guard: real user requests (evaluation data, read only here) pass the hardened gate."""
    from toolr0.core.prompts import render_conversation

    rejected, total = [], 0
    for f in sorted(BENCH.glob("*.json")):
        for sample in json.loads(f.read_text()):
            total += 1
            ok, reason = question_gate(render_conversation(sample["query"]))
            if not ok:
                rejected.append((f.name, reason))
    assert total > 900
    assert len(rejected) / total <= 0.01, rejected[:5]


@pytest.mark.parametrize("variant", ["reference", "compact"])
def test_every_template_sentence_echoed_as_question_is_rejected(variant):
    import re

    from toolr0.core.prompts import generator_messages

    spec = TaskSpec("finance", "single_turn", 3, 1)
    system = generator_messages(spec, variant)[0]["content"]
    sentences = [s.strip() for s in re.split(r"(?<=[.!?])\s+|\n", system) if len(s.split()) >= 6]
    assert len(sentences) >= 8
    for sentence in sentences:
        ok, reason = question_gate(sentence)
        assert not ok, sentence
        verdict = verify_task(gen(question=sentence))
        assert not verdict.ok, sentence


def test_required_null_is_absent_but_schema_required_must_be_a_list():
    assert verify_task(gen(tools=tool_with(required=None))).ok
    schema_tool = {
        "name": "convert_currency",
        "description": "Convert money",
        "parameters": {
            "type": "object",
            "properties": {"amount": {"type": "number", "description": "Amount"}},
            "required": "amount",
        },
    }
    assert (
        verify_task(gen(tools=[schema_tool], calls=call_args({"amount": 250}))).reason == "required_not_list"
    )


def test_hardened_echo_from_measured_compact_failures():
    """Failure modes seen on the default model with the compact prompt (bench step 0, structured decoding)."""
    assert question_gate("Your request, with concrete real values") == (
        False,
        "echo",
    )  # paraphrased slot text
    assert question_gate("Generate 1 educational recommendation for a retail_ecommerce tool call.") == (
        False,
        "echo",
    )
    copied_toy = [
        {
            "name": "paint_fence",
            "description": "Paints one garden fence",
            "parameters": {"fence": {"type": "string", "description": "Which fence"}},
        },
        TOOLS[0],
    ]
    assert verify_task(gen(tools=copied_toy)).reason == "prompt_echo"


# ------------------------------------------------------------------------------------------ no-call tasks
NO_CALL_SPEC = TaskSpec("finance", "single_turn", 2, 0)
NO_CALL_Q = "Please open a joint savings account for me and my wife Maria at Lisbon Bank."


def test_no_call_task_passes_when_the_spec_asks_for_one():
    v = verify_task(gen(question=NO_CALL_Q, calls=[]), spec=NO_CALL_SPEC)
    assert v.ok and v.reason == "ok"
    assert v.task.calls == [] and [t.name for t in v.task.tools] == ["convert_currency", "get_stock_price"]
    assert v.task.domain == "finance"
    assert v.details["no_call"] is True and v.details["num_calls"] == 0 and v.details["num_calls_ok"]
    assert verify_task(gen(), spec=TaskSpec("finance", "single_turn", 2, 1)).details["no_call"] is False


def test_empty_gold_without_a_no_call_spec_is_still_calls_empty():
    for spec in (None, TaskSpec("finance", "single_turn", 2, 1), TaskSpec("finance", "single_turn", 2, 2)):
        assert verify_task(gen(question=NO_CALL_Q, calls=[]), spec=spec).reason == "calls_empty"


def test_no_call_spec_with_calls_is_verified_as_a_call_task():
    """Spec n is recorded, not enforced (spec §6.2), for n = 0 as for any n."""
    v = verify_task(gen(), spec=NO_CALL_SPEC)
    assert v.ok and len(v.task.calls) == 1 and v.details["num_calls_ok"] is False


NO_CALL_BAD = {
    # same question gate
    "echo": gen(question="Write a natural user question (no bullet points or meta-instructions).", calls=[]),
    "question_placeholder": gen(question="Please open an account at <bank> for <name> tomorrow.", calls=[]),
    "refusal": gen(question="I'm sorry, but I can't help with opening a savings account here.", calls=[]),
    # same tool rules
    "tool_name_generic": gen(question=NO_CALL_Q, tools=tool_with(name="api"), calls=[]),
    "param_type_invalid:array": gen(
        question=NO_CALL_Q,
        tools=tool_with(parameters={"amounts": {"type": "array", "description": "amounts"}}, required=[]),
        calls=[],
    ),
    "tools_empty": gen(question=NO_CALL_Q, tools=[], calls=[]),
    # gold must be exactly []
    "calls_not_list": gen(question=NO_CALL_Q, calls={}),
    "call_malformed": gen(question=NO_CALL_Q, calls=[{}]),
    "calls_not_strict_json": gen(question=NO_CALL_Q, calls="[ ] ]"),
    # same non-triviality rules
    "trivial_question_short": gen(question="Open a savings account.", calls=[]),
    "trivial_banned_phrase": gen(question="Explain how a joint savings account works in Portugal.", calls=[]),
    # the no-call rules
    "no_call_names_tool": gen(question="Use get_stock_price to open a savings account for Maria.", calls=[]),
    "no_call_meta": gen(
        # (not "none of the ... tools can": that is answer_first prompt text, an echo first)
        question="Open a savings account for Maria, even though the available tools cannot do this.",
        calls=[],
    ),
}


@pytest.mark.parametrize("reason", sorted(NO_CALL_BAD))
def test_every_no_call_reason_code(reason):
    v = verify_task(NO_CALL_BAD[reason], spec=NO_CALL_SPEC)
    assert not v.ok and v.task is None
    assert v.reason == reason


@pytest.mark.parametrize(
    "question",
    [
        "Do you sell any tools for repairing a bike chain in the Porto store?",
        "Refactor these functions into one class so my Flask app starts faster.",
        "Without using a credit card, how can I pay my 2024 property tax in Lisbon?",
        "My stock_price spreadsheet broke; can you book a call with an accountant on Friday?",
    ],
)
def test_no_call_rules_spare_ordinary_requests(question):
    assert verify_task(gen(question=question, calls=[]), spec=NO_CALL_SPEC).ok


def test_no_call_dedup_fingerprint_and_quality_with_empty_gold():
    a = Task("Open a savings account for Maria in 2024", [Tool("get_rate", "desc ok", {"x": {}}, [])], [])
    b = Task("open a savings account for maria in 1999", a.tools, [])
    c = Task(a.question, a.tools, [ToolCall("get_rate", {"x": 1})])
    assert dedup_fingerprint(a) == dedup_fingerprint(b) == dedup_fingerprint(a.to_dict())
    assert dedup_fingerprint(a) != dedup_fingerprint(c)  # the call signature differs
    assert task_quality(a) == pytest.approx(min(1, len(a.question) / 220) + 0 + 0.25)
    kept, dropped = dedup([a, c, b])
    assert kept == [a, c] and dropped == [2]


no_call_texts = st.one_of(
    garbage,
    st.builds(
        gen, st.text(max_size=120), st.just(TOOLS), st.sampled_from(["[]", "[ ]", " [] ", "[{}]", "{}"])
    ),
    st.builds(gen, st.just(NO_CALL_Q), st.just(TOOLS), json_values.map(json.dumps)),
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(no_call_texts)
def test_no_call_verdicts_never_raise_and_only_exact_empty_gold_is_no_call(text):
    v = verify_task(text, spec=NO_CALL_SPEC)
    assert isinstance(v.ok, bool) and isinstance(v.reason, str) and v.reason
    assert (v.task is not None) == v.ok
    if v.ok and v.details.get("no_call"):
        from toolr0.core.parsing import extract_last_tag

        assert json.loads(extract_last_tag(text, "tool_call_answer")) == [] and v.task.calls == []
    elif v.ok:
        assert v.task.calls


def test_no_call_rules_accept_bfcl_irrelevance_requests(tmp_path, monkeypatch):
    """False-positive guard: BFCL's irrelevance items (real no-call requests, read only here) pass the question
    gate and the no-call rules with their own function menus."""
    from toolr0.eval import bfcl

    if not bfcl.is_available():
        pytest.skip("bfcl-eval not installed (optional extra: scripts/install_bfcl.sh)")
    from toolr0.core.verify import check_no_call_question

    monkeypatch.setenv("BFCL_PROJECT_ROOT", str(tmp_path))
    items = bfcl.load_bfcl("bfcl_irrelevance")
    assert len(items) == 240
    for it in items:
        assert question_gate(it.question) == (True, "ok"), it.question
        assert check_no_call_question(it.question, it.tools) is None, it.question


@pytest.mark.parametrize(
    ("question", "reason"),
    [  # the untrained Generator's "valid" tasks of the step-0 measurement (bench/RESULTS.md, 2026-12-02)
        ("Do you want current weather updates, forecasts, or any other weather-related data?", "asks_user"),
        (
            "What would you like to automate to compare returns between three major European currencies?",
            "asks_user",
        ),
        (
            'Tool 1 requirements: forecast\n\nCall 1: {"name": "Forecast", "arguments": {"city": "New York"}}',
            "question_has_call",
        ),
        (
            'Plan a smart city.\nAvailable tools: {"name": "Scalr2", "description": "Cloud"}',
            "question_has_call",
        ),
        # the prompt's placeholder copied (13 of 14 no-call completions at step 0, issue 28) and its paraphrase
        (
            "The user's message: 'calculate balance for account 1234567890' should a 1000 $ balance.",
            "question_third_person",
        ),
        ("The user wants to check the forecast for Chicago and Los Angeles.", "question_third_person"),
        ("  THE USER needs 3 tickets to Lisbon.", "question_third_person"),
        # anywhere in a single-turn question: verified tasks of the cpu preset's iteration 1 (issue 28)
        ("What vehicle would you like to generate with a specific ID of 12345?", "asks_user"),
        (
            "What kind of medical information do you need for a patient's case, including the patient's name and id?",
            "asks_user",
        ),
        (
            "what the user wants to do with the data in data.txt and what the output should be",
            "question_third_person",
        ),
        ("What does the user want to do with the data retrieved in the first call?", "question_third_person"),
        (
            "Logistics analysis for 1 inventory. The user wants to know which calls save money.",
            "question_third_person",
        ),
        # questions about the task's own tools and calls: i28p's curriculum (issue 28, 2026-12-07)
        (
            "What are the parameters for the first call and the second call, and what are the legal values of John?",
            "question_about_task",
        ),
        (
            "Allocate 1000000 bytes of memory to the resource with ID 1. What does this call do?",
            "question_about_task",
        ),
        ("Send 'hi' to 555-0100 by SMS. Is there a way to use any other tool?", "question_about_task"),
    ],
)
def test_gate_rejects_answers_pasted_into_the_question_and_questions_put_to_the_user(question, reason):
    assert question_gate(question) == (False, reason)


@pytest.mark.parametrize(
    "question",
    [
        "Translate 'Would you like fries with that?' into French.",
        "I would like to book a table for two tonight.",
        '# Conversation\nUser: Book it.\nAPI-Request: {"name": "Book", "arguments": {"id": 3}}\nUser: And cancel it.',
        "What is the weather in Lisbon right now, in celsius?",
        "Then use my card ending 4411 to pay order 77.",
        "The users table of db main needs a new column named age.",
        "Send the user John a reminder about his 3pm meeting.",
        "Retrieve the user information for the user with ID 5.",
        'Ask Ann "would you like to come at 5?" by SMS to 555-0100.',
        "# Conversation\nUser: Book a table.\nAgent: For how many people would you like it?\nUser: Two.",
        "They calculate their BMI to settle the argument: 85 kg at 1.8 m and 60 kg at 1.65 m.",
        "Train a random forest with 10 and 20 trees to see how these parameters affect the accuracy.",
        "Translate 'Which tools do you sell?' into German.",
        "# Conversation\nUser: Which tools can you use?\nAgent: Weather ones.\nUser: Then the forecast for Oslo.",
    ],
)
def test_gate_keeps_requests_that_quote_or_continue(question):
    assert question_gate(question) == (True, "ok")


def test_new_gate_rules_pass_every_real_benchmark_question(tmp_path, monkeypatch):
    """False-positive guard for `question_has_call` / `asks_user` / `question_third_person` /
    `question_about_task`: no real Hammer or
    BFCL (non-live) question is rejected by them (data read at run time; skipped where absent)."""
    from toolr0.eval import registry

    monkeypatch.setenv("BFCL_PROJECT_ROOT", str(tmp_path))
    names, _ = registry.expand(["hammer", "bfcl"], skip_unavailable=True)
    if not names:
        pytest.skip("no benchmark data here")
    seen = 0
    for name in names:
        for it in registry.get(name).load():
            seen += 1
            assert question_gate(it.question)[1] not in (
                "question_has_call",
                "asks_user",
                "question_third_person",
                "question_about_task",
            ), (
                name,
                it.question,
            )
    assert seen > 0


# --- issue 16 review: placeholder and null gold values, question-gate false positives
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


def test_null_gold_value_loses_validity_and_fails_verification():
    calls = [{"name": "get_forecast", "arguments": {"city": None, "days": 3}}]
    text = gen_text(calls=calls)
    v = validity_reward(text)
    assert v.value < 1.0 and "args" in v.reason and "ground" in v.reason
    assert verify_task(text).reason == "null_value"
    optional = [
        {
            **FORECAST_TOOLS[0],
            "parameters": {
                **FORECAST_TOOLS[0]["parameters"],
                "unit": {"type": "string", "description": "C or F"},
            },
        }
    ]
    calls = [{"name": "get_forecast", "arguments": {"city": "Lyon", "days": 3, "unit": None}}]
    assert validity_reward(gen_text(tools=optional, calls=calls)).value < 1.0
    assert verify_task(gen_text(tools=optional, calls=calls)).reason == "null_value"


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


def test_question_numbers_match_any_written_form_of_a_gold_value():
    def ok(question, args):
        return verify_task(gen(question=question, calls=call_args(args))).reason

    base = {"from_currency": "US dollars", "to_currency": "euros"}
    assert (
        ok("Please convert 1,000 US dollars to euros before my trip to Paris.", {"amount": 1000, **base})
        == "ok"
    )
    assert (
        ok("Please convert 250.50 US dollars to euros before my trip to Paris.", {"amount": 250.5, **base})
        == "ok"
    )
    # digits inside a word or code are part of that word ("IoT1", "a5"), not a stated number
    assert (
        ok("Please convert 250 US dollars to euros for invoice A5 before Paris.", {"amount": 250, **base})
        == "ok"
    )
    assert ok(
        "Please convert 250 US dollars to euros for my 3 nights in Paris.", {"amount": 250, **base}
    ) == ("question_extra_number")


def test_a_conversation_may_ask_and_its_agent_lines_state_numbers():
    chat = (
        "# Conversation\nUser: I need money for Paris.\nAgent: Which amount? I see 2 options.\n"
        "User: Can you convert 250 US dollars to euros? Thanks, is that quick?"
    )
    assert verify_task(gen(question=chat)).reason == "ok"


def test_a_gold_tool_with_a_look_alike_must_be_singled_out_by_the_question():
    def twin(name):
        return {
            "name": name,
            "description": f"{name} of a device",
            "parameters": {"device_id": {"type": "string", "description": "Device id"}},
            "required": ["device_id"],
        }

    def reason(question, names, gold):
        calls = [{"name": gold, "arguments": {"device_id": "AB-1234"}}]
        return verify_task(gen(question=question, tools=[twin(n) for n in names], calls=calls)).reason

    q_any = "Please check my device AB-1234 in the kitchen, it beeps all day long."
    assert reason(q_any, ["IoT1", "IoT2"], "IoT1") == "gold_tool_not_singled_out"
    assert (
        reason(q_any, ["restart_device", "read_device_status"], "restart_device")
        == "gold_tool_not_singled_out"
    )
    q_restart = "Please restart my device AB-1234 in the kitchen, it froze this morning."
    assert reason(q_restart, ["restart_device", "read_device_status"], "restart_device") == "ok"
    # stems: "tracking" names patient_tracker; a camel-case word inside the question counts ("the aSQL query")
    q_track = "Start tracking the device AB-1234 in the kitchen from this morning on."
    assert reason(q_track, ["device_tracker", "device_cleaner"], "device_tracker") == "ok"
    assert reason("Run the aSQL query on device AB-1234 for the kitchen now.", ["SQL", "Web"], "SQL") == "ok"
    # a tool without a look-alike needs no name word
    assert reason(q_any, ["restart_device"], "restart_device") == "ok"
