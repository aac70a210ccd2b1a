"""A native Solver prompt through the OpenAI-compatible backend: the menu goes in the request's `tools`, and a
server whose tool-call parser moved the call into `tool_calls` is read back as the template's blocks."""

from __future__ import annotations

import pytest

from _fake_openai import FakeOpenAIHandler, completion, serve
from toolr0.core.schema import ToolCall
from toolr0.core.solver_format import SolverFormat
from toolr0.inference.base import SamplingParams
from toolr0.inference.openai_backend import OpenAISampler

WEATHER = {
    "name": "get_weather",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
}


class _ToolServer(FakeOpenAIHandler):
    """Answers like `vllm serve --enable-auto-tool-choice --tool-call-parser hermes`: the first tool, called."""

    models = [{"id": "solver"}]

    def chat(self, body):
        name = body["tools"][0]["function"]["name"] if body.get("tools") else None
        call = {"id": "c1", "type": "function", "function": {"name": name, "arguments": '{"city": "Lisbon"}'}}
        msg = (
            {"role": "assistant", "content": None, "tool_calls": [call]}
            if name
            else {"role": "assistant", "content": "no tools offered"}
        )
        return 200, completion([msg], finish_reason="tool_calls")


@pytest.fixture
def server():
    with serve(_ToolServer) as url:
        yield url


def test_native_prompt_sends_tools_and_reads_tool_calls(server):
    fmt = SolverFormat("native")
    s = OpenAISampler(base_url=server)
    text = s.generate([fmt.messages("Weather in Lisbon?", [WEATHER])], SamplingParams(n=1, stop=fmt.stop))[0][
        0
    ]
    req = _ToolServer.requests[-1]
    assert req["messages"] == [{"role": "user", "content": "Weather in Lisbon?"}]
    assert req["tools"][0]["type"] == "function" and "stop" not in req
    p = fmt.parse(text)
    assert p.strict_ok and p.calls == [ToolCall("get_weather", {"city": "Lisbon"})]
