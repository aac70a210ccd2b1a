"""In-prompt references (core/references.py): the Generator's own solved tasks as earlier chat turns."""

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from toolr0.core.prompts import generator_messages
from toolr0.core.references import (
    Reference,
    copied_reference,
    load_references,
    pick_references,
    reference_from_completion,
    reject_copies,
    render_reference,
    select_pool,
)
from toolr0.core.schema import Task
from toolr0.core.spec import TaskSpec
from toolr0.core.verify import Verdict
from toolr0.errors import ConfigError

TOOLS = '[{"name": "get_forecast", "description": "The forecast", "parameters": {"city": {"type": "string"}}}]'
CALLS = '[{"name": "get_forecast", "arguments": {"city": "New York", "days": 5}}]'


def ref(domain="news", calls=CALLS, question="Get the forecast for New York and 5 days.", n=1):
    return Reference(domain, 3, n, TOOLS, calls, question)


def spec(domain="weather", num_calls=1):
    return TaskSpec(domain=domain, context_type="single_turn", menu_size=3, num_calls=num_calls)


def test_reference_from_completion_cuts_the_blocks_as_written():
    text = f"<think>x</think><available_tools>{TOOLS}</available_tools>\n<tool_call_answer>{CALLS}"
    text += "</tool_call_answer><question> Get the forecast for New York and 5 days. </question>"
    r = reference_from_completion(text, "news", 3, 1)
    assert r == ref()
    assert reference_from_completion(text.replace("<question>", "<q>"), "news", 3, 1) is None
    assert reference_from_completion(None, "news", 3, 1) is None


def test_render_shows_a_plan_from_the_gold_not_prompt_text():
    out = render_reference(ref())
    assert out.startswith('<think>The user asks for get_forecast with city "New York", days 5.</think>')
    assert f"<tool_call_answer>{CALLS}</tool_call_answer>" in out
    assert out.endswith("<question>Get the forecast for New York and 5 days.</question>")


def test_references_are_earlier_turns_filled_with_their_own_domain():
    msgs = generator_messages(spec(), "answer_first", [ref("news"), ref("iot", question="q2")])
    assert [m["role"] for m in msgs] == ["system", "user", "assistant", "user", "assistant", "user"]
    assert msgs[1]["content"] == "Write the news task now."
    assert msgs[3]["content"] == "Write the iot task now."
    assert msgs[-1]["content"] == "Write the weather task now."
    assert "weather" in msgs[0]["content"]
    assert generator_messages(spec(), "answer_first", []) == generator_messages(spec(), "answer_first")


def test_pick_prefers_the_spec_kind_from_another_domain_and_is_seeded():
    pool = [ref("weather", n=2), ref("news", n=2), ref("news", n=1, question="a"), ref("iot", n=1, question="b")]
    got = pick_references(pool, spec("weather", 2), 2, seed=13, key="0")
    assert got[0] == pool[1]  # the two-call reference of another domain first
    assert got[1] == pool[0]  # then the same kind in the same domain
    assert got == pick_references(pool, spec("weather", 2), 2, seed=13, key="0")
    one = {tuple(pick_references(pool, spec("weather", 1), 1, seed=13, key=str(i))) for i in range(20)}
    assert one == {(pool[2],), (pool[3],)}  # seeded per key: both one-call references come up
    assert pick_references(pool, spec(), 0, 13, "0") == []
    assert pick_references([], spec(), 2, 13, "0") == []
    assert len(pick_references(pool, spec(), 9, 13, "0")) == len(pool)


def test_copied_reference_catches_lifted_calls_and_questions_only():
    shown = [ref()]
    assert copied_reference("Show the news for Paris today.", CALLS.replace("New York", "Paris"), shown) is None
    assert copied_reference("Anything at all", CALLS, shown) == "reference_calls"
    assert copied_reference("Get the forecast for New York and 5 days please", "[]", shown) == "reference_question"
    assert copied_reference("What is new?", "[]", [ref(calls="[]")]) is None  # two no-call tasks share []
    assert copied_reference(None, CALLS, shown) is None


@given(st.text(max_size=80), st.text(max_size=80))
def test_copied_reference_never_raises(question, calls):
    assert copied_reference(question, calls, [ref()]) in (None, "reference_calls", "reference_question")


def test_select_pool_keeps_clear_solved_tasks_once_each():
    long_q = " ".join(["word"] * 41)
    solved = [
        (ref(question="Short and clear."), 0.75),
        (ref(question="Unclear and rarely solved.", calls="[1]"), 0.25),
        (ref(question=long_q, calls="[2]"), 1.0),
        (ref(question="Same gold, other words."), 1.0),  # the gold of the first: one kept, the surer one
        (ref(question="Also clear, surer.", calls="[3]"), 1.0),
    ]
    got = [r.question for r in select_pool(solved)]
    assert got == ["Also clear, surer.", "Same gold, other words."]


def test_load_references_skips_bad_rows_and_names_a_missing_file(tmp_path):
    p = tmp_path / "pool.jsonl"
    p.write_text(json.dumps(ref().to_dict()) + "\nnot json\n" + json.dumps({"domain": "x"}) + "\n")
    assert load_references(p) == [ref()]
    with pytest.raises(ConfigError, match="references file not found"):
        load_references(tmp_path / "nope.jsonl")


def test_reject_copies_fails_a_verified_copy_and_passes_everything_else_through():
    text = f"<question>Show Paris.</question><tool_call_answer>{CALLS}</tool_call_answer>"
    task = Task.from_dict({"question": "Show Paris.", "calls": json.loads(CALLS)})
    ok = Verdict(True, "ok", task, {"menu_size_ok": True})
    got = reject_copies(ok, text, [ref()])
    assert (got.ok, got.reason, got.task, got.details) == (False, "copied_reference_calls", None, ok.details)
    assert reject_copies(ok, text, []) is ok  # nothing shown, nothing copied
    assert reject_copies(ok, text.replace("New York", "Oslo"), [ref()]) is ok
    failed = Verdict(False, "echo")
    assert reject_copies(failed, text, [ref()]) is failed
