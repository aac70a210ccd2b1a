"""Whole-completion parsing: the Solver's answer (spec §7.1-§7.2) and the Generator's four blocks (spec §4).

Built on the text parsers of :mod:`toolr0.core.parsing` (tags, relaxed JSON, call normalisation). Total: a
failure is a ``reason`` string, never an exception. Pure: no engine imports.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from toolr0.core.parsing import (
    ParseResult,
    extract_last_tag,
    extract_unclosed_tail,
    normalise_calls,
    parse_python_calls,
    parse_relaxed,
)
from toolr0.core.schema import ToolCall


@dataclass
class SolverParse:
    """What a Solver completion contains (spec §7.1-§7.3)."""

    think: str | None = None
    answer_text: str | None = None  # content of the last <tool_call_answer>, stripped; None when absent
    parsed: bool = False  # answer_text parses (relaxed, spec §7.2)
    value: Any = None  # the parsed value
    calls: list[ToolCall] = field(default_factory=list)  # normalised calls (failures dropped)
    reason: str = "ok"
    unclosed: bool = False  # the answer came from an unclosed final <tool_call_answer> (allow_unclosed)

    @property
    def normalised(self) -> bool:
        """At least one call normalised (the 0.4 part of the Solver format reward)."""
        return bool(self.calls)

    @property
    def empty_answer(self) -> bool:
        """The answer parses to an explicit empty list: "no call" (used when the gold list is empty)."""
        return self.parsed and isinstance(self.value, list) and len(self.value) == 0


@dataclass
class GeneratorParse:
    """The four blocks of a Generator completion (spec §4); each is the stripped last occurrence or None."""

    think: str | None = None
    question: str | None = None
    tools_text: str | None = None
    answer_text: str | None = None
    reasons: list[str] = field(default_factory=list)

    @property
    def all_tags(self) -> bool:
        """All four tags present and non-empty (I_tags of spec §5.2)."""
        return all(bool(x) for x in (self.think, self.question, self.tools_text, self.answer_text))


def parse_solver_output(text: Any, allow_unclosed: bool = False, python_calls: bool = False) -> SolverParse:
    """Parse a Solver completion: last ``<think>`` and last ``<tool_call_answer>`` (spec §7.2).

    ``allow_unclosed`` (hardened, off = faithful): when no closed answer block parses, accept a final
    ``<tool_call_answer>`` left unclosed at the end of generation, flagged ``unclosed=True``.
    ``python_calls`` (evaluation only): also accept ``[f(a=1)]`` python-call syntax in the answer.
    """
    out = SolverParse()
    if not isinstance(text, str):
        out.reason = "not_text"
        return out
    try:
        out.think = extract_last_tag(text, "think")
        closed = extract_last_tag(text, "tool_call_answer")
        candidates: list[tuple[str, bool]] = []
        if closed:
            candidates.append((closed, False))
        if allow_unclosed:
            tail = extract_unclosed_tail(text, "tool_call_answer")
            if tail:
                candidates.append((tail, True))
        if not candidates:
            out.answer_text = closed
            out.reason = "empty_answer" if closed == "" else "missing_answer"
            return out
        first_reason = ""
        for answer, unclosed in candidates:
            r = parse_relaxed(answer)
            calls = normalise_calls(r.value) if r.ok else []
            if not r.ok and python_calls:
                py = parse_python_calls(answer)
                if py is not None:
                    r = ParseResult(True, [c.to_dict() for c in py], "ok", "python_call")
                    calls = py
            if r.ok:
                out.answer_text, out.parsed, out.value, out.calls, out.unclosed = (
                    answer,
                    True,
                    r.value,
                    calls,
                    unclosed,
                )
                if not calls and not out.empty_answer:
                    out.reason = "no_normalisable_call"
                else:
                    out.reason = "ok"
                return out
            first_reason = first_reason or r.reason
        out.answer_text, out.unclosed = candidates[0]
        out.reason = f"answer_{first_reason}"
        return out
    except Exception as e:  # noqa: BLE001
        out.reason = f"parse_error: {type(e).__name__}"
        return out


def parse_generator_output(text: Any) -> GeneratorParse:
    """Extract the four Generator blocks (spec §4): last occurrence of each tag, stripped."""
    out = GeneratorParse()
    if not isinstance(text, str):
        out.reasons.append("not_text")
        return out
    try:
        out.think = extract_last_tag(text, "think")
        out.question = extract_last_tag(text, "question")
        out.tools_text = extract_last_tag(text, "available_tools")
        out.answer_text = extract_last_tag(text, "tool_call_answer")
        for label, val in (
            ("think", out.think),
            ("question", out.question),
            ("available_tools", out.tools_text),
            ("tool_call_answer", out.answer_text),
        ):
            if val is None:
                out.reasons.append(f"missing_{label}")
            elif not val:
                out.reasons.append(f"empty_{label}")
    except Exception as e:  # noqa: BLE001
        out.reasons.append(f"parse_error: {type(e).__name__}")
    return out
