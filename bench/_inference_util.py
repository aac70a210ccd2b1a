"""Shared helpers of the inference benchmarks: made-up Solver tasks (no benchmark data), timing, and
appending a section to bench/RESULTS.md."""

from __future__ import annotations

import os
import platform
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from toolr0.core.schema import Task, Tool, ToolCall

RESULTS = Path(__file__).with_name("RESULTS.md")

_TOOLS = [
    Tool(
        "get_weather",
        "Get the current weather for a city",
        {
            "city": {"type": "string", "description": "City name"},
            "unit": {"type": "string", "description": "celsius or fahrenheit"},
        },
        ["city"],
    ),
    Tool(
        "get_stock_price",
        "Get the latest price of a stock",
        {"ticker": {"type": "string", "description": "Ticker symbol"}},
        ["ticker"],
    ),
    Tool(
        "convert_currency",
        "Convert an amount between currencies",
        {
            "amount": {"type": "number", "description": "Amount"},
            "from_currency": {"type": "string", "description": "ISO code"},
            "to_currency": {"type": "string", "description": "ISO code"},
        },
        ["amount", "from_currency", "to_currency"],
    ),
    Tool(
        "book_table",
        "Book a restaurant table",
        {
            "restaurant": {"type": "string", "description": "Restaurant name"},
            "people": {"type": "integer", "description": "Party size"},
            "time": {"type": "string", "description": "HH:MM"},
        },
        ["restaurant", "people", "time"],
    ),
]
_CITIES = ["Paris", "Lyon", "Oslo", "Lima", "Quito", "Hanoi", "Perth", "Cairo"]


def solver_tasks(n: int) -> list[Task]:
    """n distinct, made-up single-call tasks with 2-4 tool menus (weather / stocks / currency / booking)."""
    out = []
    for i in range(n):
        city = _CITIES[i % len(_CITIES)]
        kind = (i // len(_CITIES)) % 4
        menu = [_TOOLS[kind]] + [t for t in _TOOLS if t is not _TOOLS[kind]][: 1 + i % 3]
        if kind == 0:
            q, call = (
                f"What's the weather in {city} in celsius?",
                ToolCall("get_weather", {"city": city, "unit": "celsius"}),
            )
        elif kind == 1:
            tick = ["ACME", "GLOBX", "INIT", "UMBR"][i % 4]
            q, call = (
                f"What is the current price of {tick} stock?",
                ToolCall("get_stock_price", {"ticker": tick}),
            )
        elif kind == 2:
            amt = 10 * (i + 1)
            q, call = (
                f"Convert {amt} EUR to USD for my trip to {city}.",
                ToolCall("convert_currency", {"amount": amt, "from_currency": "EUR", "to_currency": "USD"}),
            )
        else:
            q, call = (
                f"Book a table for {2 + i % 5} people at Chez {city} at 19:30.",
                ToolCall("book_table", {"restaurant": f"Chez {city}", "people": 2 + i % 5, "time": "19:30"}),
            )
        out.append(Task(q, menu, [call], domain="bench"))
    return out


class Timer:
    def __enter__(self) -> Timer:
        self.t0 = time.perf_counter()
        return self

    def __exit__(self, *exc: object) -> None:
        self.s = time.perf_counter() - self.t0


def cpu_line() -> str:
    """The CPU model and its SIMD flags (timings depend on them: AVX2-only, AVX-512, AMX)."""
    import subprocess

    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, check=False).stdout
    except OSError:
        return "unknown CPU"
    name = next((ln.split(":", 1)[1].strip() for ln in out.splitlines() if ln.startswith("Model name")), "?")
    flags = next((ln.split(":", 1)[1].split() for ln in out.splitlines() if ln.startswith("Flags")), [])
    simd = [f for f in flags if f.startswith(("avx", "amx")) or f in ("fma", "f16c")]
    return f"{name}, flags {' '.join(simd) or 'none of avx/amx'}"


def machine() -> str:
    import torch

    return (
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}, "
        f"{torch.get_num_threads()} threads"
    )


def append_results(title: str, lines: list[str]) -> None:
    """Append a dated section with the exact command to bench/RESULTS.md."""
    cmd = (
        "OMP_NUM_THREADS="
        + os.environ.get("OMP_NUM_THREADS", "?")
        + " flock /tmp/toolr0_heavy.lock python "
        + " ".join([os.path.relpath(sys.argv[0], RESULTS.parent.parent), *sys.argv[1:]])
    )
    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    text = f"\n## {title} ({stamp})\n\nCommand: `{cmd}`  \nMachine: {machine()}\n\n" + "\n".join(lines) + "\n"
    if not RESULTS.exists():
        RESULTS.write_text(
            "# Benchmark results\n\nEach section is appended by the script that measured it.\n"
        )
    with open(RESULTS, "a", encoding="utf-8") as fh:
        fh.write(text)


def solver_batch(sampler: Any, n: int) -> tuple[Any, Any]:
    """(input_ids, attention_mask) of ``n`` Solver prompts from :func:`solver_tasks`, rendered by ``sampler`` and
    left-padded into one batch."""
    from toolr0.core.prompts import solver_messages

    prompts = [sampler.render(solver_messages(t.question, t.tools)) for t in solver_tasks(n)]
    enc = sampler.tokenizer(prompts, return_tensors="pt", padding=True, add_special_tokens=False)
    return enc["input_ids"], enc["attention_mask"]


class PeakRSS:
    """Peak resident memory (GB) of this process while a block runs: /proc/self/statm sampled every 20 ms by a
    thread (Linux; ``peak_gb`` stays 0.0 elsewhere). Unlike ``ru_maxrss`` it is a per-block peak, so two phases
    of one process can be compared."""

    def __init__(self, interval_s: float = 0.02) -> None:
        self.interval_s, self.peak_gb, self.start_gb = interval_s, 0.0, 0.0

    @staticmethod
    def rss_gb() -> float:
        try:
            pages = int(Path("/proc/self/statm").read_text().split()[1])
        except (OSError, ValueError, IndexError):
            return 0.0
        return pages * os.sysconf("SC_PAGE_SIZE") / 1e9

    def __enter__(self) -> PeakRSS:
        import threading

        self.start_gb = self.peak_gb = self.rss_gb()
        self._stop = threading.Event()

        def watch() -> None:
            while not self._stop.wait(self.interval_s):
                self.peak_gb = max(self.peak_gb, self.rss_gb())

        self._thread = threading.Thread(target=watch, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *_: Any) -> None:
        self._stop.set()
        self._thread.join()
        self.peak_gb = max(self.peak_gb, self.rss_gb())
