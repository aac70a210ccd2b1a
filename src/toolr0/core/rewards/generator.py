"""Generator reward components (spec §5): question gate, format, validity (grounding), band-pass difficulty.

Every component is multiplied by the question gate g; the weighted total R_G = w_f·r_fmt + w_v·r_valid +
w_c·r_curr is declared in :mod:`toolr0.core.rewards.terms`, the judge term in :mod:`.judge`. Validity is
applied to EVERY gold call (spec §11), with ``required`` read from all three places it may live. Each function
returns a :class:`RewardValue` (value in its documented range, plus a reason) and never raises.

No-call tasks (not in the paper): when the spec asks for ``num_calls`` 0, a gold that parses to exactly ``[]``
counts as a well-formed gold (I_gold) and validity has no call to check, so its three indicators become
I_menu (the menu passes verification's tool rules: "real tools"), I_args = 1 (no call, nothing required is
missing) and I_plain (the question names no menu tool and does not talk about the tools: verification's no-call
rules). Whether a menu tool could in fact serve the request is left to r_diff (the frozen Solver must answer
``[]``). Without a no-call spec an empty gold scores as before (I_gold 0, r_valid 0).
"""

from __future__ import annotations

import math
import re
import unicodedata
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

from toolr0.core.completions import GeneratorParse, parse_generator_output
from toolr0.core.parsing import normalise_call, parse_relaxed
from toolr0.core.rewards.base import RewardValue, clip
from toolr0.core.rewards.config import RewardConfig
from toolr0.core.rewards.judge import judge_score_from_attempts as judge_score_from_attempts  # re-exported
from toolr0.core.rewards.judge import parse_judge_score as parse_judge_score  # re-exported
from toolr0.core.rewards.judge import semantic_reward
from toolr0.core.schema import Task, Tool, ToolCall, normalise_tools

_UNITS = (
    "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen "
    "sixteen seventeen eighteen nineteen"
).split()
_TENS = "twenty thirty forty fifty sixty seventy eighty ninety".split()
NUMBER_WORDS: dict[int, str] = {i: w for i, w in enumerate(_UNITS)} | {
    20 + 10 * i: w for i, w in enumerate(_TENS)
}
WORD_TO_DIGIT: dict[str, str] = {w: str(i) for i, w in NUMBER_WORDS.items()}
_NON_ALNUM = re.compile(r"[^a-z0-9\s]+")
_MAX_FLOAT_CHARS = 100
_DECIMAL_STR = re.compile(r"^-?(?:\d+|\d{1,3}(?:,\d{3})+)\.\d+$")
_CENTS = Decimal("0.01")


# ------------------------------------------------------------------------------------------- gate
def _question_gate(question: str | None) -> tuple[bool, str]:
    if question is None:
        return False, "missing_question"
    try:
        from toolr0.core.question_gate import question_gate  # owned by the verification module

        ok, reason = question_gate(question)
        return bool(ok), str(reason)
    except Exception as e:  # noqa: BLE001 - a gate failure must not crash a reward
        return False, f"gate_error: {type(e).__name__}"


# -------------------------------------------------------------------------------------- grounding
def normalise_text(s: Any) -> str:
    """Spec §5.3: NFKC → casefold → NBSP to space → non-[a-z0-9\\s] runs to a space → collapse → strip."""
    if not isinstance(s, str):
        s = str(s)
    s = unicodedata.normalize("NFKC", s).casefold().replace("\u00a0", " ")
    s = _NON_ALNUM.sub(" ", s)
    return " ".join(s.split())


def _integer_value(v: Any) -> int | None:
    """The integer value of v when v parses as a float with an integral value (never for bools)."""
    if isinstance(v, bool):
        return None
    if isinstance(v, int):
        return v
    try:
        if isinstance(v, float):
            f = v
        elif isinstance(v, str) and len(v) <= _MAX_FLOAT_CHARS:
            f = float(v.strip())
        else:
            return None
    except (ValueError, OverflowError):
        return None
    if not math.isfinite(f) or f != int(f):
        return None
    return int(f)


def _decimal_forms(v: Any) -> list[str]:
    """Written forms of a non-integral decimal value: shortest ("12.5"), with cents ("12.50") and with
    thousands commas ("1,250.75"). Empty for anything else."""
    try:
        if isinstance(v, float) and math.isfinite(v):
            d = Decimal(repr(v))
        elif isinstance(v, str) and len(v) <= _MAX_FLOAT_CHARS and _DECIMAL_STR.match(v.strip()):
            d = Decimal(v.strip().replace(",", ""))
        else:
            return []
        if d == d.to_integral_value() or "e" in repr(v).lower():
            return []
        shortest = d.normalize()
        forms = [shortest]
        if shortest.as_tuple().exponent >= -2:  # type: ignore[operator]
            forms.append(shortest.quantize(_CENTS))
        out = [format(f, "f") for f in forms]
        if abs(d) >= 1000:
            out += [format(f, ",f") for f in forms]
        return out
    except (InvalidOperation, ValueError, OverflowError):
        return []


def value_variants(v: Any) -> list[str]:
    """Normalised accepted variants of a gold value (spec §5.3); empty for bool/None (not checked)."""
    if v is None or isinstance(v, bool):
        return []
    try:
        out = [normalise_text(v)]
        i = _integer_value(v)
        if i is not None:
            out.append(normalise_text(str(i)))
            if abs(i) >= 1000:
                out.append(normalise_text(f"{i:,}"))
            if i in NUMBER_WORDS:
                out.append(NUMBER_WORDS[i])
        if out[0] in WORD_TO_DIGIT:
            out.append(WORD_TO_DIGIT[out[0]])
        # Deliberate addition to spec §5.3: decimals are grounded as written ("$12.50" for 12.5, "1,250.75").
        out.extend(normalise_text(f) for f in _decimal_forms(v))
    except (ValueError, OverflowError, RecursionError):  # e.g. ints beyond the str-conversion limit
        return []
    # Deliberate: a value that normalises to nothing ("", "!!!") cannot be grounded (\b\b matches anywhere).
    return list(dict.fromkeys(x for x in out if x))


def is_grounded(value: Any, normalised_question: str) -> bool:
    """Word-boundary match of any variant of ``value`` in the already-normalised question."""
    return any(re.search(rf"\b{re.escape(var)}\b", normalised_question) for var in value_variants(value))


def call_grounded(call: ToolCall, normalised_question: str) -> bool:
    """Every non-bool argument value occurs in the question; empty arguments give True.

    Deliberate difference from spec §5.3 (which skips nulls): a null value is never grounded, so a gold call
    such as ``{"city": null}`` cannot earn full validity."""
    for v in call.arguments.values():
        if v is None:
            return False
        if isinstance(v, bool):
            continue
        if not is_grounded(v, normalised_question):
            return False
    return True


# --------------------------------------------------------------------------------------- analysis
@dataclass
class GeneratorAnalysis:
    """Everything the format and validity rewards need, computed once per completion."""

    parse: GeneratorParse
    gate: bool = False
    gate_reason: str = ""
    tools_raw: Any = None
    tools_ok: bool = False  # I_tools
    tools: list[Tool] = field(default_factory=list)
    answer_raw: Any = None
    answer_parsed: bool = False
    gold_ok: bool = False  # I_gold
    n_gold_elements: int = 0  # raw elements in the gold list (a dict counts 1)
    empty_gold: bool = False  # the gold parses to exactly [] (a no-call task when the spec asks for one)
    calls: list[ToolCall | None] = field(default_factory=list)  # per raw element; None = failed to normalise


def _tools_indicator(value: Any) -> bool:
    if not isinstance(value, list) or not value:
        return False
    for t in value:
        if not isinstance(t, dict):
            return False
        name = t.get("name")
        if not isinstance(name, str) or not name.strip():
            return False
        if "parameters" in t and not isinstance(t["parameters"], dict):
            return False
    return True


def analyse_generator_output(text: Any) -> GeneratorAnalysis:
    """Parse a Generator completion and compute the gate, I_tools, I_gold and the normalised menu/calls."""
    a = GeneratorAnalysis(parse=parse_generator_output(text))
    try:
        a.gate, a.gate_reason = _question_gate(a.parse.question)
        if a.parse.tools_text:
            r = parse_relaxed(a.parse.tools_text)
            if r.ok:
                a.tools_raw = r.value
                a.tools_ok = _tools_indicator(r.value)
                a.tools = normalise_tools(r.value if isinstance(r.value, list) else [r.value])
        if a.parse.answer_text:
            r = parse_relaxed(a.parse.answer_text)
            if r.ok:
                a.answer_raw, a.answer_parsed = r.value, True
                elements = r.value if isinstance(r.value, list) else [r.value]
                a.n_gold_elements = len(elements)
                a.empty_gold = r.value == []
                a.calls = [normalise_call(e) if isinstance(e, dict) else None for e in elements]
                # Deliberate (spec §11, all gold calls): every element must normalise, not just one/the first.
                a.gold_ok = bool(elements) and all(c is not None for c in a.calls)
    except Exception:  # noqa: BLE001
        pass
    return a


# -------------------------------------------------------------------------------------- rewards
def _cfg(cfg: RewardConfig | None) -> RewardConfig:
    return cfg if cfg is not None else RewardConfig()


def _analysis(text_or_analysis: Any) -> GeneratorAnalysis:
    if isinstance(text_or_analysis, GeneratorAnalysis):
        return text_or_analysis
    return analyse_generator_output(text_or_analysis)


def expects_no_call(spec: Any) -> bool:
    """Whether ``spec`` (a TaskSpec or dict, optional) asks for a no-call task (``num_calls`` 0)."""
    try:
        n = _spec_field(spec, "num_calls")
        return n is not None and not isinstance(n, bool) and int(n) == 0
    except (TypeError, ValueError):
        return False


def _is_no_call(a: GeneratorAnalysis, spec: Any) -> bool:
    return a.empty_gold and expects_no_call(spec)


def format_reward(text: Any, cfg: RewardConfig | None = None, spec: Any = None) -> RewardValue:
    """r_fmt = g·(w_tags·I_tags + w_tools·I_tools + w_gold·I_gold) ∈ [0, 1] (spec §5.2); with a no-call
    ``spec``, a gold of exactly ``[]`` satisfies I_gold."""
    c, a = _cfg(cfg), _analysis(text)
    if not a.gate:
        return RewardValue(0.0, f"gate:{a.gate_reason}")
    tags = a.parse.all_tags
    gold = a.gold_ok or _is_no_call(a, spec)
    value = c.fmt_tags_weight * tags + c.fmt_tools_weight * a.tools_ok + c.fmt_gold_weight * gold
    missing = [n for n, ok in (("tags", tags), ("tools", a.tools_ok), ("gold", gold)) if not ok]
    hi = c.fmt_tags_weight + c.fmt_tools_weight + c.fmt_gold_weight
    return RewardValue(clip(value, 0.0, hi), "ok" if not missing else "missing:" + ",".join(missing))


def _call_indicators(call: ToolCall | None, menu: dict[str, Tool], nq: str) -> tuple[bool, bool, bool]:
    if call is None:
        return False, False, False
    tool = menu.get(call.name)
    exists = tool is not None
    # A call naming an unknown tool cannot show its required keys: I_args fails for it. A required key given
    # as null is missing (deliberate: spec §5.3 only checks presence).
    args = exists and all(call.arguments.get(r) is not None for r in tool.required)  # type: ignore[union-attr]
    return exists, args, call_grounded(call, nq)


def _no_call_validity(a: GeneratorAnalysis, c: RewardConfig) -> RewardValue:
    """r_valid of a no-call task: w_exists·I_menu + w_args·1 + w_ground·I_plain (module docstring)."""
    from toolr0.core.verify import check_no_call_question, menu_problem

    menu = menu_problem(a.parse.tools_text)
    plain = check_no_call_question((a.parse.question or "").strip(), a.tools)
    value = (
        c.valid_exists_weight * (menu is None) + c.valid_args_weight + c.valid_ground_weight * (plain is None)
    )
    failed = ([f"menu({menu})"] if menu is not None else []) + (
        [f"question({plain[0]})"] if plain is not None else []
    )
    hi = c.valid_exists_weight + c.valid_args_weight + c.valid_ground_weight
    return RewardValue(
        clip(value, 0.0, hi), "no_call:" + ("ok" if not failed else "failed:" + ",".join(failed))
    )


def validity_reward(text: Any, cfg: RewardConfig | None = None, spec: Any = None) -> RewardValue:
    """r_valid = g·(0.4·I_exists + 0.4·I_args + 0.2·I_ground) ∈ [0, 1] over every gold call (spec §5.3, §11).

    ``validity_mode``: all_pass (each indicator must hold for every call; default), fraction (share of calls),
    first_call (the reference code's behaviour). With a no-call ``spec`` and a gold of exactly ``[]``: the
    no-call indicators of the module docstring."""
    c, a = _cfg(cfg), _analysis(text)
    if not a.gate:
        return RewardValue(0.0, f"gate:{a.gate_reason}")
    if not a.tools:
        return RewardValue(0.0, "tools_unparseable")
    if _is_no_call(a, spec):
        try:
            return _no_call_validity(a, c)
        except Exception as e:  # noqa: BLE001
            return RewardValue(0.0, f"error: {type(e).__name__}")
    if not a.answer_parsed or a.n_gold_elements == 0:
        return RewardValue(0.0, "no_gold_calls")
    try:
        menu: dict[str, Tool] = {}
        for t in a.tools:
            menu.setdefault(t.name, t)
        nq = normalise_text(a.parse.question or "")
        per_call = [_call_indicators(call, menu, nq) for call in a.calls]
        if c.validity_mode == "first_call":
            per_call = per_call[:1]
        n = len(per_call)
        if c.validity_mode == "fraction":
            ind = [sum(pc[i] for pc in per_call) / n for i in range(3)]
        else:
            ind = [float(all(pc[i] for pc in per_call)) for i in range(3)]
        value = c.valid_exists_weight * ind[0] + c.valid_args_weight * ind[1] + c.valid_ground_weight * ind[2]
        failed = [n for n, x in zip(("exists", "args", "ground"), ind, strict=True) if x < 1]
        hi = c.valid_exists_weight + c.valid_args_weight + c.valid_ground_weight
        return RewardValue(clip(value, 0.0, hi), "ok" if not failed else "failed:" + ",".join(failed))
    except Exception as e:  # noqa: BLE001
        return RewardValue(0.0, f"error: {type(e).__name__}")


def difficulty_reward(p_hat: Any, cfg: RewardConfig | None = None) -> RewardValue:
    """Band-pass r_diff(p̂) ∈ [0, 1] (spec §5.4); ``band_mode="hard"`` gives the hard-edge ablation."""
    c = _cfg(cfg)
    if isinstance(p_hat, bool) or not isinstance(p_hat, int | float) or not math.isfinite(p_hat):
        return RewardValue(0.0, "no_pass_rate")
    p = min(1.0, max(0.0, float(p_hat)))
    if p <= 0.0:  # spec: p̂ < 1/K; with p̂ = successes / K that is exactly "no sample succeeded"
        return RewardValue(0.0, "never_solved")
    if c.p_low <= p <= c.p_high:
        return RewardValue(1.0, "in_band")
    if c.band_mode == "hard":
        return RewardValue(0.0, "out_of_band")
    edge = c.p_low if p < c.p_low else c.p_high
    value = math.exp(-((p - edge) ** 2) / (2 * c.sigma**2))
    return RewardValue(clip(value), "too_hard" if p < c.p_low else "too_easy")


def curriculum_reward(
    gate: bool, p_hat: Any, judge_score: Any, cfg: RewardConfig | None = None
) -> RewardValue:
    """r_curr = g·(w_diff·r_diff + w_sem·r_sem) ∈ [0, w_diff + w_sem] (= [0, 1] by default; spec §5.4)."""
    c = _cfg(cfg)
    if not gate:
        return RewardValue(0.0, "gate")
    d, s = difficulty_reward(p_hat, c), semantic_reward(judge_score)
    value = c.difficulty_weight * d.value + c.semantic_weight * s.value
    return RewardValue(
        clip(value, 0.0, c.difficulty_weight + c.semantic_weight), f"diff:{d.reason},sem:{s.reason}"
    )


def _spec_field(spec: Any, name: str) -> Any:
    return spec.get(name) if isinstance(spec, dict) else getattr(spec, name, None)


def spec_compliance(a: GeneratorAnalysis, spec: Any) -> str:
    """Whether the task has the spec's |T| = m tools and |C*| = n gold calls, as a reason string."""
    m, n = _spec_field(spec, "menu_size"), _spec_field(spec, "num_calls")
    menu_ok = m is None or len(a.tools) == m
    calls_ok = n is None or a.n_gold_elements == n
    return f"menu={'ok' if menu_ok else 'off'},calls={'ok' if calls_ok else 'off'}"


def task_from_analysis(a: GeneratorAnalysis, domain: str = "", spec: Any = None) -> Task | None:
    """The task inside an analysed Generator completion (see :func:`task_from_generator_text`)."""
    try:
        q = a.parse.question
        if not q or not a.tools or not (a.gold_ok or _is_no_call(a, spec)):
            return None
        calls = [x for x in a.calls if x is not None]
        return Task(q, a.tools, calls, domain, {"tools_text": a.parse.tools_text})
    except Exception:  # noqa: BLE001
        return None


def task_from_generator_text(text: Any, domain: str = "", spec: Any = None) -> Task | None:
    """The task (question, normalised menu, gold calls) inside a Generator completion, parsed relaxed, for the
    pass-rate / judge step; None unless the question, ≥ 1 tool and every gold call are usable. With a no-call
    ``spec``, a gold of exactly ``[]`` gives a task with no calls (the Solver succeeds only by answering [])."""
    return task_from_analysis(analyse_generator_output(text), domain, spec)
