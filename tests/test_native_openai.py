"""A native Solver prompt through the OpenAI-compatible backend: the menu goes in the request's `tools`, and a
server whose tool-call parser moved the call into `tool_calls` is read back as the template's blocks."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from toolr0.core.schema import ToolCall
from toolr0.core.solver_format import SolverFormat
from toolr0.inference.base import SamplingParams
from toolr0.inference.openai_backend import OpenAISampler

WEATHER = {"name": "get_weather", "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}


class _ToolServer(BaseHTTPRequestHandler):
    """Answers like `vllm serve --enable-auto-tool-choice --tool-call-parser hermes`: the first tool, called."""

    requests: list[dict] = []

    def log_message(self, *a):
        pass

    def _send(self, obj: dict) -> None:
        data = json.dumps(obj).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        self._send({"data": [{"id": "solver"}]})

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        type(self).requests.append(body)
        name = body["tools"][0]["function"]["name"] if body.get("tools") else None
        msg = (
            {"role": "assistant", "content": None, "tool_calls": [
                {"id": "c1", "type": "function", "function": {"name": name, "arguments": '{"city": "Lisbon"}'}}
            ]}
            if name
            else {"role": "assistant", "content": "no tools offered"}
        )
        self._send({"choices": [{"index": 0, "message": msg, "finish_reason": "tool_calls"}], "usage": {}})


@pytest.fixture
def server():
    _ToolServer.requests = []
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _ToolServer)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/v1"
    httpd.shutdown()
    httpd.server_close()


def test_native_prompt_sends_tools_and_reads_tool_calls(server):
    fmt = SolverFormat("native")
    s = OpenAISampler(base_url=server)
    text = s.generate([fmt.messages("Weather in Lisbon?", [WEATHER])], SamplingParams(n=1, stop=fmt.stop))[0][0]
    req = _ToolServer.requests[-1]
    assert req["messages"] == [{"role": "user", "content": "Weather in Lisbon?"}]
    assert req["tools"][0]["type"] == "function" and "stop" not in req
    p = fmt.parse(text)
    assert p.strict_ok and p.calls == [ToolCall("get_weather", {"city": "Lisbon"})]
