"""Structured Generator decoding: the task grammar (xgrammar EBNF) and the per-row transformers processor."""

from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from toolr0.core.completions import parse_generator_output
from toolr0.core.spec import TaskSpec
from toolr0.inference.grammar import StructuredConfig, build_ebnf
from toolr0.inference.structured import accepts, make_logits_processor

xgr = pytest.importorskip("xgrammar")

VALID = (
    "<think>The user wants the north fence painted.</think>\n"
    "<question>Paint the north fence of my garden blue with 3 coats.</question>\n"
    '<available_tools>[{"name": "paint_fence", "description": "Paints a fence.", "parameters": '
    '{"fence": {"type": "string", "description": "Which fence"}, "coats": {"type": "integer", '
    '"description": "Number of coats"}}, "required": ["fence"]}, {"name": "mow_lawn", "description": '
    '"Mows the lawn.", "parameters": {"height": {"type": "number", "description": "Height in cm"}}, '
    '"required": ["height"]}]</available_tools>\n'
    '<tool_call_answer>[{"name": "paint_fence", "arguments": {"fence": "north", "coats": 3}}]'
    "</tool_call_answer>"
)
SPEC = TaskSpec("retail_ecommerce", "single_turn", 2, 1)


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """Token-by-token decoding of a tiny model is 10x+ slower with 2 OpenMP threads on a busy machine."""
    torch = pytest.importorskip("torch")
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def tok():
    pytest.importorskip("transformers")
    from toolr0.inference.tiny import tiny_tokenizer

    return tiny_tokenizer()


def test_grammar_accepts_valid_task(tok):
    assert accepts(tok, SPEC, VALID)
    assert accepts(tok, None, VALID)  # the loose grammar (any menu/call count) too


@pytest.mark.parametrize(
    "bad",
    [
        VALID.replace('"coats": 3', '"coats": [3]'),  # list-valued argument
        VALID.replace('"coats": 3', '"coats": {"n": 3}'),  # nested argument
        VALID.replace('"fence": "north"', '"fence": "<fence>"'),  # placeholder value
        VALID.replace('"arguments": {"fence": "north", "coats": 3}', '"arguments": {}'),  # empty call
        VALID.replace('"type": "integer"', '"type": "array"'),  # non-primitive parameter type
        VALID.replace("</think>\n<question>", "</think>\n### Task\n<question>"),  # markdown between tags
        VALID.replace("blue with 3 coats.", "<b>blue</b>"),  # '<' inside the question
        VALID.replace(
            "<question>Paint the north fence of my garden blue with 3 coats.", "<question>hi"
        ),  # < 8
        VALID[: -len("</tool_call_answer>")],  # unclosed
        VALID + "\nmore text",  # trailing text
    ],
)
def test_grammar_rejects_malformed(tok, bad):
    assert not accepts(tok, SPEC, bad)


def test_grammar_enforces_exact_counts(tok):
    assert not accepts(tok, TaskSpec("x", "single_turn", 3, 1), VALID)  # menu of 2, spec says 3
    assert not accepts(tok, TaskSpec("x", "single_turn", 2, 2), VALID)  # one call, spec says 2


def test_caps_come_from_config(tok):
    tight = StructuredConfig(question_max_chars=20)
    assert not accepts(tok, SPEC, VALID, tight)
    assert "{1,7}" in build_ebnf(SPEC, StructuredConfig(value_max_chars=7))
    with_params = StructuredConfig(max_params=1)
    assert not accepts(tok, SPEC, VALID, with_params)  # paint_fence has two parameters


def test_switch_off_returns_none(tok):
    assert make_logits_processor(tok, [SPEC], StructuredConfig(enabled=False)) is None
    assert make_logits_processor(tok, [SPEC], None) is None


def _generate(specs, n, cfg, seed=0):
    import torch

    from toolr0.inference.tiny import tiny_random_model

    model, tok = tiny_random_model(seed=0, num_layers=1, hidden=32)
    msgs = [[{"role": "user", "content": f"write a {s.domain} task"}] for s in specs]
    enc = tok.apply_chat_template(
        msgs, add_generation_prompt=True, return_tensors="pt", padding=True, return_dict=True
    )
    proc = make_logits_processor(tok, specs, cfg, num_return_sequences=n)
    torch.manual_seed(seed)
    out = model.generate(
        **enc,
        logits_processor=[proc],
        do_sample=True,
        temperature=1.0,
        max_new_tokens=2500,
        num_return_sequences=n,
        pad_token_id=tok.pad_token_id,
    )
    width = enc["input_ids"].shape[1]
    return [tok.decode(r[width:], skip_special_tokens=True) for r in out], proc


TIGHT = StructuredConfig(  # small caps keep the random model's (cap-length) outputs short
    enabled=True,
    think_max_chars=10,
    question_max_chars=16,
    name_max_chars=6,
    description_max_chars=6,
    value_max_chars=6,
    number_max_digits=4,
    max_params=2,
    max_args=2,
)


def test_processor_forces_structure_on_random_model_per_row_grammars():
    """A random model's outputs still parse into four tags with valid JSON of the exact per-row shape."""
    specs = [TaskSpec("math", "single_turn", 2, 1), TaskSpec("news", "single_turn", 1, 2)]
    texts, proc = _generate(specs, 2, TIGHT)
    assert proc.rejected == 0
    assert len(texts) == 4
    for i, text in enumerate(texts):
        spec = specs[i // 2]  # prompt-major rows
        parsed = parse_generator_output(text)
        assert parsed.question is not None and parsed.tools_text and parsed.answer_text, text
        tools = json.loads(parsed.tools_text)
        calls = json.loads(parsed.answer_text)
        assert len(tools) == spec.menu_size and len(calls) == spec.num_calls
        for t in tools:
            assert set(t) == {"name", "description", "parameters", "required"}
            assert 1 <= len(t["parameters"]) <= TIGHT.max_params
            assert {p["type"] for p in t["parameters"].values()} <= {"string", "integer", "number", "boolean"}
        for c in calls:
            assert 1 <= len(c["arguments"]) <= TIGHT.max_args
            assert all(isinstance(v, (str, int, float, bool)) for v in c["arguments"].values())
            assert all(
                abs(v) < 10**TIGHT.number_max_digits
                for v in c["arguments"].values()
                if not isinstance(v, str)
            )
        assert text.endswith("</tool_call_answer>")


def test_hf_sampler_hook_per_prompt_specs_and_restore(tiny_model_and_tokenizer):
    """`constrained(sampler, specs, cfg)` binds prompt i to specs[i] through HFSampler's factory hook."""
    from toolr0.inference.base import SamplingParams
    from toolr0.inference.hf import HFSampler
    from toolr0.inference.structured import constrained

    model, tok = tiny_model_and_tokenizer
    sampler = HFSampler(model, tok, batch_size=2)
    specs = [TaskSpec("math", "single_turn", 1, 1), TaskSpec("news", "single_turn", 2, 2)]
    prompts = [[{"role": "user", "content": f"task {i}"}] for i in range(2)]
    params = SamplingParams(n=2, temperature=1.0, max_new_tokens=2500, seed=3)
    with constrained(sampler, specs, TIGHT):
        out = sampler.generate(prompts, params)
    assert sampler.logits_processor_factory is None  # restored
    for spec, row in zip(specs, out, strict=True):
        assert len(row) == 2
        for text in row:
            parsed = parse_generator_output(text)
            assert parsed.tools_text and parsed.answer_text, text
            assert len(json.loads(parsed.tools_text)) == spec.menu_size
            assert len(json.loads(parsed.answer_text)) == spec.num_calls
    with constrained(sampler, specs, StructuredConfig(enabled=False)):
        assert sampler.logits_processor_factory is None


def test_budget_shrinks_caps_for_large_menus_only():
    from toolr0.inference.grammar import effective_caps, estimate_tokens

    cfg = StructuredConfig(budget_tokens=512)
    small, large = TaskSpec("x", "single_turn", 2, 1), TaskSpec("x", "single_turn", 8, 1)
    assert effective_caps(small, cfg) == effective_caps(small, StructuredConfig())  # fits already
    big = effective_caps(large, cfg)
    assert big.desc < cfg.description_max_chars and big.params < cfg.max_params
    assert (
        estimate_tokens(8, 1, big) <= 512 < estimate_tokens(8, 1, effective_caps(large, StructuredConfig()))
    )
    # descriptions keep core.verify's 5-character minimum
    assert f"{{5,{big.desc}}}" in build_ebnf(large, cfg)
    for m in range(2, 9):  # never below the floors
        c = effective_caps(TaskSpec("x", "single_turn", m, 2), StructuredConfig(budget_tokens=64))
        assert c.desc >= 20 and c.params >= 1 and c.think >= 40 and c.args >= 2


def test_tool_names_need_three_letters(tok):
    assert not accepts(tok, SPEC, VALID.replace("mow_lawn", "a12"))
    assert accepts(tok, SPEC, VALID.replace("mow_lawn", "is_open"))


def test_grounded_calls_grammar_only_menu_tools_required_params_and_question_values(tok):
    from toolr0.inference.grammar import grounded_calls_ebnf, question_values
    from toolr0.inference.structured import compile_grammar

    prefix = VALID[: VALID.index("<tool_call_answer>")]
    strings, ints, floats = question_values("Paint the north fence 12.5 m, 1,200 coats by 2026-03-14.")
    assert {"north fence", "2026-03-14", "Paint"} <= set(strings) and 1200 in ints and floats == [12.5]
    ebnf = grounded_calls_ebnf(prefix, 1)
    assert ebnf is not None and grounded_calls_ebnf("<question>no tools", 1) is None
    g = compile_grammar(tok, ebnf, 320)

    def ok(calls: str) -> bool:
        m = xgr.GrammarMatcher(g)
        return bool(m.accept_string(calls + "</tool_call_answer>")) and bool(m.accept_token(tok.eos_token_id))

    assert ok('[{"name": "paint_fence", "arguments": {"fence": "north", "coats": 3}}]')
    assert ok('[{"name": "mow_lawn", "arguments": {"height": 3}}]')
    assert not ok('[{"name": "paint_house", "arguments": {"fence": "north"}}]')  # not in the menu
    assert not ok('[{"name": "paint_fence", "arguments": {"coats": 3}}]')  # required "fence" missing
    assert not ok('[{"name": "paint_fence", "arguments": {"fence": "south"}}]')  # not in the question
    assert not ok('[{"name": "paint_fence", "arguments": {"fence": "north", "coats": 4}}]')


def test_processor_ground_calls_switches_rows_to_grounded_grammar():
    """With ground_calls, even a random model's gold calls name menu tools with their required params."""
    from toolr0.core.rewards.generator import validity_reward

    cfg = TIGHT.model_copy(update={"ground_calls": True, "question_max_chars": 40})
    specs = [TaskSpec("math", "single_turn", 2, 1)]
    texts, proc = _generate(specs, 2, cfg, seed=1)
    assert proc.rejected == 0 and proc.grounded == 2
    for text in texts:
        parsed = parse_generator_output(text)
        tools = {t["name"]: t for t in json.loads(parsed.tools_text)}
        for call in json.loads(parsed.answer_text):
            assert call["name"] in tools
            assert set(tools[call["name"]]["required"]) <= set(call["arguments"])
        assert validity_reward(text).value > 0.5, (validity_reward(text), text)


@pytest.mark.slow
def test_default_model_structured_outputs_parse_with_spec_counts():
    """On the packaged default model every structured completion is a four-tag task of the spec's shape."""
    from toolr0.core.prompts import generator_messages
    from toolr0.inference.base import SamplingParams
    from toolr0.inference.hf import HFSampler
    from toolr0.inference.structured import constrained

    sampler = HFSampler.from_pretrained("default")
    specs = [TaskSpec("weather", "single_turn", 3, 1), TaskSpec("finance", "single_turn", 4, 2)]
    cfg = StructuredConfig(enabled=True, budget_tokens=512)
    with constrained(sampler, specs, cfg):
        out = sampler.generate_detailed(
            [generator_messages(s, "compact") for s in specs], SamplingParams(n=2, max_new_tokens=512, seed=1)
        )
    for spec, row in zip(specs, out.completions, strict=True):
        for c in row:
            if c.finish_reason == "length":
                continue
            parsed = parse_generator_output(c.text)
            assert len(json.loads(parsed.tools_text)) == spec.menu_size, c.text
            assert len(json.loads(parsed.answer_text)) == spec.num_calls, c.text


def _per_row_reference_processor(tok, ebnfs):
    """The processor's masking done row by row (one accept and one mask fill per row per step): the batched
    processor must produce the same tokens under the same seed."""
    from transformers import LogitsProcessor

    from toolr0.inference.structured import compile_grammar

    class PerRow(LogitsProcessor):
        matchers = None

        def __call__(self, input_ids, scores):
            batch, vocab = scores.shape
            if self.matchers is None:
                self.matchers = [xgr.GrammarMatcher(compile_grammar(tok, g, vocab)) for g in ebnfs]
                self.bitmask = xgr.allocate_token_bitmask(batch, vocab)
                self.dead = [False] * batch
            else:
                for i, m in enumerate(self.matchers):
                    if (
                        not self.dead[i]
                        and not m.is_terminated()
                        and not m.accept_token(int(input_ids[i, -1]))
                    ):
                        self.dead[i] = True
            stopped = []
            for i, m in enumerate(self.matchers):
                if self.dead[i] or m.is_terminated():
                    stopped.append(i)
                    self.bitmask[i].fill_(-1)
                else:
                    m.fill_next_token_bitmask(self.bitmask, i)
            xgr.apply_token_bitmask_inplace(scores, self.bitmask)
            for i in stopped:
                scores[i].fill_(float("-inf"))
                scores[i, tok.eos_token_id] = 0.0
            return scores

    return PerRow()


def test_batched_mask_fill_gives_the_per_row_outputs_under_a_seed(tiny_model_and_tokenizer):
    """Speed change only: one batched accept/fill per step (BatchGrammarMatcher) samples exactly what the
    per-row loop samples, for per-row grammars of different shapes."""
    import torch

    model, tok = tiny_model_and_tokenizer
    specs = [TaskSpec("math", "single_turn", 2, 1), TaskSpec("news", "single_turn", 1, 2)]
    prompts = [f"Write a task about {s.domain}." for s in specs]
    enc = tok(prompts, return_tensors="pt", padding=True)
    width = enc["input_ids"].shape[1]
    outs = []
    for batched in (True, False):
        proc = make_logits_processor(tok, specs, TIGHT, num_return_sequences=2)
        if not batched:
            proc = _per_row_reference_processor(tok, proc.ebnfs)
        torch.manual_seed(5)
        out = model.generate(
            **enc,
            logits_processor=[proc],
            do_sample=True,
            temperature=1.0,
            max_new_tokens=400,
            num_return_sequences=2,
            pad_token_id=tok.pad_token_id,
        )
        outs.append([tok.decode(r[width:], skip_special_tokens=True) for r in out])
    assert outs[0] == outs[1]
    assert len(set(outs[0])) == 4 and all(t.startswith("<think>") for t in outs[0])


def test_compiled_grammars_are_shared_across_tokenizer_objects_of_one_vocabulary(monkeypatch):
    """Two tokenizer objects of the same vocabulary (the sampler's and TRL's) share one compile; another
    vocabulary gets its own."""
    from toolr0.inference import structured as st
    from toolr0.inference.tiny import tiny_tokenizer

    for name in ("_COMPILED", "_COMPILERS", "_TOKENIZER_KEYS"):
        monkeypatch.setattr(st, name, {})
    ebnf = 'root ::= "<q>" [a-z]{1,3} "</q>"\n'  # small: the test is about the cache, not the task grammar
    a, b = tiny_tokenizer(), tiny_tokenizer()
    first = st.compile_grammar(a, ebnf)
    calls = []
    monkeypatch.setattr(xgr.GrammarCompiler, "compile_grammar", lambda self, g: calls.append(g))
    assert st.compile_grammar(b, ebnf) is first and not calls
    assert len(st._COMPILERS) == 1
    c = tiny_tokenizer()
    c.add_tokens(["<extra_token>"])
    st.compile_grammar(c, ebnf)
    assert calls == [ebnf] and len(st._COMPILERS) == 2
    m = xgr.GrammarMatcher(first)
    assert m.accept_string("<q>ab</q>") and not xgr.GrammarMatcher(first).accept_string("<q>abcd")


# ------------------------------------------------------------------------------------------ no-call tasks
NO_CALL = TaskSpec("retail_ecommerce", "single_turn", 2, 0)
NO_CALL_VALID = VALID[: VALID.index("<tool_call_answer>")] + "<tool_call_answer>[]</tool_call_answer>"


def test_no_call_grammar_accepts_exactly_empty_gold(tok):
    assert accepts(tok, NO_CALL, NO_CALL_VALID)
    assert not accepts(tok, NO_CALL, VALID)  # a call where the spec asks for none
    assert not accepts(tok, SPEC, NO_CALL_VALID)  # no call where the spec asks for one
    for bad in ("[ ]", "[]]", "", "[null]", "{}"):
        assert not accepts(tok, NO_CALL, NO_CALL_VALID.replace("[]</tool", bad + "</tool"))
    assert not accepts(tok, TaskSpec("x", "single_turn", 3, 0), NO_CALL_VALID)  # menu count still exact


def test_grounded_stage_keeps_exactly_empty_gold_for_no_call_rows(tok):
    from toolr0.inference.grammar import grounded_calls_ebnf, row_num_calls
    from toolr0.inference.structured import compile_grammar

    assert row_num_calls(build_ebnf(NO_CALL)) == 0 and row_num_calls(build_ebnf(SPEC)) == 1
    prefix = VALID[: VALID.index("<tool_call_answer>")]
    for p in (prefix, "<question>unreadable"):  # [] needs no menu, so even an unreadable prefix gets it
        g = compile_grammar(tok, grounded_calls_ebnf(p, 0), 320)
        for text, ok in (("[]", True), ('[{"name": "mow_lawn", "arguments": {"height": 3}}]', False)):
            m = xgr.GrammarMatcher(g)
            got = bool(m.accept_string(text + "</tool_call_answer>")) and bool(
                m.accept_token(tok.eos_token_id)
            )
            assert got == ok


_answers = st.one_of(
    st.text(max_size=12),
    st.recursive(
        st.none() | st.booleans() | st.integers() | st.text(max_size=6),
        lambda c: st.lists(c, max_size=3) | st.dictionaries(st.text(max_size=4), c, max_size=2),
        max_leaves=6,
    ).map(json.dumps),
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(_answers)
def test_no_call_grammar_accepts_only_the_empty_list(tok, answer):
    text = NO_CALL_VALID.replace("[]</tool_call_answer>", answer + "</tool_call_answer>")
    assert accepts(tok, NO_CALL, text) == (answer == "[]")


def test_processor_no_call_rows_write_empty_gold_beside_call_rows():
    """A random model, per-row grammars with ground_calls on: the no-call row's gold is [], the other row's a call."""
    cfg = TIGHT.model_copy(update={"ground_calls": True, "question_max_chars": 40})
    specs = [TaskSpec("math", "single_turn", 1, 0), TaskSpec("math", "single_turn", 1, 1)]
    texts, proc = _generate(specs, 1, cfg, seed=2)
    assert proc.rejected == 0 and proc.grounded == 2
    no_call, call = (parse_generator_output(t) for t in texts)
    assert json.loads(no_call.answer_text) == [] and len(json.loads(no_call.tools_text)) == 1
    assert len(json.loads(call.answer_text)) == 1
