"""Tool-call matching shared by the Solver reward (spec §7.3), the pass@K success test (spec §5.4, §11) and
the evaluation (spec §9.1, §12): value rules, pair score, greedy matching, exact match and P/R/F1.

Two notions of value equality live here on purpose:
- :func:`values_match` is the reward's rule list of spec §7.3, in order; its rule 2 is final, so the strings
  ``"5"`` and ``"5.0"`` do NOT match there.
- :func:`eval_values_equal` is the evaluation's equality (spec §9.1, §12.1: benchmark gold types are loose): a
  number matches a genuinely numeric string by value (``5`` = ``"5"`` = ``"5.0"``), but two strings compare as
  text (``"3.10"`` != ``"3.1"``, ``"02134"`` != ``"2134"``), used by :func:`exact_match` and :func:`prf`.
Pure; never raises.
"""

from __future__ import annotations

import json
import math
import re
from collections import Counter
from dataclasses import dataclass, field
from decimal import Decimal
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
# A genuinely numeric string: no leading "+", no leading zero ("02134" is a code, not 2134).
_EVAL_NUMBER = re.compile(r"^-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?$")
_FLOAT_EXACT = 2**53  # beyond this, floats cannot tell neighbouring integers apart: compare exactly
_BOOL_WORDS = {"true": True, "false": False}
MAX_EVAL_DEPTH = 100


def _eval_bool(x: Any) -> bool | None:
    if isinstance(x, bool):
        return x
    if isinstance(x, str):
        return _BOOL_WORDS.get(" ".join(x.split()).lower())
    return None


def _eval_number(x: Any) -> int | float | Decimal | None:
    """An int or float as is; a genuinely numeric string as an exact int or Decimal; else None."""
    if isinstance(x, bool):
        return None
    if isinstance(x, int | float):
        return x
    if isinstance(x, str):
        s = x.strip()
        if len(s) <= 400 and _EVAL_NUMBER.match(s):
            return int(s) if s.lstrip("-").isdigit() else Decimal(s)
    return None


def _numbers_equal(x: int | float | Decimal, y: int | float | Decimal) -> bool:
    if isinstance(x, float) or isinstance(y, float):
        if not (math.isfinite(x) and math.isfinite(y)):
            return x == y or (x != x and y != y)  # NaN equals NaN here: the same written value
        if abs(x) <= _FLOAT_EXACT and abs(y) <= _FLOAT_EXACT:
            return abs(float(x) - float(y)) < 1e-9  # spec §7.3 rule 3
    return Decimal(x) == Decimal(y)  # exact: ints of any size, Decimal strings


def eval_values_equal(a: Any, b: Any, _depth: int = 0) -> bool:
    """Evaluation value equality (spec §9.1, §12.1: loose benchmark types, whitespace normalised).

    Two strings compare as text (whitespace collapsed), so ``"02134"`` != ``"2134"``, ``"3.10"`` != ``"3.1"``
    and ``"+1555…"`` != ``"1555…"``. A number matches a number or a genuinely numeric string (no leading
    ``+`` or zero) by value: ints and numeric strings exactly, floats within 1e-9 (spec §7.3 rule 3) while
    both stay below 2**53. ``"true"``/``"false"`` match bools; lists and dicts compare element-wise.
    """
    try:
        ba, bb = _eval_bool(a), _eval_bool(b)
        if isinstance(a, bool) or isinstance(b, bool):
            return ba is not None and ba == bb
        if a is None or b is None:
            return a is None and b is None
        if isinstance(a, str) and isinstance(b, str):
            if ba is not None and bb is not None:
                return ba == bb
            return " ".join(a.split()) == " ".join(b.split())
        na, nb = _eval_number(a), _eval_number(b)
        if na is not None and nb is not None:
            return _numbers_equal(na, nb)
        if _depth >= MAX_EVAL_DEPTH:
            ca = _canonical_json(a)
            return ca is not None and ca == _canonical_json(b)
        if isinstance(a, list | tuple) and isinstance(b, list | tuple):
            return len(a) == len(b) and all(
                eval_values_equal(x, y, _depth + 1) for x, y in zip(a, b, strict=True)
            )
        if isinstance(a, dict) and isinstance(b, dict):
            da = {str(k): v for k, v in a.items()}
            db = {str(k): v for k, v in b.items()}
            return da.keys() == db.keys() and all(eval_values_equal(da[k], db[k], _depth + 1) for k in da)
        return False
    except Exception:  # noqa: BLE001 - exotic values (RecursionError, huge exponents, ...) count as no match
        return False


def _calls_equal(p: ToolCall, g: ToolCall) -> bool:
    if str(p.name).strip() != str(g.name).strip():
        return False
    pa = p.arguments if isinstance(p.arguments, dict) else {}
    ga = g.arguments if isinstance(g.arguments, dict) else {}
    return eval_values_equal(pa, ga)


def _max_matching(n_left: int, n_right: int, compatible: Any) -> int:
    """Size of a maximum bipartite matching (augmenting paths); ``compatible(i, j)`` is called once per pair.
    Needed because the value equality is not transitive (tolerance, loose types), so keys cannot be counted."""
    adj = [[j for j in range(n_right) if compatible(i, j)] for i in range(n_left)]
    owner: list[int] = [-1] * n_right

    def augment(i: int, seen: list[bool]) -> bool:
        for j in adj[i]:
            if not seen[j]:
                seen[j] = True
                if owner[j] < 0 or augment(owner[j], seen):
                    owner[j] = i
                    return True
        return False

    return sum(augment(i, [False] * n_right) for i in range(n_left))


def exact_match(pred: list[ToolCall], gold: list[ToolCall], ordered: bool = False) -> bool:
    """Evaluation exact match: same number of calls, names, argument key sets and values under
    :func:`eval_values_equal`; order-free (a perfect one-to-one pairing) unless ``ordered``."""
    try:
        if len(pred) != len(gold):
            return False
        if ordered:
            return all(_calls_equal(p, g) for p, g in zip(pred, gold, strict=True))
        return _max_matching(len(gold), len(pred), lambda i, j: _calls_equal(pred[j], gold[i])) == len(gold)
    except Exception:  # noqa: BLE001
        return False


def _prf(tp: int, n_pred: int, n_gold: int) -> tuple[float, float, float]:
    p = tp / n_pred if n_pred else (1.0 if n_gold == 0 else 0.0)
    r = tp / n_gold if n_gold else (1.0 if n_pred == 0 else 0.0)
    f = 2 * p * r / (p + r) if p + r > 0 else 0.0
    return p, r, f


def prf(pred: list[ToolCall], gold: list[ToolCall]) -> dict[str, float]:
    """Tool-level (multiset of names) and parameter-level (one-to-one pairing of (tool, key, value) triples
    under :func:`eval_values_equal`) precision/recall/F1 for one sample, plus the raw counts (``*_tp``,
    ``*_pred``, ``*_gold``) for micro-averaging. Both sides empty count as perfect."""

    def params(calls: list[ToolCall]) -> dict[tuple[str, str], list[Any]]:
        out: dict[tuple[str, str], list[Any]] = {}
        for c in calls:
            args = c.arguments if isinstance(c.arguments, dict) else {}
            for k, v in args.items():
                out.setdefault((str(c.name).strip(), str(k)), []).append(v)
        return out

    try:
        tp_names = Counter(str(c.name).strip() for c in pred)
        tg_names = Counter(str(c.name).strip() for c in gold)
        t_tp = sum((tp_names & tg_names).values())
        pp, pg = params(pred), params(gold)
        p_tp = 0
        for key, gv in pg.items():  # pair values one-to-one within each (tool, key)
            pv = pp.get(key, [])
            p_tp += _max_matching(len(gv), len(pv), lambda i, j, g=gv, p=pv: eval_values_equal(p[j], g[i]))
        n_pp, n_pg = sum(map(len, pp.values())), sum(map(len, pg.values()))
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


def names_match(pred: list[ToolCall], gold: list[ToolCall]) -> bool:
    """The reference code's curriculum test (a looser success than :func:`calls_equal_canonical`): the same
    multiset of tool names, arguments ignored."""
    try:
        return Counter(str(c.name).strip() for c in pred) == Counter(str(c.name).strip() for c in gold)
    except Exception:  # noqa: BLE001
        return False


def partial_call_score(pred: list[ToolCall], gold: list[ToolCall]) -> float:
    """Partial credit in [0, 1] (ToolRL-style: names, argument keys, values, via :func:`greedy_match`'s pair
    score), divided by the longer of the two lists so extra or missing calls cost; both empty give 1."""
    try:
        if not pred and not gold:
            return 1.0
        return max(0.0, min(1.0, greedy_match(pred, gold).total / max(len(pred), len(gold))))
    except Exception:  # noqa: BLE001
        return 0.0
