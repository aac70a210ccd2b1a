"""Grouped-query decode attention without repeating the KV cache (inference/attention.py): the same tokens as
transformers' SDPA path under a seed, and really used for one-token steps only."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from toolr0.inference import attention  # noqa: E402
from toolr0.inference.base import SamplingParams  # noqa: E402
from toolr0.inference.hf import HFSampler  # noqa: E402
from toolr0.inference.models import tiny_random_model  # noqa: E402

pytestmark = pytest.mark.usefixtures("torch_one_thread")

PROMPTS = [[{"role": "user", "content": "hello " * k}] for k in (1, 7, 3, 12)]


def test_same_tokens_as_sdpa_and_only_decode_steps_take_the_grouped_path(monkeypatch):
    model, tok = tiny_random_model(seed=0)
    assert model.config.num_key_value_heads < model.config.num_attention_heads  # the tiny model has GQA
    params = [
        SamplingParams(n=1, temperature=0.0, max_new_tokens=16),
        SamplingParams(n=3, temperature=1.0, max_new_tokens=16, seed=4, stop=("a",)),
    ]
    plain = [HFSampler(model, tok, batch_size=4).generate_detailed(PROMPTS, p).texts() for p in params]
    calls = {"grouped": 0, "fallback": 0}
    import transformers.integrations.sdpa_attention as sd

    original = sd.sdpa_attention_forward

    def counting(*a, **k):
        calls["fallback"] += 1
        return original(*a, **k)

    monkeypatch.setattr(sd, "sdpa_attention_forward", counting)
    real_sdpa_fn = torch.nn.functional.scaled_dot_product_attention

    def counting_sdpa(q, *a, **k):
        if q.dim() == 4 and q.shape[2] == model.config.num_attention_heads // model.config.num_key_value_heads:
            calls["grouped"] += 1
        return real_sdpa_fn(q, *a, **k)

    monkeypatch.setattr(torch.nn.functional, "scaled_dot_product_attention", counting_sdpa)
    assert attention.apply(model) and model.config._attn_implementation == attention.NAME
    grouped = [HFSampler(model, tok, batch_size=4).generate_detailed(PROMPTS, p).texts() for p in params]
    assert grouped == plain
    assert calls["grouped"] > 0 and calls["fallback"] > 0  # decode steps grouped, prefills on transformers' SDPA
    assert not attention.apply(model)  # already switched


def test_models_without_grouped_heads_are_left_alone():
    model, _ = tiny_random_model(seed=0)
    model.config.num_key_value_heads = model.config.num_attention_heads
    assert not attention.apply(model)


def test_load_model_switches_only_when_asked(tiny_model_dir):
    from toolr0.inference.models import load_model

    plain, _ = load_model(str(tiny_model_dir), device="cpu")
    grouped, _ = load_model(str(tiny_model_dir), device="cpu", cpu_attention="grouped")
    assert plain.config._attn_implementation == "sdpa"
    assert grouped.config._attn_implementation == attention.NAME
