"""bench/grammar_cost.py's O(sqrt(n)) rewrite of a capped repetition keeps the language exactly."""

from __future__ import annotations

import re
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))

from grammar_cost import blocked  # noqa: E402


def _as_regex(expr: str, rules: list[str]) -> re.Pattern[str]:
    defs = dict(r.split(" ::= ") for r in rules)
    for _ in range(3):
        for name, body in defs.items():
            expr = re.sub(rf"\b{name}\b", f"(?:{body})", expr)
    return re.compile(expr.replace(" ", "") + "$")


def test_blocked_repetition_accepts_exactly_lo_to_hi_characters():
    for lo in range(0, 30):
        for hi in range(max(lo, 1), 70):
            expr, rules = blocked("a", lo, hi, "x")
            rx = _as_regex(expr, rules)
            assert [n for n in range(80) if rx.match("a" * n)] == list(range(lo, hi + 1)), (lo, hi)


def test_small_repetitions_stay_as_written():
    assert blocked("[a-z]", 1, 6, "x") == ("[a-z]{1,6}", [])
