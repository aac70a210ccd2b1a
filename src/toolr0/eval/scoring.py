"""Score one Solver completion against gold calls (spec §9.1): exact match, P/R/F1 and an error reason.

Headline: whole-sample exact match of the call list, order-free, with the evaluation's value equality (loose
number types, whitespace normalised; :func:`toolr0.core.matching.eval_values_equal`), via
:func:`toolr0.core.matching.exact_match`. Secondary: tool/parameter P/R/F1 (:func:`toolr0.core.matching.prf`).
Every wrong item gets one reason, checked in this order:

``no_answer_tag`` (no ``<tool_call_answer>`` at all), ``unclosed`` (opened but never closed), ``empty_answer``,
``unparseable``, ``no_call`` (parses, but no call normalises, or ``[]`` when gold has calls), ``malformed_call``
(a list mixing calls with elements that are no call), ``unexpected_call`` (gold is empty), ``wrong_count``,
``wrong_name``, ``missing_arg``, ``extra_arg``, ``wrong_value``.

A second, lenient parse (unclosed final answer block and python-call syntax accepted) is recorded as a
diagnostic only; it never changes the headline verdict. In the native Solver format (docs/solver_format.md)
the headline reads the call however it was wrapped and ``strict_correct`` counts the template's own blocks
only. Pure: no engine imports.
"""

from __future__ import annotations

import itertools
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from toolr0.core.completions import SolverParse, parse_solver_output
from toolr0.core.matching import eval_values_equal, exact_match, prf
from toolr0.core.native import parse_native_output
from toolr0.core.parsing import normalise_call
from toolr0.core.schema import ToolCall
from toolr0.core.solver_format import DEFAULT_SOLVER_FORMAT

#: Every reason a verdict can carry (the fuzz test checks that no other appears).
REASONS = (
    "ok",
    "no_answer_tag",
    "unclosed",
    "empty_answer",
    "unparseable",
    "no_call",
    "malformed_call",
    "unexpected_call",
    "wrong_count",
    "wrong_name",
    "missing_arg",
    "extra_arg",
    "wrong_value",
    "wrong_args",
)

@dataclass
class Verdict:
    """The outcome for one item."""

    correct: bool
    reason: str
    detail: str = ""
    pred: list[ToolCall] = field(default_factory=list)
    metrics: dict[str, float] = field(default_factory=dict)
    lenient_correct: bool = False
    strict_correct: bool | None = None  # native format: right counting only the template's own blocks

    def to_dict(self) -> dict[str, Any]:
        return {
            "correct": self.correct,
            "reason": self.reason,
            "detail": self.detail,
            "pred": [c.to_dict() for c in self.pred],
            "metrics": dict(self.metrics),
            "lenient_correct": self.lenient_correct,
            "strict_correct": self.strict_correct,
        }


def format_reason(text: str, p: SolverParse) -> str | None:
    """Reason when the answer block is missing/unclosed/empty/unparseable, else None."""
    if p.answer_text is None:
        if p.reason != "missing_answer":
            return "unparseable"
        return "unclosed" if parse_solver_output(text, allow_unclosed=True).unclosed else "no_answer_tag"
    if p.answer_text == "":
        return "empty_answer"
    if not p.parsed:
        return "unparseable"
    return None


def same_value(a: Any, b: Any) -> bool:
    """Value equality of the evaluation (the one :func:`matching.exact_match` applies)."""
    return eval_values_equal(a, b)


def malformed_elements(p: SolverParse) -> str | None:
    """Detail when the parsed answer is a list holding an element that is no call (``[call, 17, "junk"]``).

    Deliberate: the reward drops such elements (spec §7.3), but evaluation must not score a partly garbage
    answer as right, so it is wrong with reason ``malformed_call``."""
    if not p.parsed or not isinstance(p.value, list) or not p.calls:
        return None
    bad = [i for i, el in enumerate(p.value) if normalise_call(el) is None]
    if not bad:
        return None
    return f"{len(bad)} of {len(p.value)} answer elements are not calls (first: {p.value[bad[0]]!r:.60})"


def _closeness(p: ToolCall, g: ToolCall) -> float:
    if p.name.strip() != g.name.strip():
        return float("-inf")
    shared = set(p.arguments) & set(g.arguments)
    same = sum(1 for k in shared if same_value(p.arguments[k], g.arguments[k]))
    return 2 * same + len(shared) - len(set(p.arguments) ^ set(g.arguments))


def _pair_up(pred: list[ToolCall], gold: list[ToolCall]) -> list[tuple[ToolCall, ToolCall]]:
    """Pair each gold call with a same-named prediction so that the pairs agree on as many keys and values as
    possible (exhaustive for up to 7 calls, greedy beyond), so the reason names the real difference."""
    if len(pred) == len(gold) and len(gold) <= 7:
        best, best_total = None, float("-inf")
        for perm in itertools.permutations(range(len(pred))):
            total = sum(_closeness(pred[j], g) for j, g in zip(perm, gold, strict=True))
            if total > best_total:
                best, best_total = perm, total
        if best is not None and best_total > float("-inf"):
            return [(pred[j], g) for j, g in zip(best, gold, strict=True)]
    used: set[int] = set()
    pairs = []
    for g in gold:
        cands = [(j, _closeness(p, g)) for j, p in enumerate(pred) if j not in used]
        cands = [(j, s) for j, s in cands if s > float("-inf")]
        if cands:
            j = max(cands, key=lambda x: x[1])[0]
            used.add(j)
            pairs.append((pred[j], g))
    return pairs


def diagnose(pred: list[ToolCall], gold: list[ToolCall]) -> tuple[str, str]:
    """Why two call lists (known not to match) differ: (reason, detail)."""
    if not gold:
        return ("unexpected_call", f"{len(pred)} call(s) where none was expected") if pred else ("ok", "")
    if not pred:
        return "no_call", "no call decoded"
    if len(pred) != len(gold):
        return "wrong_count", f"{len(pred)} call(s), gold has {len(gold)}"
    pn, gn = Counter(c.name.strip() for c in pred), Counter(c.name.strip() for c in gold)
    if pn != gn:
        wrong = sorted((pn - gn).elements())
        return "wrong_name", f"called {wrong}, expected {sorted((gn - pn).elements())}"
    for p, g in _pair_up(pred, gold):
        missing = sorted(set(g.arguments) - set(p.arguments))
        if missing:
            return "missing_arg", f"{g.name}: missing {missing}"
    for p, g in _pair_up(pred, gold):
        extra = sorted(set(p.arguments) - set(g.arguments))
        if extra:
            return "extra_arg", f"{g.name}: unexpected {extra}"
    for p, g in _pair_up(pred, gold):
        bad = sorted(k for k in g.arguments if not same_value(p.arguments.get(k), g.arguments[k]))
        if bad:
            k = bad[0]
            return "wrong_value", f"{g.name}.{k}: {p.arguments.get(k)!r} != {g.arguments[k]!r}"
    return "wrong_args", "arguments differ"


def score_calls(pred: list[ToolCall], gold: list[ToolCall]) -> tuple[bool, str, str]:
    """Exact match (order-free) of two call lists, with the reason when they differ."""
    if not gold:
        ok = not pred
    else:
        ok = bool(pred) and exact_match(pred, gold, ordered=False)
    if ok:
        return True, "ok", ""
    reason, detail = diagnose(pred, gold)
    return False, reason, detail


def score_native(text: str, gold: list[ToolCall]) -> Verdict:
    """Native format: the headline reads the calls however the model wrapped them (template blocks, code fence
    or bare JSON; a reply without any call is "no call"); ``strict_correct`` counts only the template's own
    ``<tool_call>`` blocks, as an OpenAI-compatible server's tool-call parser would."""
    p = parse_native_output(text)
    metrics = prf(p.calls, gold)
    strict_ok = score_calls(p.strict_calls, gold)[0] and not p.malformed_blocks and not p.unclosed
    if not p.parsed:
        if not gold:
            return Verdict(True, "ok", f"no call ({p.reason})", [], metrics, True, strict_ok)
        reason = "unclosed" if p.unclosed else "unparseable"
        return Verdict(False, reason, p.reason, [], metrics, False, False)
    ok, reason, detail = score_calls(p.calls, gold)
    return Verdict(ok, reason, detail or p.reason, list(p.calls), metrics, ok, strict_ok)


def score_completion(text: str, gold: list[ToolCall], solver_format: str = DEFAULT_SOLVER_FORMAT) -> Verdict:
    """Score one raw Solver completion against the gold calls (spec §9.1 recommended protocol), read in the
    Solver's format (``reference`` or ``native``, see :func:`score_native`)."""
    if solver_format == "native":
        return score_native(text, gold)
    p = parse_solver_output(text)
    metrics = prf(p.calls, gold)
    lenient = parse_solver_output(text, allow_unclosed=True, python_calls=True)
    lenient_ok = (lenient.parsed or not gold) and malformed_elements(lenient) is None
    lenient_ok = lenient_ok and score_calls(lenient.calls, gold)[0]
    fmt = format_reason(text, p)
    if fmt is not None:
        if not gold:  # no call expected and none was made: correct
            return Verdict(True, "ok", f"no call ({fmt})", [], metrics, True)
        return Verdict(False, fmt, p.reason, [], metrics, lenient_ok)
    junk = malformed_elements(p)
    if junk is not None:
        return Verdict(False, "malformed_call", junk, list(p.calls), metrics, lenient_ok)
    ok, reason, detail = score_calls(p.calls, gold)
    if not ok and reason == "no_call" and p.calls == [] and not p.empty_answer:
        detail = "answer parses but no element normalises to a call"
    return Verdict(ok, reason, detail, list(p.calls), metrics, lenient_ok or ok)
