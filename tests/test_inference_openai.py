"""The OpenAI-compatible HTTP backend against a tiny fake chat-completions server on 127.0.0.1."""

from __future__ import annotations

import pytest

from _fake_openai import FakeOpenAIHandler, completion, not_found, serve
from toolr0.errors import ModelUnavailableError, ToolR0Error
from toolr0.inference.base import Sampler, SamplingParams
from toolr0.inference.openai_backend import OpenAISampler


class _Handler(FakeOpenAIHandler):
    models = [{"id": "base-model"}, {"id": "solver"}]

    def chat(self, body):
        if body["model"] == "missing-adapter":
            return not_found("missing-adapter")
        q = body["messages"][-1]["content"]
        # content echoes the request so the test can check the mapping; the stop string is kept
        texts = [
            f"{body['model']}|{q}|{i}|{body.get('seed')}<tool_call_answer>[]</tool_call_answer> trailing"
            for i in range(body["n"])
        ]
        reply = completion(texts, {"prompt_tokens": 7, "completion_tokens": 5 * body["n"]})
        reply["choices"].reverse()  # the sampler re-orders choices by index
        return 200, reply


@pytest.fixture
def server():
    with serve(_Handler) as url:
        yield url


def test_chat_completions_mapping(server):
    s = OpenAISampler(base_url=server, api_key="sk-test")
    assert isinstance(s, Sampler)
    prompts = [[{"role": "user", "content": "q1"}], [{"role": "user", "content": "q2"}]]
    params = SamplingParams(
        n=3, temperature=0.7, top_p=0.9, max_new_tokens=33, stop=("</tool_call_answer>",), seed=5
    )
    out = s.generate(prompts, params)
    assert [len(r) for r in out] == [3, 3]
    # choices re-ordered by index, the text cut after the stop string (kept), seeds differ per prompt
    assert out[0] == [f"base-model|q1|{i}|5<tool_call_answer>[]</tool_call_answer>" for i in range(3)]
    assert out[1][2] == "base-model|q2|2|6<tool_call_answer>[]</tool_call_answer>"
    req = sorted(_Handler.requests, key=lambda r: r["messages"][0]["content"])[0]
    assert req["n"] == 3 and req["temperature"] == 0.7 and req["top_p"] == 0.9 and req["max_tokens"] == 33
    assert req["stop"] == ["</tool_call_answer>"] and req["include_stop_str_in_output"] is True
    assert req["_auth"] == "Bearer sk-test"
    assert s.last_stats.prompt_tokens == 14 and s.last_stats.completion_tokens == 30


def test_adapter_is_sent_as_model_and_errors_are_one_line(server):
    s = OpenAISampler(base_url=server, model="base-model", vllm_extensions=False)
    out = s.generate([[{"role": "user", "content": "x"}]], SamplingParams(n=1, seed=None), adapter="solver")
    assert out[0][0].startswith("solver|x|0|None")
    assert "include_stop_str_in_output" not in _Handler.requests[-1] and "seed" not in _Handler.requests[-1]
    with pytest.raises(ToolR0Error, match="HTTP 404"):
        s.generate([[{"role": "user", "content": "x"}]], SamplingParams(), adapter="missing-adapter")


def test_unreachable_server_is_model_unavailable():
    s = OpenAISampler(base_url="http://127.0.0.1:9/v1", timeout_s=2)
    with pytest.raises(ModelUnavailableError, match="cannot reach"):
        s.generate([[{"role": "user", "content": "x"}]], SamplingParams())


def test_health_check_lists_models_and_fails_in_one_line_naming_the_url(server):
    assert OpenAISampler(base_url=server).health_check() == ["base-model", "solver"]
    with pytest.raises(ModelUnavailableError) as err:
        OpenAISampler(base_url="http://127.0.0.1:9/v1").health_check(timeout_s=2)
    assert "http://127.0.0.1:9/v1" in str(err.value) and "\n" not in str(err.value)


def test_generator_training_fails_at_start_up_when_the_server_is_unreachable(tmp_path):
    """Checked before any model is loaded (the model name here does not exist)."""
    from toolr0.config import load_config
    from toolr0.training.run import train_role

    cfg = load_config(
        None,
        {
            "model.name": str(tmp_path / "no-such-model"),
            "inference.backend": "openai",
            "inference.base_url": "http://127.0.0.1:9/v1",
        },
    )
    with pytest.raises(ModelUnavailableError, match="health check"):
        train_role("generator", cfg, tmp_path / "gen")
