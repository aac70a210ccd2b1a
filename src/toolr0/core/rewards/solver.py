"""Solver rewards (spec §7.2, §7.3): format ∈ {0, .3, .6, 1} and accuracy ∈ [0, 1].

Both return a :class:`RewardValue` (value plus reason) and never raise; ``*_score`` variants return plain floats.
The weighted total R_S is declared in :mod:`toolr0.core.rewards.terms`. Every function takes the Solver's
format (``core.solver_format.SolverFormat``; default: the paper's reference format). In the native format
accuracy keeps the §7.3 formula on the calls read however they were wrapped, and the format reward asks for the
chat template's own ``<tool_call>`` blocks (:func:`native_format_reward`).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from toolr0.core.completions import SolverParse, parse_solver_output
from toolr0.core.matching import greedy_match
from toolr0.core.native import NativeParse, parse_native_output
from toolr0.core.parsing import normalise_calls
from toolr0.core.rewards.base import RewardValue, clip
from toolr0.core.rewards.config import RewardConfig
from toolr0.core.schema import ToolCall
from toolr0.core.solver_format import SolverFormat


def _cfg(cfg: RewardConfig | None) -> RewardConfig:
    return cfg if cfg is not None else RewardConfig()


def _fmt(fmt: SolverFormat | None) -> SolverFormat:
    return fmt if fmt is not None else SolverFormat()


def parse_reply(text: Any, c: RewardConfig, fmt: SolverFormat | None = None) -> SolverParse:
    """The Solver reply read in its format (a :class:`NativeParse` for the native one); a parse is returned as
    is, so both rewards can share one parse of a reply."""
    if isinstance(text, SolverParse):
        return text
    f = _fmt(fmt)
    if f.native:
        return parse_native_output(text)
    return parse_solver_output(text, allow_unclosed=c.allow_unclosed_answer)


CUT_REASON = "cut_at_limit"  # the parse reason of a reply cut at the token limit (logged as solver/cut_rate)


def cut_at_limit(parse: SolverParse) -> SolverParse:
    """The parse of a reply that hit the token limit without ending its turn: unclosed, no answer read.

    The native analogue of the reference format's unclosed final tag (spec §7.2, off unless
    ``allow_unclosed_answer``): without it a native reply cut mid-prose reads as a plain "no call" and earns
    0.6 format (1.6 in all where the gold is empty), so GRPO drifted to ever longer prose (RESULTS.md, v2 run).
    """
    return replace(parse, parsed=False, unclosed=True, calls=[], value=None, reason=CUT_REASON)


def native_format_reward(text: Any, cfg: RewardConfig | None = None) -> RewardValue:
    """Native format reward, on the reference reward's grid {0, .3, .6, 1} (docs/solver_format.md):

    1.0: at least one call, every one in a well-formed ``<tool_call>`` block of the template, nothing unclosed;
    0.6: no call at all (a plain reply: the form of "no call", as ``[]`` earns 0.3 + 0.3 in the reference);
    0.3: calls that can be read, but not in the template's own form (code fence, bare JSON, some blocks
    malformed or cut); 0: a ``<tool_call>`` block with no readable call, or no text.
    """
    c = _cfg(cfg)
    p = text if isinstance(text, NativeParse) else parse_native_output(text)
    present, parses, norm = c.sfmt_present_weight, c.sfmt_parse_weight, c.sfmt_norm_weight
    if not p.parsed:
        return RewardValue(0.0, p.reason)
    if p.calls and p.strict_ok:
        return RewardValue(present + parses + norm, "ok")
    if not p.calls:
        return RewardValue(present + parses, "no_call")
    return RewardValue(present, p.reason)


def solver_format_reward(
    text: Any, cfg: RewardConfig | None = None, fmt: SolverFormat | None = None, gold: Any = None
) -> RewardValue:
    """0 if the last <tool_call_answer> is missing/empty; else 0.3 (+0.3 parses relaxed) (+0.4 ≥ 1 call).
    Native format: :func:`native_format_reward`. With ``gold`` empty (a no-call task) and
    ``no_call_full_format``, the right no-call answer earns the full 1.0 (deliberate, not in the paper)."""
    c = _cfg(cfg)
    f = _fmt(fmt)
    sp = parse_reply(text, c, f)
    hi = c.sfmt_present_weight + c.sfmt_parse_weight + c.sfmt_norm_weight
    if gold is not None and c.no_call_full_format and not _gold_calls(gold) and f.is_no_call(sp):
        return RewardValue(hi, "no_call_on_no_call_task")
    if f.native:
        return native_format_reward(sp, c)
    if not sp.answer_text:
        return RewardValue(0.0, sp.reason if sp.reason != "ok" else "missing_answer")
    value = c.sfmt_present_weight + c.sfmt_parse_weight * sp.parsed + c.sfmt_norm_weight * sp.normalised
    reason = sp.reason + (",unclosed" if sp.unclosed else "")
    return RewardValue(clip(value, 0.0, hi), reason)


def _gold_calls(gold: Any) -> list[ToolCall]:
    if isinstance(gold, list) and all(isinstance(g, ToolCall) for g in gold):
        return list(gold)
    return normalise_calls(gold) if gold is not None else []


def solver_accuracy_reward(
    text: Any, gold_calls: Any, cfg: RewardConfig | None = None, fmt: SolverFormat | None = None
) -> RewardValue:
    """r_acc ∈ [0, 1] (spec §7.3): needs a non-empty <think> and a parseable answer; greedy matching of the
    gold calls in order, s̄ = Σ matched r / |C*|, times 1 / (1 + α·extra calls). Empty gold: 1 iff the answer
    is an explicit empty list (native format: iff the reply makes no call). Native format without
    ``reason_first`` needs no <think>."""
    c = _cfg(cfg)
    f = _fmt(fmt)
    try:
        sp = parse_reply(text, c, f)
        if f.needs_think and not sp.think:
            return RewardValue(0.0, "no_think")
        if not sp.parsed:
            return RewardValue(0.0, f"answer:{sp.reason}")
        gold = _gold_calls(gold_calls)
        pred = sp.calls
        if not gold:
            ok = f.is_no_call(sp)
            return RewardValue(1.0 if ok else 0.0, "empty_gold_" + ("match" if ok else "but_calls"))
        if not pred:
            return RewardValue(0.0, "no_normalisable_call")
        weights = (c.acc_name_weight, c.acc_keys_weight, c.acc_values_weight)
        m = greedy_match(pred, gold, weights)
        extra = max(0, len(pred) - len(gold))
        value = clip(m.mean / (1 + c.extra_call_alpha * extra))
        reason = f"matched {len(m.pairs)}/{len(gold)}" + (f",extra {extra}" if extra else "")
        return RewardValue(value, reason + (",unclosed" if sp.unclosed else ""))
    except Exception as e:  # noqa: BLE001
        return RewardValue(0.0, f"error: {type(e).__name__}")


def solver_format_score(text: Any, cfg: RewardConfig | None = None, fmt: SolverFormat | None = None) -> float:
    """Plain-float :func:`solver_format_reward`."""
    return solver_format_reward(text, cfg, fmt).value


def solver_accuracy_score(
    text: Any, gold_calls: Any, cfg: RewardConfig | None = None, fmt: SolverFormat | None = None
) -> float:
    """Plain-float :func:`solver_accuracy_reward`."""
    return solver_accuracy_reward(text, gold_calls, cfg, fmt).value
