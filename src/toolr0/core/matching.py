"""Tool-call matching shared by the Solver reward (spec §7.3), the pass@K success test (spec §5.4, §11) and
the evaluation (spec §9.1, §12): value rules, pair score, greedy matching, exact match and P/R/F1.

Two notions of value equality live here on purpose:
- :func:`values_match` is the reward's rule list of spec §7.3, in order; its rule 2 is final, so the strings
  ``"5"`` and ``"5.0"`` do NOT match there.
- :func:`eval_normalise` is the evaluation's type/whitespace normalisation (spec §9.1, §12.1: benchmark gold
  types are loose): numbers and numeric strings become one number, so ``"5"``, ``5``, ``"5.0"`` and ``5.0`` are
  all equal for :func:`exact_match` and :func:`prf`.
Pure; never raises.
"""

from __future__ import annotations

import json
import math
import re
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from toolr0.core.schema import ToolCall

_RULE2_NUMERIC = re.compile(r"^-?\d+(\.\d+)?$")
_NUMERIC_STR = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$")
PAIR_WEIGHTS = (0.2, 0.3, 0.5)  # name, key-set F1, values (spec §7.3)


def _canonical_json(x: Any) -> str | None:
    try:
        return json.dumps(x, sort_keys=True, ensure_ascii=False, default=str)
    except (TypeError, ValueError, RecursionError):
        return None


def _rule2_string(x: Any) -> str | None:
    """The stripped string of an int/str that looks numeric, leading '+' removed; else None."""
    if isinstance(x, bool) or not isinstance(x, int | str):
        return None
    try:
        s = str(x).strip()
    except ValueError:  # ints beyond the str-conversion digit limit
        return None
    if s.startswith("+"):
        s = s[1:]
    return s if _RULE2_NUMERIC.match(s) else None


def _as_number(x: Any) -> float | None:
    """Rule 3 coercion: ints, floats, numeric strings of <= 15 digits; never bools."""
    if isinstance(x, bool):
        return None
    try:
        if isinstance(x, int | float):
            return float(x)
        if isinstance(x, str):
            s = x.strip()
            if _NUMERIC_STR.match(s) and sum(ch.isdigit() for ch in s) <= 15:
                return float(s)
    except (OverflowError, ValueError):
        return None
    return None


def values_match(a: Any, b: Any) -> bool:
    """Spec §7.3 value rules, first applicable rule decides."""
    try:
        # Deliberate difference: Python's True == 1 would let 1 match a boolean; a bool only matches a bool.
        if isinstance(a, bool) or isinstance(b, bool):
            return isinstance(a, bool) and isinstance(b, bool) and a == b
        if a == b:
            return True
        sa, sb = _rule2_string(a), _rule2_string(b)
        if sa is not None and sb is not None:
            return sa == sb  # final: "5" vs "5.0" do not match
        na, nb = _as_number(a), _as_number(b)
        if na is not None and nb is not None:
            return abs(na - nb) < 1e-9
        if isinstance(a, str) and isinstance(b, str):
            return " ".join(a.split()) == " ".join(b.split())
        ca, cb = _canonical_json(a), _canonical_json(b)
        return ca is not None and ca == cb
    except Exception:  # noqa: BLE001 - exotic comparisons (RecursionError, ...) count as no match
        return False


def _key_f1(pk: set[str], ck: set[str]) -> float:
    if not pk and not ck:
        return 1.0
    shared = pk & ck
    if not pk or not ck or not shared:
        return 0.0
    return 2 * len(shared) / (len(pk) + len(ck))


def pair_score(p: ToolCall, c: ToolCall, weights: tuple[float, float, float] = PAIR_WEIGHTS) -> float:
    """r(p, c) = w_n·n + w_k·k + w_v·v of spec §7.3."""
    try:
        pn, cn = str(p.name).strip(), str(c.name).strip()
        n = 1.0 if pn and pn == cn else 0.0
        pa = p.arguments if isinstance(p.arguments, dict) else {}
        ca = c.arguments if isinstance(c.arguments, dict) else {}
        pk, ck = set(map(str, pa)), set(map(str, ca))
        k = _key_f1(pk, ck)
        shared = pk & ck
        if shared:
            pmap = {str(key): v for key, v in pa.items()}
            cmap = {str(key): v for key, v in ca.items()}
            v = sum(values_match(pmap[key], cmap[key]) for key in shared) / len(shared)
        else:
            v = 1.0 if not pk and not ck else 0.0
        wn, wk, wv = weights
        return wn * n + wk * k + wv * v
    except Exception:  # noqa: BLE001
        return 0.0


@dataclass
class GreedyMatch:
    """Result of greedy matching: ``pairs`` are (gold index, prediction index, score); ``mean`` is s̄."""

    pairs: list[tuple[int, int, float]] = field(default_factory=list)
    total: float = 0.0
    mean: float = 0.0
    unmatched_gold: list[int] = field(default_factory=list)
    unmatched_pred: list[int] = field(default_factory=list)


def greedy_match(
    pred: list[ToolCall], gold: list[ToolCall], weights: tuple[float, float, float] = PAIR_WEIGHTS
) -> GreedyMatch:
    """Spec §7.3: for each gold call in order take the unused prediction with the largest score (> 0)."""
    used: set[int] = set()
    out = GreedyMatch()
    for gi, c in enumerate(gold):
        best_i, best_s = -1, 0.0
        for pi, p in enumerate(pred):
            if pi in used:
                continue
            s = pair_score(p, c, weights)
            if s > best_s:
                best_i, best_s = pi, s
        if best_i >= 0:
            used.add(best_i)
            out.pairs.append((gi, best_i, best_s))
            out.total += best_s
        else:
            out.unmatched_gold.append(gi)
    out.unmatched_pred = [i for i in range(len(pred)) if i not in used]
    out.mean = out.total / len(gold) if gold else 0.0
    return out


# --------------------------------------------------------------------------------------- evaluation
def _number_canonical(f: float, original: Any = None) -> Any:
    if math.isfinite(f) and f == int(f) and abs(f) < 1e15:
        return int(f)
    if isinstance(original, int) and not isinstance(original, bool):
        return original
    return f


def eval_normalise(value: Any, depth: int = 0) -> Any:
    """Evaluation normalisation: numbers and numeric strings → one number (int when integral), strings →
    whitespace-collapsed, "true"/"false" strings → bools, containers recursively."""
    if depth > 100:
        return value
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, int | float):
        try:
            return _number_canonical(float(value), value)
        except OverflowError:
            return value
    if isinstance(value, str):
        s = " ".join(value.split())
        if s.lower() in ("true", "false"):
            return s.lower() == "true"
        if _NUMERIC_STR.match(s):
            try:
                return _number_canonical(float(s))
            except (OverflowError, ValueError):
                return s
        return s
    if isinstance(value, list | tuple):
        return [eval_normalise(v, depth + 1) for v in value]
    if isinstance(value, dict):
        return {str(k): eval_normalise(v, depth + 1) for k, v in value.items()}
    return value


def _eval_key(call: ToolCall) -> str:
    args = call.arguments if isinstance(call.arguments, dict) else {}
    key = _canonical_json([str(call.name).strip(), eval_normalise(args)])
    return key if key is not None else repr((call.name, args))


def exact_match(pred: list[ToolCall], gold: list[ToolCall], ordered: bool = False) -> bool:
    """Evaluation exact match: same number of calls, names, argument key sets and values after
    :func:`eval_normalise`; order-free (multiset) unless ``ordered``."""
    try:
        if len(pred) != len(gold):
            return False
        pk, gk = [_eval_key(c) for c in pred], [_eval_key(c) for c in gold]
        return pk == gk if ordered else Counter(pk) == Counter(gk)
    except Exception:  # noqa: BLE001
        return False


def _prf(tp: int, n_pred: int, n_gold: int) -> tuple[float, float, float]:
    p = tp / n_pred if n_pred else (1.0 if n_gold == 0 else 0.0)
    r = tp / n_gold if n_gold else (1.0 if n_pred == 0 else 0.0)
    f = 2 * p * r / (p + r) if p + r > 0 else 0.0
    return p, r, f


def prf(pred: list[ToolCall], gold: list[ToolCall]) -> dict[str, float]:
    """Tool-level (multiset of names) and parameter-level (multiset of (tool, key, normalised value))
    precision/recall/F1 for one sample, plus the raw counts (``*_tp``, ``*_pred``, ``*_gold``) for
    micro-averaging. Both sides empty count as perfect."""

    def params(calls: list[ToolCall]) -> Counter[str]:
        out: Counter[str] = Counter()
        for c in calls:
            args = c.arguments if isinstance(c.arguments, dict) else {}
            for k, v in args.items():
                key = _canonical_json([str(c.name).strip(), str(k), eval_normalise(v)])
                out[key if key is not None else repr((c.name, k, v))] += 1
        return out

    try:
        tp_names = Counter(str(c.name).strip() for c in pred)
        tg_names = Counter(str(c.name).strip() for c in gold)
        t_tp = sum((tp_names & tg_names).values())
        pp, pg = params(pred), params(gold)
        p_tp = sum((pp & pg).values())
        n_pp, n_pg = sum(pp.values()), sum(pg.values())
    except Exception:  # noqa: BLE001
        t_tp, p_tp, n_pp, n_pg = 0, 0, 0, 0
        tp_names, tg_names = Counter(), Counter({"": 1})
    tool_p, tool_r, tool_f1 = _prf(t_tp, sum(tp_names.values()), sum(tg_names.values()))
    param_p, param_r, param_f1 = _prf(p_tp, n_pp, n_pg)
    return {
        "tool_p": tool_p,
        "tool_r": tool_r,
        "tool_f1": tool_f1,
        "param_p": param_p,
        "param_r": param_r,
        "param_f1": param_f1,
        "tool_tp": t_tp,
        "tool_pred": sum(tp_names.values()),
        "tool_gold": sum(tg_names.values()),
        "param_tp": p_tp,
        "param_pred": n_pp,
        "param_gold": n_pg,
    }


def calls_equal_canonical(pred: list[ToolCall], gold: list[ToolCall], ordered: bool = True) -> bool:
    """The r_diff / pass@K success test (spec §5.4 step 4, §11): the full call list equals the gold list as
    canonical JSON per call (sorted keys; types and values exact); ordered, or as a multiset."""
    try:
        if len(pred) != len(gold):
            return False
        pk = [_canonical_json(c.to_dict()) for c in pred]
        gk = [_canonical_json(c.to_dict()) for c in gold]
        if any(k is None for k in pk) or any(k is None for k in gk):
            return False
        return pk == gk if ordered else Counter(pk) == Counter(gk)
    except Exception:  # noqa: BLE001
        return False
