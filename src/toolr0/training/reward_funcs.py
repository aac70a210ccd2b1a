"""TRL-shaped reward functions wrapping the core rewards (spec §5 Generator, §7 Solver).

TRL calls each function with `prompts`, `completions` (conversational: a list of assistant messages),
`completion_ids`, every dataset column as a keyword list (`spec_json`, `calls_json`, ...), plus
`trainer_state`, `log_metric` and `log_extra`. Each reward is its own function, so TRL logs it separately as
`rewards/<function name>/mean|std`; weights go to `GRPOConfig.reward_weights` (from `RewardConfig`).
Extra scalars (gate rate, p̂ mean, judge mean, exact-match rate, ...) are logged through `log_metric`.

The curriculum reward sends ALL parseable tasks of one generation batch to the frozen Solver in one
`SolverService.pass_rates` call and one `judge` call (no per-completion round trips). A single service
failure is logged and gives r_curr from whatever was obtained (missing p̂ / judge → 0 terms); `max_failures`
failed calls in a row stop the phase with a one-line `RewardServiceError` naming the service's URL (a phase
must not train on a silently zeroed reward; 0 keeps the old warn-only behaviour).
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import time
from collections.abc import Callable, Iterator
from typing import Any

from toolr0.core.rewards import generator as grw
from toolr0.core.rewards import solver as srw
from toolr0.core.rewards.config import RewardConfig
from toolr0.core.solver_format import SolverFormat
from toolr0.errors import ToolR0Error

log = logging.getLogger(__name__)


class RewardServiceError(ToolR0Error):
    """The frozen-Solver service behind the curriculum reward failed too many times in a row."""


def service_location(service: Any) -> str:
    """Where a `SolverService` sends its queries: the server URL, else a description of the sampler."""
    sampler = getattr(service, "sampler", None)
    url = getattr(sampler, "base_url", None) or getattr(service, "base_url", None)
    if url:
        return str(url)
    return f"the in-process frozen Solver ({type(sampler or service).__name__})"

RewardFunc = Callable[..., list[float]]


def completion_text(c: Any) -> str:
    """The text of one TRL completion (conversational list of messages, or a plain string)."""
    if isinstance(c, str):
        return c
    if isinstance(c, list):
        return "".join(
            str(m.get("content", "")) for m in c if isinstance(m, dict) and m.get("role") != "user"
        )
    if isinstance(c, dict):
        return str(c.get("content", ""))
    return ""


def _texts(completions: list[Any]) -> list[str]:
    return [completion_text(c) for c in completions]


def _metric(log_metric: Any, name: str, value: float | None) -> None:
    if callable(log_metric) and value is not None and math.isfinite(value):
        log_metric(name, float(value))


def _mean(xs: list[float]) -> float | None:
    return sum(xs) / len(xs) if xs else None


# --------------------------------------------------------------------------------------------- Generator
def generator_weights(cfg: RewardConfig) -> list[float]:
    """GRPO reward weights in `generator_reward_funcs` order: format, validity, curriculum."""
    return [cfg.generator_format_weight, cfg.generator_validity_weight, cfg.generator_curriculum_weight]


def _as_floats(values: Any, attr_names: tuple[str, ...]) -> list[float | None]:
    out: list[float | None] = []
    for v in values or []:
        if isinstance(v, int | float) and not isinstance(v, bool):
            out.append(float(v))
            continue
        got = None
        for a in attr_names:
            x = v.get(a) if isinstance(v, dict) else getattr(v, a, None)
            if isinstance(x, int | float) and not isinstance(x, bool):
                got = float(x)
                break
        out.append(got)
    return out


def generator_reward_funcs(
    cfg: RewardConfig | None = None,
    service: Any | None = None,
    scope: Callable[[], contextlib.AbstractContextManager[Any]] | None = None,
    K: int | None = None,
    max_failures: int = 3,
) -> list[RewardFunc]:
    """[format, validity, curriculum] for Generator GRPO.

    `service`: a `SolverService` (frozen Solver) with `pass_rates(tasks, K)` and `judge(tasks)`; None gives
    r_curr without the Solver terms (p̂ and judge missing → 0). `scope`: a context-manager factory entered
    around the service calls (e.g. `roles.frozen_scope` to switch to the frozen Solver adapter and restore
    the trained one afterwards). `K`: samples per task (None: the service's `solver_sampling.k`).
    `max_failures`: consecutive failed service calls that raise `RewardServiceError` (0: never raise, only
    warn).
    """
    c = cfg if cfg is not None else RewardConfig()
    failures = [0]  # consecutive failed service calls (a success resets it)

    def generator_format(
        completions: list[Any], spec_json: list[str] | None = None, log_metric: Any = None, **_: Any
    ) -> list[float]:
        analyses = [grw.analyse_generator_output(t) for t in _texts(completions)]
        specs = _specs(spec_json, len(analyses))
        vals = [grw.format_reward(a, c, s).value for a, s in zip(analyses, specs, strict=True)]
        _metric(log_metric, "generator/gate_rate", _mean([float(a.gate) for a in analyses]))
        _metric(log_metric, "generator/all_tags_rate", _mean([float(a.parse.all_tags) for a in analyses]))
        return vals

    def generator_validity(
        completions: list[Any], spec_json: list[str] | None = None, log_metric: Any = None, **_: Any
    ) -> list[float]:
        texts = _texts(completions)
        specs = _specs(spec_json, len(texts))
        vals = [grw.validity_reward(t, c, s).value for t, s in zip(texts, specs, strict=True)]
        full = c.valid_exists_weight + c.valid_args_weight + c.valid_ground_weight
        _metric(log_metric, "generator/fully_valid_rate", _mean([float(v >= full - 1e-9) for v in vals]))
        return vals

    def generator_curriculum(
        completions: list[Any],
        spec_json: list[str] | None = None,
        log_metric: Any = None,
        log_extra: Any = None,
        **_: Any,
    ) -> list[float]:
        texts = _texts(completions)
        n = len(texts)
        gates = [grw.analyse_generator_output(t).gate for t in texts]
        domains = [_domain(spec_json[i]) if spec_json and i < len(spec_json) else "" for i in range(n)]
        specs = _specs(spec_json, n)
        tasks = [
            grw.task_from_generator_text(t, d, s) if g else None
            for t, d, s, g in zip(texts, domains, specs, gates, strict=True)
        ]
        idx = [i for i, t in enumerate(tasks) if t is not None]
        p_hat: list[float | None] = [None] * n
        judge: list[float | None] = [None] * n
        seconds = 0.0
        if idx and service is not None:
            batch = [tasks[i] for i in idx]
            t0 = time.perf_counter()
            try:
                with _entered(scope):
                    if c.difficulty_weight > 0:
                        for i, v in zip(
                            idx,
                            _as_floats(service.pass_rates(batch, K), ("p_hat", "pass_rate")),
                            strict=False,
                        ):
                            p_hat[i] = v
                    if c.semantic_weight > 0:
                        for i, v in zip(
                            idx, _as_floats(service.judge(batch), ("score", "judge_score")), strict=False
                        ):
                            judge[i] = v
                failures[0] = 0
            except Exception as exc:  # noqa: BLE001 - one failure is tolerated, a run of them is not
                failures[0] += 1
                what = " ".join(f"{type(exc).__name__}: {exc}".split())[:800]
                if max_failures > 0 and failures[0] >= max_failures:
                    raise RewardServiceError(
                        f"frozen Solver service at {service_location(service)} failed {failures[0]} times in "
                        f"a row (last: {what}); stopping the phase (inference.service_max_failures)"
                    ) from None
                log.warning(
                    "frozen Solver service at %s failed (%s; %d in a row); r_curr uses what was obtained",
                    service_location(service),
                    what,
                    failures[0],
                )
            seconds = time.perf_counter() - t0
        vals = []
        for i in range(n):
            score = int(judge[i]) if judge[i] is not None else None
            vals.append(grw.curriculum_reward(gates[i], p_hat[i], score, c).value)
        _metric(log_metric, "generator/tasks_scored_rate", len(idx) / n if n else None)
        ps = [p for p in p_hat if p is not None]
        _metric(log_metric, "generator/p_hat_mean", _mean(ps))
        _metric(log_metric, "generator/in_band_rate", _mean([float(c.p_low <= p <= c.p_high) for p in ps]))
        _metric(log_metric, "generator/judge_mean", _mean([j for j in judge if j is not None]))
        if idx and service is not None:
            _metric(log_metric, "generator/solver_seconds", seconds)
        if callable(log_extra):
            log_extra("p_hat", [p if p is not None else float("nan") for p in p_hat])
        return vals

    return [generator_format, generator_validity, generator_curriculum]


def _specs(spec_json: list[str] | None, n: int) -> list[dict[str, Any] | None]:
    """The spec dict of each row (None when absent or malformed): no-call specs change format and validity."""
    out: list[dict[str, Any] | None] = []
    for i in range(n):
        try:
            d = json.loads(spec_json[i]) if spec_json and i < len(spec_json) and spec_json[i] else None
        except (ValueError, TypeError):
            d = None
        out.append(d if isinstance(d, dict) else None)
    return out


def _domain(spec_json: str | None) -> str:
    try:
        return str(json.loads(spec_json).get("domain", "")) if spec_json else ""
    except (ValueError, AttributeError):
        return ""


@contextlib.contextmanager
def _entered(scope: Callable[[], contextlib.AbstractContextManager[Any]] | None) -> Iterator[None]:
    import torch

    with contextlib.ExitStack() as stack:
        if scope is not None:
            stack.enter_context(scope())
        stack.enter_context(torch.no_grad())
        yield


# ------------------------------------------------------------------------------------------------ Solver
def solver_weights(cfg: RewardConfig) -> list[float]:
    """GRPO reward weights in `solver_reward_funcs` order: format, accuracy."""
    return [cfg.solver_format_weight, cfg.solver_accuracy_weight]


def solver_reward_funcs(
    cfg: RewardConfig | None = None, solver_format: SolverFormat | None = None
) -> list[RewardFunc]:
    """[format, accuracy] for Solver GRPO in the Solver's format; gold calls from the `calls_json` column."""
    c = cfg if cfg is not None else RewardConfig()
    fmt = solver_format or SolverFormat()

    def solver_format(completions: list[Any], log_metric: Any = None, **_: Any) -> list[float]:
        vals = [srw.solver_format_reward(t, c, fmt).value for t in _texts(completions)]
        _metric(log_metric, "solver/answer_present_rate", _mean([float(v > 0) for v in vals]))
        return vals

    def solver_accuracy(
        completions: list[Any], calls_json: list[str] | None = None, log_metric: Any = None, **_: Any
    ) -> list[float]:
        texts = _texts(completions)
        vals = []
        for i, t in enumerate(texts):
            gold = _gold(calls_json[i] if calls_json and i < len(calls_json) else None)
            vals.append(srw.solver_accuracy_reward(t, gold, c, fmt).value if gold is not None else 0.0)
        _metric(log_metric, "solver/exact_rate", _mean([float(v >= 1.0 - 1e-9) for v in vals]))
        return vals

    return [solver_format, solver_accuracy]


def _gold(calls_json: str | None) -> Any:
    if calls_json is None:
        return None
    try:
        return json.loads(calls_json)
    except ValueError:
        return None
