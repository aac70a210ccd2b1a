"""A fake OpenAI-compatible server started as a PROCESS by the managed-server tests (stand-in for `vllm serve`).

Takes `vllm serve`'s command line (model path, --host, --port, --served-model-name or --enable-lora
--lora-modules NAME=PATH, ...), answers GET /v1/models (id = served name, root = the weights it serves) and
POST /v1/chat/completions deterministically: every choice is "4 [<root>] <tool_call_answer>[]</tool_call_answer>"
(a judge score of 4, an empty call list, and the weights it came from); with --play (in server.command), Generator
and Solver prompts get role-like answers instead (see `play`), so a self-play loop gets a non-empty curriculum.
Loopback only. Behaviour switches by env: FAKE_SERVER_STARTUP_S (delay before listening), FAKE_SERVER_FAIL_START
(exit 1 at once, after a message), FAKE_SERVER_DIE_AFTER (exit 3 after that many chat requests),
FAKE_SERVER_EXIT_LAG_S (when dying, close the connection first and exit that many seconds later, as a crashing
engine's teardown does), FAKE_SERVER_IGNORE_TERM (ignore SIGTERM). The HTTP handler is the shared one of
tests/_fake_openai.py.
"""

from __future__ import annotations

import argparse
import os
import re
import signal
import socket
import sys
import time
from http.server import ThreadingHTTPServer

from _fake_openai import FakeOpenAIHandler, completion, not_found

CITIES = ["Paris", "Lima", "Oslo", "Cairo", "Quito", "Hanoi", "Dakar", "Perth"]
TOOL = (
    '[{"name": "book_table", "description": "Books a restaurant table in a city.", "parameters": {"city": '
    '{"type": "string", "description": "City name"}, "guests": {"type": "integer", "description": "Number of '
    'guests"}}, "required": ["city", "guests"]}]'
)
QUESTION = re.compile(r"book a table for (\d+) guests at a bistro in (\w+) tonight")


def _call(city: str, guests: int) -> str:
    return f'[{{"name": "book_table", "arguments": {{"city": "{city}", "guests": {guests}}}}}]'


def play(body: dict, n: int, request_no: int) -> list[str] | None:
    """--play: answer as the two roles would, so a loop on this server gets a real curriculum. A Generator
    prompt (its system message asks for a <question> block) gets valid booking tasks (verify_task passes them),
    a different city and party size per choice and request; a Solver prompt on such a task gets the gold call
    in its even-numbered choices and a wrong city in the odd ones (p̂ = 1/2 for n = 2, 1 for n = 1); anything
    else (judge, difficulty label) gets None: the default reply, whose leading 4 is a judge score."""
    msgs = body.get("messages") or []
    system = " ".join(str(m.get("content") or "") for m in msgs if m.get("role") == "system")
    user = str(msgs[-1].get("content") or "") if msgs else ""
    if "<question>" in system:
        out = []
        for i in range(n):
            j = request_no * n + i
            city, guests = CITIES[j % len(CITIES)], 2 + j % 5
            out.append(
                f"<think>book</think><question>Please book a table for {guests} guests at a bistro in {city} "
                f"tonight.</question><available_tools>{TOOL}</available_tools>"
                f"<tool_call_answer>{_call(city, guests)}</tool_call_answer>"
            )
        return out
    asked = QUESTION.search(user)
    if "judge" in system.lower() or "difficulty" in system.lower() or not asked:
        return None
    guests, city = int(asked.group(1)), asked.group(2)
    return [
        f"<think>b</think><tool_call_answer>{_call(city if i % 2 == 0 else 'Atlantis', guests)}</tool_call_answer>"
        for i in range(n)
    ]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("model")
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=8000)
    ap.add_argument("--served-model-name", default=None)
    ap.add_argument("--enable-lora", action="store_true")
    ap.add_argument("--lora-modules", default=None)
    ap.add_argument("--play", action="store_true")
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
            n = int(body.get("n", 1))
            texts = play(body, n, len(self.requests)) if args.play else None
            if texts is None:
                texts = [f"4 [{root}] <tool_call_answer>[]</tool_call_answer>"] * n
            return 200, completion(texts, {"prompt_tokens": 3, "completion_tokens": 2})

    httpd = ThreadingHTTPServer((args.host, args.port), Handler)
    print(f"fake server for {root} as {served} on {args.host}:{args.port}", flush=True)
    httpd.serve_forever()


if __name__ == "__main__":
    main()
