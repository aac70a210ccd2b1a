"""The reward terms of each role, declared once, in order (spec §5 Generator, §7 Solver).

A role's reward is the weighted sum of its terms: R_G = w_f·r_fmt + w_v·r_valid + w_c·r_curr (spec §5) and
R_S = w_f·r_fmt + w_a·r_acc (spec §7), every weight read from :class:`RewardConfig`. The core totals
(:func:`generator_rewards`, :func:`solver_total`) and the trainer's reward functions
(``toolr0.training.reward_funcs``: one function per term, named after it, weights in the same order) are both
built from :data:`GENERATOR_TERMS` / :data:`SOLVER_TERMS`, so adding a term is one entry here.

A term scores one *sample*: the completion parsed once (plus what the term needs beside the text: the row's
spec, the gold calls, the frozen Solver's p̂ and judge score), never the raw text.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from operator import attrgetter
from typing import Any, Generic, TypeVar

from toolr0.core.completions import SolverParse
from toolr0.core.rewards.base import RewardValue
from toolr0.core.rewards.config import RewardConfig
from toolr0.core.rewards.generator import (
    GeneratorAnalysis,
    analyse_generator_output,
    curriculum_reward,
    difficulty_reward,
    format_reward,
    spec_compliance,
    task_from_analysis,
    validity_reward,
)
from toolr0.core.rewards.judge import semantic_reward
from toolr0.core.rewards.solver import (
    CUT_REASON,
    cut_at_limit,
    parse_reply,
    solver_accuracy_reward,
    solver_format_reward,
)
from toolr0.core.schema import Task
from toolr0.core.solver_format import SolverFormat

S = TypeVar("S")
Metrics = dict[str, float | None]


def _mean(xs: Sequence[float]) -> float | None:
    return sum(xs) / len(xs) if xs else None


def _no_metrics(samples: Sequence[Any], values: list[float], cfg: RewardConfig) -> Metrics:
    return {}


@dataclass(frozen=True)
class RewardTerm(Generic[S]):
    """One weighted term of a role's reward.

    ``name``: the trainer's reward function name (logged as ``rewards/<name>/mean``); ``key``: the term's
    short name in a breakdown; ``weight_of``: its weight in the config; ``score``: its value for one sample
    (pure, never raises); ``metrics``: extra batch scalars to log; ``needs_solver``: the score reads the
    frozen Solver's p̂ / judge score, which the caller fills in for a whole batch at once.
    """

    name: str
    key: str
    weight_of: Callable[[RewardConfig], float]
    score: Callable[[S, RewardConfig], RewardValue]
    metrics: Callable[[Sequence[S], list[float], RewardConfig], Metrics] = _no_metrics
    needs_solver: bool = False


def term_weights(terms: Sequence[RewardTerm[Any]], cfg: RewardConfig) -> list[float]:
    """The weights of ``terms``, in order (``GRPOConfig.reward_weights``)."""
    return [float(t.weight_of(cfg)) for t in terms]


def weighted_total(
    terms: Sequence[RewardTerm[S]], sample: S, cfg: RewardConfig
) -> tuple[float, dict[str, RewardValue]]:
    """Σ weight·score over ``terms`` for one sample, and each term's value by key."""
    values = {t.key: t.score(sample, cfg) for t in terms}
    return sum(t.weight_of(cfg) * values[t.key].value for t in terms), values


# ------------------------------------------------------------------------------------------- Generator
@dataclass(frozen=True)
class GeneratorSample:
    """One Generator completion, analysed once, with what its terms need beside the text."""

    analysis: GeneratorAnalysis
    spec: Any = None  # the row's task spec (a no-call spec changes format and validity)
    task: Task | None = None  # the task a gated completion hands to the frozen Solver
    pass_rate: float | None = None  # p̂ from K frozen-Solver samples (None: not measured)
    judge_score: int | None = None  # 1-5, already resolved with retries/fallback (None: not judged)

    @classmethod
    def of(cls, text: Any, spec: Any = None, domain: str = "") -> GeneratorSample:
        a = analyse_generator_output(text)
        return cls(a, spec, task_from_analysis(a, domain, spec) if a.gate else None)


def _format_metrics(samples: Sequence[GeneratorSample], values: list[float], cfg: RewardConfig) -> Metrics:
    return {
        "generator/gate_rate": _mean([float(s.analysis.gate) for s in samples]),
        "generator/all_tags_rate": _mean([float(s.analysis.parse.all_tags) for s in samples]),
    }


def _validity_metrics(samples: Sequence[GeneratorSample], values: list[float], cfg: RewardConfig) -> Metrics:
    full = cfg.valid_exists_weight + cfg.valid_args_weight + cfg.valid_ground_weight
    return {"generator/fully_valid_rate": _mean([float(v >= full - 1e-9) for v in values])}


def _curriculum_metrics(
    samples: Sequence[GeneratorSample], values: list[float], cfg: RewardConfig
) -> Metrics:
    ps = [s.pass_rate for s in samples if s.pass_rate is not None]
    scored = sum(s.task is not None for s in samples)
    return {
        "generator/tasks_scored_rate": scored / len(samples) if samples else None,
        "generator/p_hat_mean": _mean(ps),
        "generator/in_band_rate": _mean([float(cfg.p_low <= p <= cfg.p_high) for p in ps]),
        "generator/judge_mean": _mean([float(s.judge_score) for s in samples if s.judge_score is not None]),
    }


GENERATOR_TERMS: tuple[RewardTerm[GeneratorSample], ...] = (
    RewardTerm(
        "generator_format",
        "fmt",
        attrgetter("generator_format_weight"),
        lambda s, c: format_reward(s.analysis, c, s.spec),
        _format_metrics,
    ),
    RewardTerm(
        "generator_validity",
        "valid",
        attrgetter("generator_validity_weight"),
        lambda s, c: validity_reward(s.analysis, c, s.spec),
        _validity_metrics,
    ),
    RewardTerm(
        "generator_curriculum",
        "curr",
        attrgetter("generator_curriculum_weight"),
        lambda s, c: curriculum_reward(s.analysis.gate, s.pass_rate, s.judge_score, c),
        _curriculum_metrics,
        needs_solver=True,
    ),
)


@dataclass
class GeneratorRewardBreakdown:
    """All Generator reward components of one completion; ``total`` = weighted sum of the terms (spec §5)."""

    gate: float = 0.0
    diff: float = 0.0
    sem: float = 0.0
    total: float = 0.0
    terms: dict[str, float] = field(default_factory=dict)  # each term's value by key
    reasons: dict[str, str] = field(default_factory=dict)

    fmt = property(lambda self: self.terms.get("fmt", 0.0))
    valid = property(lambda self: self.terms.get("valid", 0.0))
    curr = property(lambda self: self.terms.get("curr", 0.0))


def generator_rewards(
    text: Any,
    cfg: RewardConfig | None = None,
    pass_rate: float | None = None,
    judge_score: int | None = None,
    spec: Any = None,
) -> GeneratorRewardBreakdown:
    """Every Generator reward for one completion. ``pass_rate`` (p̂ from K frozen-Solver samples) and
    ``judge_score`` (1-5, already resolved with retries/fallback) come from the Solver service; when absent,
    r_diff / r_sem are 0. ``spec`` (optional) records |T| = m, |C*| = n compliance in the reasons and, when it
    asks for no call, lets a gold of exactly ``[]`` score as a no-call task."""
    c = cfg if cfg is not None else RewardConfig()
    out = GeneratorRewardBreakdown()
    try:
        sample = replace(GeneratorSample.of(text, spec), pass_rate=pass_rate, judge_score=judge_score)
        a = sample.analysis
        out.total, values = weighted_total(GENERATOR_TERMS, sample, c)
        out.terms = {k: v.value for k, v in values.items()}
        out.gate = 1.0 if a.gate else 0.0
        if a.gate:
            out.diff, out.sem = difficulty_reward(pass_rate, c).value, semantic_reward(judge_score).value
        out.reasons = {"gate": a.gate_reason, **{k: v.reason for k, v in values.items()}}
        if spec is not None:
            out.reasons["spec"] = spec_compliance(a, spec)
    except Exception as e:  # noqa: BLE001
        out = GeneratorRewardBreakdown(reasons={"error": type(e).__name__})
    return out


# ---------------------------------------------------------------------------------------------- Solver
@dataclass(frozen=True)
class SolverSample:
    """One Solver reply, parsed once in its format, with the task's gold calls (None: unknown, accuracy 0)."""

    parse: SolverParse
    gold: Any
    fmt: SolverFormat

    @classmethod
    def of(
        cls, text: Any, gold: Any, cfg: RewardConfig, fmt: SolverFormat | None = None, cut: bool = False
    ) -> SolverSample:
        """`cut`: the reply hit the token limit without ending its turn; in the native format that is an
        unclosed answer (no format, no accuracy reward) unless ``allow_unclosed_answer``. The reference format
        reads it from its own tags, as the spec does."""
        f = fmt if fmt is not None else SolverFormat()
        parse = parse_reply(text, cfg, f)
        if cut and f.native and not cfg.allow_unclosed_answer:
            parse = cut_at_limit(parse)
        return cls(parse, gold, f)


def _accuracy(s: SolverSample, c: RewardConfig) -> RewardValue:
    if s.gold is None:
        return RewardValue(0.0, "no_gold")
    return solver_accuracy_reward(s.parse, s.gold, c, s.fmt)


SOLVER_TERMS: tuple[RewardTerm[SolverSample], ...] = (
    RewardTerm(
        "solver_format",
        "fmt",
        attrgetter("solver_format_weight"),
        lambda s, c: solver_format_reward(s.parse, c, s.fmt, s.gold),
        lambda ss, vs, c: {
            "solver/answer_present_rate": _mean([float(v > 0) for v in vs]),
            "solver/cut_rate": _mean([float(s.parse.reason == CUT_REASON) for s in ss]),
        },
    ),
    RewardTerm(
        "solver_accuracy",
        "acc",
        attrgetter("solver_accuracy_weight"),
        _accuracy,
        lambda ss, vs, c: {"solver/exact_rate": _mean([float(v >= 1.0 - 1e-9) for v in vs])},
    ),
)


def solver_total(
    text: Any, gold_calls: Any, cfg: RewardConfig | None = None, fmt: SolverFormat | None = None
) -> float:
    """R_S = w_f·r_fmt + w_a·r_acc (∈ [0, 2] by default); no gold calls count as an empty gold."""
    c = cfg if cfg is not None else RewardConfig()
    sample = SolverSample.of(text, gold_calls if gold_calls is not None else [], c, fmt)
    return weighted_total(SOLVER_TERMS, sample, c)[0]
