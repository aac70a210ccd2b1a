"""Answer-first Generator order (prompt variant ``answer_first``): the grammar's block order, its second stages
(calls to menu tools; a question that states every value) and the prompt variant's order setting."""

from __future__ import annotations

import json

import pytest

from toolr0.core.completions import parse_generator_output
from toolr0.core.prompts import generator_order, generator_stop, load_prompt_variant
from toolr0.core.rewards.generator import validity_reward
from toolr0.core.spec import TaskSpec
from toolr0.core.verify import verify_task
from toolr0.inference.grammar import StructuredConfig, build_ebnf
from toolr0.inference.grounding import (
    answer_first_calls_ebnf,
    call_values,
    question_with_values_ebnf,
    stage_grammar,
    stage_markers,
)

xgr = pytest.importorskip("xgrammar")

TOOLS = (
    '[{"name": "get_forecast", "description": "Weather forecast for a city.", "parameters": '
    '{"city": {"type": "string", "description": "City name"}, "days": {"type": "integer", '
    '"description": "Days ahead"}}, "required": ["city"]}, {"name": "convert_currency", "description": '
    '"Converts money.", "parameters": {"amount": {"type": "number", "description": "Amount"}}, '
    '"required": ["amount"]}]'
)
CALLS = '[{"name": "get_forecast", "arguments": {"city": "Lisbon", "days": 3}}]'
VALID = (
    "<think>The user wants the Lisbon forecast.</think>\n"
    f"<available_tools>{TOOLS}</available_tools>\n"
    f"<tool_call_answer>{CALLS}</tool_call_answer>\n"
    "<question>What will the weather be like in Lisbon over the next 3 days?</question>"
)
SPEC = TaskSpec("weather", "single_turn", 2, 1)
AF = StructuredConfig(enabled=True, order="answer_first", ground_calls=True)


@pytest.fixture(scope="module")
def tok():
    pytest.importorskip("transformers")
    from toolr0.inference.tiny import tiny_tokenizer

    return tiny_tokenizer()


def _matcher(tok, ebnf):
    from toolr0.inference.structured import compile_grammar

    return xgr.GrammarMatcher(compile_grammar(tok, ebnf, len(tok)))


def _accepts(tok, ebnf, text):
    m = _matcher(tok, ebnf)
    return bool(m.accept_string(text)) and bool(m.accept_token(tok.eos_token_id))


def test_variant_declares_its_order_and_stop():
    assert generator_order("answer_first") == "answer_first" and generator_stop("answer_first") == (
        "</question>",
    )
    assert generator_order("compact_named") == "question_first"
    assert generator_stop("reference") == ("</tool_call_answer>",)
    assert load_prompt_variant("answer_first").section("generator")["order"] == "answer_first"


def test_bad_order_in_a_user_variant_is_a_one_line_error(tmp_path):
    from toolr0.errors import ConfigError

    p = tmp_path / "v.yaml"
    p.write_text("generator:\n  order: sideways\n  system: '{domain} {menu_size} {num_calls}'\n  user: go\n")
    with pytest.raises(ConfigError, match="generator.order: expected one of question_first, answer_first"):
        load_prompt_variant(str(p))


def test_structural_grammar_puts_the_question_last(tok):
    ebnf = build_ebnf(SPEC, AF)
    assert _accepts(tok, ebnf, VALID)
    question_first = build_ebnf(SPEC, StructuredConfig(enabled=True))
    assert not _accepts(tok, question_first, VALID)
    # the parsers and verification do not care about the order
    parsed = parse_generator_output(VALID)
    assert (
        parsed.question.startswith("What will")
        and json.loads(parsed.answer_text)[0]["name"] == "get_forecast"
    )
    verdict = verify_task(VALID, SPEC)
    assert verdict.ok, verdict.reason
    assert validity_reward(VALID).value == 1.0


def test_calls_stage_allows_only_menu_tools_with_required_params_and_typed_values(tok):
    prefix = VALID[: VALID.index("<tool_call_answer>")]
    ebnf = answer_first_calls_ebnf(prefix, 1, AF)
    assert ebnf is not None and answer_first_calls_ebnf("<available_tools>[not json", 1, AF) is None
    q = "\n<question>A question long enough to pass.</question>"

    def ok(calls: str) -> bool:
        return _accepts(tok, ebnf, calls + "</tool_call_answer>" + q)

    assert ok(CALLS)
    assert ok('[{"name": "convert_currency", "arguments": {"amount": 12.5}}]')
    assert not ok('[{"name": "book_hotel", "arguments": {"city": "Lisbon"}}]')  # not in the menu
    assert not ok('[{"name": "get_forecast", "arguments": {"days": 3}}]')  # required city missing
    assert not ok('[{"name": "get_forecast", "arguments": {"city": "Lisbon", "days": "3"}}]')  # a string
    assert not ok('[{"name": "get_forecast", "arguments": {"city": "--"}}]')  # no letter or digit
    assert not ok('[{"name": "get_forecast", "arguments": {"city": " NYC"}}]')  # an outer space
    assert not ok('[{"name": "get_forecast", "arguments": {"city": "NYC "}}]')
    assert ok('[{"name": "get_forecast", "arguments": {"city": "New York"}}]')
    assert ok('[{"name": "get_forecast", "arguments": {"city": "$5"}}]')


def test_question_stage_must_state_every_value_at_word_boundaries(tok):
    prefix = VALID[: VALID.index("<question>")].rstrip("\n")
    assert call_values(CALLS) == ["Lisbon", "3"]
    ebnf = question_with_values_ebnf(prefix, AF)
    assert ebnf is not None

    def ok(q: str) -> bool:
        return _accepts(tok, ebnf, q + "</question>")

    assert ok("What will the weather be like in Lisbon over the next 3 days?")
    assert ok("Lisbon, 3 days please")
    assert not ok("What will the weather be like over the next 3 days?")  # city never stated
    assert not ok("Weather in Lisbon please")  # days never stated
    assert not ok("Weather in Lisbonia for 3 days")  # the value inside a longer word
    assert not ok("Weather in Lisbonı for 3 days") and not ok(
        "Weather in üLisbon for 3 days"
    )  # non-ASCII letters too
    assert not ok("3 days of weather in Lisbon")  # values in another order than the calls
    assert not ok("Lisbon for 3 days. " + "What about Porto? " * 6)  # rambling on after the last value


def test_question_stage_with_one_value_compiles_and_bounds_the_text_around_it(tok):
    from toolr0.inference.grounding import TAIL_MAX_CHARS

    calls = '[{"name": "get_forecast", "arguments": {"city": "Lisbon"}}]'
    prefix = VALID[: VALID.index("<tool_call_answer>")] + f"<tool_call_answer>{calls}</tool_call_answer>"
    ebnf = question_with_values_ebnf(prefix, AF)
    assert _accepts(tok, ebnf, "Is it raining in Lisbon right now?</question>")
    assert not _accepts(tok, ebnf, "Lisbon " + "x" * (TAIL_MAX_CHARS + 1) + "</question>")


def test_call_values_skip_booleans_and_nulls_and_keep_number_text():
    calls = '[{"name": "a", "arguments": {"x": true, "y": null, "z": 2.5, "w": "Rome"}}, {"name": "b", "arguments": {"w": "Rome"}}]'
    assert call_values(calls) == ["2.5", "Rome"]
    assert call_values("not json") == [] and call_values('{"name": 1}') == []


def test_stage_dispatch_by_order_and_call_count():
    assert stage_markers("question_first") == ("<tool_call_answer>",)
    assert stage_markers("answer_first") == ("<tool_call_answer>", "</tool_call_answer>\n<question>")
    row = build_ebnf(SPEC, AF)
    prefix = VALID[: VALID.index("<tool_call_answer>")]
    assert "question" in stage_grammar(row, 0, prefix, AF)
    no_call = build_ebnf(TaskSpec("weather", "single_turn", 2, 0), AF)
    assert stage_grammar(no_call, 0, prefix, AF) is None  # []: nothing to ground
    assert "root ::=" in stage_grammar(no_call, 1, prefix, AF)  # its question: one message, no banned opening
    chat = build_ebnf(TaskSpec("weather", "multi_turn", 2, 0), AF)
    assert stage_grammar(chat, 1, prefix, AF) is None  # a chat keeps the structural grammar's lines
    calls_prefix = VALID[: VALID.index("</tool_call_answer>")]
    assert '"Lisbon"' in stage_grammar(row, 1, calls_prefix, AF)


def test_a_single_message_question_has_one_line_and_its_only_question_mark_last(tok):
    calls_prefix = VALID[: VALID.index("</tool_call_answer>")]
    one = stage_grammar(build_ebnf(SPEC, AF), 1, calls_prefix, AF)

    def ok(ebnf, q: str) -> bool:
        return _accepts(tok, ebnf, q + "</question>")

    assert ok(one, "What will the weather be like in Lisbon over the next 3 days?")
    assert ok(one, "Lisbon, 3 days please.")
    assert not ok(one, "Is it sunny? What will the weather be like in Lisbon over the next 3 days?")
    assert not ok(one, "Weather in Lisbon for 3 days? Is it cold?")  # asks on after the values
    assert not ok(one, "Weather in Lisbon\nfor 3 days")
    # a multi_turn chat keeps its lines and the agent's questions
    chat = stage_grammar(build_ebnf(TaskSpec("weather", "multi_turn", 2, 1), AF), 1, calls_prefix, AF)
    assert ok(chat, "# Conversation\nUser: Weather please?\nAgent: Where?\nUser: Lisbon, for 3 days")


def test_question_may_not_open_with_the_banned_words(tok):
    """The 0.5B model copied the prompt's '<question>the user's message, ...' placeholder in 13 of 14 no-call
    completions at step 0 (issue 28): the question stage bans that opening, for no-call and call tasks alike."""
    no_call = stage_grammar(build_ebnf(TaskSpec("weather", "single_turn", 2, 0), AF), 1, "", AF)
    calls_prefix = VALID[: VALID.index("</tool_call_answer>")]
    call = stage_grammar(build_ebnf(SPEC, AF), 1, calls_prefix, AF)

    def ok(ebnf, q: str) -> bool:
        return _accepts(tok, ebnf, q + "</question>")

    for banned in (
        "the user's message, with concrete real values",
        "The user wants rain gear for a trip to Oslo",
        "THE USER needs an umbrella for Oslo tomorrow?",
        "The users of Oslo need the forecast",
    ):
        assert not ok(no_call, banned), banned
    for fine in (
        "Will I need an umbrella in Oslo tomorrow?",
        "Then use the cheapest courier for my parcel to Oslo",
        "The usual forecast sites are down, is a storm coming to Oslo?",
        "Th" + "e" * 30,
    ):
        assert ok(no_call, fine), fine
    assert not ok(no_call, "Will it rain in Oslo?\nAnd in Bergen?")  # one message, as for call tasks
    assert not ok(no_call, "Too short?")  # question_min_chars
    assert not ok(call, "The user wants the weather in Lisbon over the next 3 days")
    assert ok(call, "Lisbon over the next 3 days, please")  # a value may open the question
    assert ok(call, "The weather in Lisbon over the next 3 days?")
    off = AF.model_copy(update={"question_banned_opening": ""})
    assert ok(stage_grammar(build_ebnf(SPEC, off), 1, calls_prefix, off), "The user wants Lisbon for 3 days")


def test_free_text_without_an_opening_matches_its_definition():
    """The EBNF complement of a prefix, checked against the plain definition on short strings."""
    import itertools
    import re

    from toolr0.inference.grounding import free_without_opening

    class_ebnf = free_without_opening((), 0, 4, "ab")
    assert "{" in class_ebnf
    ebnf_re = class_ebnf.replace(" ", "").replace('""', "")  # our subset of EBNF reads as a regex here
    for n in range(0, 5):
        for chars in itertools.product("aAbx", repeat=n):
            s = "".join(chars)
            assert bool(re.fullmatch(ebnf_re, s)) == (not s.lower().startswith("ab")), s


def test_random_model_under_answer_first_writes_every_value_into_its_question():
    """Even a random model's completions are answer-first tasks whose question states each gold value."""
    import torch

    from toolr0.inference.structured import make_logits_processor
    from toolr0.inference.tiny import tiny_random_model

    cfg = AF.model_copy(
        update=dict(
            think_max_chars=10,
            question_max_chars=40,
            name_max_chars=6,
            description_max_chars=6,
            value_max_chars=6,
            number_max_digits=3,
            max_params=2,
            max_args=2,
            question_min_chars=8,
        )
    )
    torch.set_num_threads(1)
    model, tok = tiny_random_model(seed=0, num_layers=1, hidden=32)
    specs = [TaskSpec("math", "single_turn", 2, 1), TaskSpec("news", "single_turn", 2, 2)]
    msgs = [[{"role": "user", "content": f"write a {s.domain} task"}] for s in specs]
    enc = tok.apply_chat_template(
        msgs, add_generation_prompt=True, return_tensors="pt", padding=True, return_dict=True
    )
    proc = make_logits_processor(tok, specs, cfg, num_return_sequences=2)
    torch.manual_seed(2)
    out = model.generate(
        **enc,
        logits_processor=[proc],
        do_sample=True,
        temperature=1.0,
        max_new_tokens=2500,
        num_return_sequences=2,
        pad_token_id=tok.pad_token_id,
    )
    width = enc["input_ids"].shape[1]
    texts = [tok.decode(r[width:], skip_special_tokens=True) for r in out]
    assert proc.rejected == 0 and proc.grounded == 8  # two switches on each of the 4 rows
    checked = 0
    for text in texts:
        assert text.endswith("</question>"), text
        parsed = parse_generator_output(text)
        tools = {t["name"]: t for t in json.loads(parsed.tools_text)}
        for call in json.loads(parsed.answer_text):
            assert call["name"] in tools
            for v in call["arguments"].values():
                # a random model splits non-ASCII characters across tokens, which decode differently alone
                if not isinstance(v, bool) and str(v).isascii():
                    assert str(v) in parsed.question, (v, text)
                    checked += 1
    assert checked >= 1
