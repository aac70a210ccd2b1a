"""A fake OpenAI-compatible server started as a PROCESS by the managed-server tests (stand-in for `vllm serve`).

Takes `vllm serve`'s command line (model path, --host, --port, --served-model-name or --enable-lora
--lora-modules NAME=PATH, ...), answers GET /v1/models (id = served name, root = the weights it serves) and
POST /v1/chat/completions deterministically: every choice is "4 [<root>] <tool_call_answer>[]</tool_call_answer>"
(a judge score of 4, an empty call list, and the weights it came from). Loopback only. Behaviour switches by env:
FAKE_SERVER_STARTUP_S (delay before listening), FAKE_SERVER_FAIL_START (exit 1 at once, after a message),
FAKE_SERVER_DIE_AFTER (exit 3 after that many chat requests), FAKE_SERVER_IGNORE_TERM (ignore SIGTERM).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("model")
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=8000)
    ap.add_argument("--served-model-name", default=None)
    ap.add_argument("--enable-lora", action="store_true")
    ap.add_argument("--lora-modules", default=None)
    args, _unknown = ap.parse_known_args()
    assert args.host == "127.0.0.1", "the fake server binds loopback only"
    if os.environ.get("FAKE_SERVER_FAIL_START"):
        print("RuntimeError: fake engine failed to initialise (CUDA out of memory)", flush=True)
        sys.exit(1)
    if os.environ.get("FAKE_SERVER_IGNORE_TERM"):
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
    time.sleep(float(os.environ.get("FAKE_SERVER_STARTUP_S", "0")))
    if args.lora_modules:
        served, root = args.lora_modules.split("=", 1)
    else:
        served, root = args.served_model_name or args.model, args.model
    die_after = int(os.environ.get("FAKE_SERVER_DIE_AFTER", "0"))
    state = {"chat": 0}

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *a):
            pass

        def _send(self, code: int, obj: dict) -> None:
            data = json.dumps(obj).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self):
            if self.path == "/v1/models":
                self._send(200, {"object": "list", "data": [{"id": served, "root": root}]})
            else:
                self._send(404, {"error": "not found"})

        def do_POST(self):
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            if self.path != "/v1/chat/completions":
                self._send(404, {"error": "not found"})
                return
            state["chat"] += 1
            if die_after and state["chat"] > die_after:
                print("fatal: fake engine died mid-request", flush=True)
                os._exit(3)
            if body.get("model") != served:
                self._send(404, {"error": {"message": f"The model `{body.get('model')}` does not exist."}})
                return
            print(f"chat model={body['model']} n={body['n']} root={root}", flush=True)
            text = f"4 [{root}] <tool_call_answer>[]</tool_call_answer>"
            choices = [
                {"index": i, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}
                for i in range(int(body.get("n", 1)))
            ]
            self._send(200, {"choices": choices, "usage": {"prompt_tokens": 3, "completion_tokens": 2}})

    httpd = ThreadingHTTPServer((args.host, args.port), Handler)
    print(f"fake server for {root} as {served} on {args.host}:{args.port}", flush=True)
    httpd.serve_forever()


if __name__ == "__main__":
    main()
