"""The HF backend's decode loop that drops finished rows: a speed change only, so under one seed it must
give exactly the tokens of ``model.generate()`` (``HFSampler(drop_finished=False)``), for greedy and sampled
decoding, n > 1, shared prefixes, stop strings, the model's own generation config and grammar processors,
while decoding fewer row-steps."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from toolr0.inference.base import SamplingParams  # noqa: E402
from toolr0.inference.hf import HFSampler  # noqa: E402
from toolr0.inference.models import tiny_random_model  # noqa: E402

pytestmark = pytest.mark.usefixtures("torch_one_thread")

SYSTEM = {"role": "system", "content": "You call tools. Answer with one JSON call and nothing else."}
PROMPTS = [[SYSTEM, {"role": "user", "content": "book " * k}] for k in (1, 9, 4, 2, 6)]
PLAIN = [[{"role": "user", "content": "hello " * k}] for k in (1, 7, 3, 12)]


@pytest.fixture(scope="module")
def tiny():
    return tiny_random_model(seed=0)


def _both(model, tok, prompts, params, **kw):
    on = HFSampler(model, tok, drop_finished=True, **kw).generate_detailed(prompts, params)
    off = HFSampler(model, tok, drop_finished=False, **kw).generate_detailed(prompts, params)
    return on, off


def _same(a, b):
    assert a.texts() == b.texts()
    assert [[(c.finish_reason, c.completion_tokens) for c in r] for r in a.completions] == [
        [(c.finish_reason, c.completion_tokens) for c in r] for r in b.completions
    ]
    assert a.stats.completion_tokens == b.stats.completion_tokens


@pytest.mark.parametrize(
    "params",
    [
        SamplingParams(n=1, temperature=0.0, max_new_tokens=24),
        SamplingParams(n=3, temperature=1.0, max_new_tokens=24, seed=4),
        SamplingParams(n=2, temperature=0.7, top_p=0.9, top_k=50, max_new_tokens=24, seed=9, stop=("a", "e")),
        SamplingParams(n=1, temperature=1.0, max_new_tokens=20, seed=2, repetition_penalty=1.3),
    ],
    ids=["greedy", "sampled-n3", "top-p-k-stops", "repetition-penalty"],
)
@pytest.mark.parametrize("prompts", [PROMPTS, PLAIN], ids=["shared-prefix", "plain"])
def test_same_tokens_as_generate_under_a_seed(tiny, params, prompts):
    on, off = _both(*tiny, prompts, params, batch_size=3)
    _same(on, off)
    assert len({c.text for r in on.completions for c in r}) > 1


def test_finished_rows_leave_the_batch(tiny):
    """Rows that stop early are no longer decoded: fewer row-steps for the same tokens, fill reported."""
    model, tok = tiny
    params = SamplingParams(n=4, temperature=1.0, max_new_tokens=40, seed=3, stop=("a",))
    on, off = _both(model, tok, PLAIN, params, batch_size=4)
    _same(on, off)
    reasons = [c.finish_reason for r in on.completions for c in r]
    assert "stop" in reasons and "length" in reasons  # rows ended at different steps
    assert on.stats.decoded_row_steps < off.stats.decoded_row_steps
    assert on.stats.completion_tokens <= on.stats.decoded_row_steps
    assert 0 < off.stats.row_fill < on.stats.row_fill <= 1.0


def test_model_generation_config_defaults_are_applied_as_generate_does(tiny):
    """Unset knobs come from the model's generation config (Qwen ships top_k 20, top_p 0.8, repetition 1.05)."""
    model, tok = tiny
    saved = model.generation_config.to_dict()
    model.generation_config.top_k = 20
    model.generation_config.top_p = 0.8
    model.generation_config.repetition_penalty = 1.05
    try:
        params = SamplingParams(n=2, temperature=0.9, max_new_tokens=16, seed=11, stop=("o",))
        _same(*_both(model, tok, PLAIN, params, batch_size=4))
    finally:
        for k, v in saved.items():
            setattr(model.generation_config, k, v)


def test_grammar_constrained_rows_match_generate(tiny_model_and_tokenizer):
    """Grammar processors see the full batch (finished rows padded as generate() pads them)."""
    from toolr0.core.spec import TaskSpec
    from toolr0.inference.grammar import StructuredConfig
    from toolr0.inference.structured import constrained

    model, tok = tiny_model_and_tokenizer
    cfg = StructuredConfig(  # small caps keep the random model's (cap-length) outputs short
        enabled=True, think_max_chars=10, question_max_chars=16, name_max_chars=6, description_max_chars=6,
        value_max_chars=6, number_max_digits=4, max_params=2, max_args=2,
    )
    specs = [TaskSpec("math", "single_turn", 1, 1), TaskSpec("news", "single_turn", 2, 2)]
    prompts = [[{"role": "user", "content": f"task {i} " * (i + 1)}] for i in range(2)]
    params = SamplingParams(n=2, temperature=1.0, max_new_tokens=2500, seed=3)
    outs = []
    for drop in (True, False):
        sampler = HFSampler(model, tok, batch_size=2, drop_finished=drop)
        with constrained(sampler, specs, cfg):
            outs.append(sampler.generate_detailed(prompts, params))
    _same(*outs)
    assert all(t.endswith("</tool_call_answer>") for r in outs[0].texts() for t in r)
    assert outs[0].stats.decoded_row_steps <= outs[1].stats.decoded_row_steps
