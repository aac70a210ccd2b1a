"""A fake OpenAI-compatible server started as a PROCESS by the managed-server tests (stand-in for `vllm serve`).

Takes `vllm serve`'s command line (model path, --host, --port, --served-model-name or --enable-lora
--lora-modules NAME=PATH, ...), answers GET /v1/models (id = served name, root = the weights it serves) and
POST /v1/chat/completions deterministically: every choice is "4 [<root>] <tool_call_answer>[]</tool_call_answer>"
(a judge score of 4, an empty call list, and the weights it came from). Loopback only. Behaviour switches by env:
FAKE_SERVER_STARTUP_S (delay before listening), FAKE_SERVER_FAIL_START (exit 1 at once, after a message),
FAKE_SERVER_DIE_AFTER (exit 3 after that many chat requests), FAKE_SERVER_EXIT_LAG_S (when dying, close the
connection first and exit that many seconds later, as a crashing engine's teardown does), FAKE_SERVER_IGNORE_TERM (ignore SIGTERM). The HTTP
handler is the shared one of tests/_fake_openai.py.
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import sys
import time
from http.server import ThreadingHTTPServer

from _fake_openai import FakeOpenAIHandler, completion, not_found


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
    exit_lag_s = float(os.environ.get("FAKE_SERVER_EXIT_LAG_S", "0"))

    class Handler(FakeOpenAIHandler):
        models = [{"id": served, "root": root}]

        def chat(self, body):
            if die_after and len(self.requests) > die_after:
                print("fatal: fake engine died mid-request", flush=True)
                if exit_lag_s:  # a real crash drops the connection before its exit code exists
                    self.connection.shutdown(socket.SHUT_RDWR)
                    time.sleep(exit_lag_s)
                os._exit(3)
            if body.get("model") != served:
                return not_found(body.get("model"))
            print(f"chat model={body['model']} n={body['n']} root={root}", flush=True)
            text = f"4 [{root}] <tool_call_answer>[]</tool_call_answer>"
            return 200, completion(
                [text] * int(body.get("n", 1)), {"prompt_tokens": 3, "completion_tokens": 2}
            )

    httpd = ThreadingHTTPServer((args.host, args.port), Handler)
    print(f"fake server for {root} as {served} on {args.host}:{args.port}", flush=True)
    httpd.serve_forever()


if __name__ == "__main__":
    main()
