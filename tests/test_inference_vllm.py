"""vLLM backend: the import guard and the sampling-parameter mapping (vLLM itself needs a GPU)."""

from __future__ import annotations

import builtins
import sys
import types

import pytest

from toolr0.errors import ToolR0Error
from toolr0.inference.base import SamplingParams
from toolr0.inference.vllm_backend import VLLMSampler, import_vllm, vllm_sampling_kwargs


def test_missing_vllm_is_a_clear_error(monkeypatch):
    real_import = builtins.__import__

    def no_vllm(name, *a, **k):
        if name == "vllm" or name.startswith("vllm."):
            raise ImportError("No module named 'vllm'")
        return real_import(name, *a, **k)

    monkeypatch.delitem(sys.modules, "vllm", raising=False)
    monkeypatch.setattr(builtins, "__import__", no_vllm)
    with pytest.raises(ToolR0Error, match=r"pip install 'toolr0\[vllm\]'"):
        import_vllm()
    with pytest.raises(ToolR0Error, match="vllm"):
        VLLMSampler("some/model")


def test_sampling_params_mapping():
    kw = vllm_sampling_kwargs(
        SamplingParams(
            n=8, temperature=0.7, top_p=0.95, max_new_tokens=100, stop=("</tool_call_answer>",), seed=3
        )
    )
    assert kw == {
        "n": 8,
        "temperature": 0.7,
        "top_p": 0.95,
        "top_k": -1,
        "max_tokens": 100,
        "seed": 3,
        "repetition_penalty": 1.0,
        "include_stop_str_in_output": True,
        "stop": ["</tool_call_answer>"],
    }
    greedy = vllm_sampling_kwargs(SamplingParams(temperature=0.0, top_k=20))
    assert greedy["temperature"] == 0.0 and greedy["top_k"] == 20 and "stop" not in greedy


def test_generate_with_a_fake_engine(monkeypatch):
    """The result assembly and LoRA request plumbing, with stand-ins for vllm.LLM and its outputs."""
    seen = {}

    class FakeLLM:
        def chat(self, prompts, sp, lora_request=None, use_tqdm=False):
            seen["sp"], seen["lora"] = sp, lora_request
            out = types.SimpleNamespace(
                text="<tool_call_answer>[]</tool_call_answer>x", token_ids=[1, 2, 3], finish_reason="stop"
            )
            return [types.SimpleNamespace(prompt_token_ids=[0] * 4, outputs=[out] * sp["n"]) for _ in prompts]

    class FakeLoRA:
        def __init__(self, name, idx, path):
            self.args = (name, idx, path)

    fake = types.ModuleType("vllm")
    fake.SamplingParams = lambda **kw: kw
    fake_lora = types.ModuleType("vllm.lora.request")
    fake_lora.LoRARequest = FakeLoRA
    monkeypatch.setitem(sys.modules, "vllm", fake)
    monkeypatch.setitem(sys.modules, "vllm.lora", types.ModuleType("vllm.lora"))
    monkeypatch.setitem(sys.modules, "vllm.lora.request", fake_lora)
    s = VLLMSampler("m", llm=FakeLLM())
    s.add_adapter("solver", "/ckpt/solver")
    res = s.generate_detailed(
        [[{"role": "user", "content": "q"}]] * 2,
        SamplingParams(n=2, stop=("</tool_call_answer>",)),
        adapter="solver",
    )
    assert res.texts() == [["<tool_call_answer>[]</tool_call_answer>"] * 2] * 2
    assert seen["lora"].args == ("solver", 1, "/ckpt/solver") and seen["sp"]["include_stop_str_in_output"]
    assert res.stats.completion_tokens == 12 and res.stats.prompt_tokens == 8
    with pytest.raises(ToolR0Error, match="unknown adapter"):
        s.generate([[{"role": "user", "content": "q"}]], SamplingParams(), adapter="other")
