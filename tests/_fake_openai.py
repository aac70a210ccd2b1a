"""The one fake OpenAI-compatible HTTP handler of the tests (loopback only).

Subclass :class:`FakeOpenAIHandler`, set ``models`` (the ``GET /v1/models`` entries) and override
:meth:`FakeOpenAIHandler.chat` (one ``POST /v1/chat/completions`` body -> HTTP code and JSON reply); every chat
body is recorded in the class's ``requests`` (with the request's ``Authorization`` header as ``_auth``).
:func:`serve` runs a handler in a thread for in-process tests; tests/fake_openai_server.py runs one as a process
standing in for ``vllm serve``.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class FakeOpenAIHandler(BaseHTTPRequestHandler):
    models: list[dict[str, Any]] = []
    requests: list[dict[str, Any]] = []

    def log_message(self, *a: Any) -> None:  # keep test output clean
        pass

    def send_json(self, code: int, obj: Any) -> None:
        data = json.dumps(obj).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        if self.path == "/v1/models":
            self.send_json(200, {"object": "list", "data": list(self.models)})
        else:
            self.send_json(404, {"error": "not found"})

    def do_POST(self) -> None:  # noqa: N802
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        if self.path != "/v1/chat/completions":
            self.send_json(404, {"error": "not found"})
            return
        body["_auth"] = self.headers.get("Authorization")
        type(self).requests.append(body)
        self.send_json(*self.chat(body))

    def chat(self, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        """(HTTP code, reply) for one chat-completions request; the default answers an empty call list."""
        return 200, completion(["<tool_call_answer>[]</tool_call_answer>"] * int(body.get("n", 1)))


def completion(
    contents: list[Any], usage: dict[str, int] | None = None, finish_reason: str = "stop"
) -> dict[str, Any]:
    """A chat-completions reply with one choice per content (a string, or a whole assistant message dict)."""
    choices = [
        {
            "index": i,
            "message": c if isinstance(c, dict) else {"role": "assistant", "content": c},
            "finish_reason": finish_reason,
        }
        for i, c in enumerate(contents)
    ]
    return {"choices": choices, "usage": usage or {}}


def not_found(model: Any) -> tuple[int, dict[str, Any]]:
    """vLLM's reply to a request naming a model (or adapter) it does not serve."""
    return 404, {"error": {"message": f"The model `{model}` does not exist."}}


@contextmanager
def serve(handler: type[FakeOpenAIHandler]) -> Iterator[str]:
    """Serve ``handler`` on 127.0.0.1 (a free port) in a thread; yields the base URL (``.../v1``)."""
    handler.requests = []
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}/v1"
    finally:
        httpd.shutdown()
        httpd.server_close()
