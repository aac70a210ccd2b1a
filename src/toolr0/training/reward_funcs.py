"""TRL reward functions generated from the core's reward terms (spec §5 Generator, §7 Solver).

TRL calls each function with `prompts`, `completions` (conversational: a list of assistant messages),
`completion_ids`, every dataset column as a keyword list (`spec_json`, `calls_json`, ...), plus
`trainer_state`, `log_metric` and `log_extra`. There is one function per term of the role's declaration
(`toolr0.core.rewards.terms`), named after it, so TRL logs each as `rewards/<name>/mean|std`; the weights
for `GRPOConfig.reward_weights` come from the same declaration, in the same order. The functions of a role
share one parse of each completion per step. Each term's extra scalars (gate rate, p̂ mean, judge mean,
exact-match rate, ...) are logged through `log_metric`.

The curriculum reward sends ALL parseable tasks of one generation batch to the frozen Solver in one
`SolverService.pass_rates` call and one `judge` call (no per-completion round trips). A single service
failure is logged and gives r_curr from whatever was obtained (missing p̂ / judge → 0 terms); `max_failures`
failed calls in a row stop the phase with a one-line `RewardServiceError` naming the service's URL (a phase
must not train on a silently zeroed reward; 0 keeps the old warn-only behaviour). An unreachable service
(`ServiceUnreachableError`: connection refused, timeout, the server's process gone) stops it at the first call.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

from toolr0.core.rewards.config import RewardConfig
from toolr0.core.rewards.terms import (
    GENERATOR_TERMS,
    SOLVER_TERMS,
    GeneratorSample,
    RewardTerm,
    SolverSample,
    term_weights,
)
from toolr0.core.solver_format import SolverFormat
from toolr0.errors import ServiceUnreachableError, ToolR0Error
from toolr0.io import append_jsonl

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


# ------------------------------------------------------------------------------------------ the adapters
class _LastBatch:
    """The samples of the last batch seen. TRL calls a role's reward functions one after another on the same
    completions and columns, so every completion is parsed once per step, not once per term."""

    def __init__(self, build: Callable[[list[str], dict[str, Any]], list[Any]], columns: tuple[str, ...]):
        self._build, self._columns = build, columns
        self._key: Any = None
        self._samples: list[Any] = []

    def __call__(self, completions: list[Any], columns: dict[str, Any]) -> list[Any]:
        texts = _texts(completions)
        key = (texts, [columns.get(name) for name in self._columns])
        if key != self._key:  # compared by equality (columns may hold unhashable values)
            self._samples, self._key = self._build(texts, columns), key
        return self._samples


Fill = Callable[[list[Any], Any, Any, Any], list[Any]]


def _adapters(
    terms: tuple[RewardTerm[Any], ...], batch: _LastBatch, cfg: RewardConfig, fill: Fill | None = None
) -> list[RewardFunc]:
    """One TRL reward function per declared term, in order, named after it. `fill(samples, log_metric,
    log_extra, trainer_state)` completes the samples of a term that needs the frozen Solver."""

    def adapter(term: RewardTerm[Any]) -> RewardFunc:
        def reward(
            completions: list[Any], log_metric: Any = None, log_extra: Any = None, **columns: Any
        ) -> list[float]:
            samples = batch(completions, columns)
            if term.needs_solver and fill is not None:
                samples = fill(samples, log_metric, log_extra, columns.get("trainer_state"))
            values = [term.score(s, cfg).value for s in samples]
            for name, v in term.metrics(samples, values, cfg).items():
                _metric(log_metric, name, v)
            return values

        reward.__name__ = reward.__qualname__ = term.name
        return reward

    return [adapter(t) for t in terms]


def reward_names(role: str) -> list[str]:
    """The role's reward function names, in order (TRL logs each as `rewards/<name>/mean`)."""
    return [t.name for t in _TERMS[role]]


def reward_weights(role: str, cfg: RewardConfig) -> list[float]:
    """`GRPOConfig.reward_weights` of the role: the declared terms' weights, in the same order."""
    return term_weights(_TERMS[role], cfg)


# --------------------------------------------------------------------------------------------- Generator
def generator_weights(cfg: RewardConfig) -> list[float]:
    """GRPO reward weights in `generator_reward_funcs` order (format, validity, curriculum)."""
    return reward_weights("generator", cfg)


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


def _generator_samples(texts: list[str], columns: dict[str, Any]) -> list[GeneratorSample]:
    spec_json = columns.get("spec_json")
    n = len(texts)
    domains = [_domain(spec_json[i]) if spec_json and i < len(spec_json) else "" for i in range(n)]
    specs = _specs(spec_json, n)
    return [GeneratorSample.of(t, s, d) for t, s, d in zip(texts, specs, domains, strict=True)]


def generator_reward_funcs(
    cfg: RewardConfig | None = None,
    service: Any | None = None,
    scope: Callable[[], contextlib.AbstractContextManager[Any]] | None = None,
    max_failures: int = 3,
    p_hat_path: str | os.PathLike[str] | None = None,
) -> list[RewardFunc]:
    """One function per Generator term (`GENERATOR_TERMS`: format, validity, curriculum) for Generator GRPO.

    `service`: a `SolverService` (frozen Solver) with `pass_rates(tasks)` and `judge(tasks)`, every setting
    its own (`frozen_solver`: K, temperatures, judge retries); None gives
    r_curr without the Solver terms (p̂ and judge missing → 0). `scope`: a context-manager factory entered
    around the service calls (e.g. `frozen.frozen_scope` to switch to the frozen Solver adapter and restore
    the trained one afterwards).
    `max_failures`: consecutive failed service calls that raise `RewardServiceError` (0: never raise, only
    warn). `p_hat_path`: a JSONL file that gets one row per step, ``{"step", "p_hat": [...]}``, the p̂ of the
    batch's parseable tasks (the loop draws their histogram; other ranks write ``<stem>.rank<N>.jsonl``).
    """
    c = cfg if cfg is not None else RewardConfig()
    failures = [0]  # consecutive failed service calls (a success resets it)

    def with_solver(
        samples: list[GeneratorSample], log_metric: Any, log_extra: Any, state: Any
    ) -> list[GeneratorSample]:
        """p̂ and the judge score of every parseable task of the batch: ONE call of each to the service."""
        idx = [i for i, s in enumerate(samples) if s.task is not None]
        n = len(samples)
        p_hat: list[float | None] = [None] * n
        judge: list[float | None] = [None] * n
        if idx and service is not None:
            batch = [samples[i].task for i in idx]
            t0 = time.perf_counter()
            try:
                with _entered(scope):
                    if c.difficulty_weight > 0:
                        for i, v in zip(
                            idx,
                            _as_floats(service.pass_rates(batch), ("p_hat", "pass_rate")),
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
                _service_failed(service, exc, failures, max_failures)
            _metric(log_metric, "generator/solver_seconds", time.perf_counter() - t0)
        if callable(log_extra):
            log_extra("p_hat", [p if p is not None else float("nan") for p in p_hat])
        if p_hat_path is not None:
            _record_p_hat(p_hat_path, state, [p for p in p_hat if p is not None])
        return [
            replace(s, pass_rate=p, judge_score=int(j) if j is not None else None)
            for s, p, j in zip(samples, p_hat, judge, strict=True)
        ]

    batch = _LastBatch(_generator_samples, ("spec_json",))
    return _adapters(GENERATOR_TERMS, batch, c, with_solver)


def _service_failed(service: Any, exc: Exception, failures: list[int], max_failures: int) -> None:
    """Count one failed service call: warn, or raise `RewardServiceError` after `max_failures` in a row. An
    unreachable service (connection refused, timeout, server process gone) raises at once: the next optimizer
    step would otherwise train on a zeroed curriculum reward."""
    failures[0] += 1
    what = " ".join(f"{type(exc).__name__}: {exc}".split())[:800]
    if max_failures > 0 and isinstance(exc, ServiceUnreachableError):
        raise RewardServiceError(
            f"frozen Solver service at {service_location(service)} is unreachable ({what}); stopping the phase "
            "before an optimizer step trains on a zeroed curriculum reward"
        ) from None
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


def _record_p_hat(path: str | os.PathLike[str], state: Any, values: list[float]) -> None:
    """Append this step's p̂ values; the step is the one these rewards train (TRL's global_step + 1)."""
    if not values:
        return
    rank = os.environ.get("RANK", "0")
    p = Path(path)
    if rank != "0":  # one file per process: concurrent appends to one file could interleave
        p = p.with_name(f"{p.stem}.rank{rank}{p.suffix}")
    step = int(getattr(state, "global_step", 0) or 0) + 1
    append_jsonl(p, [{"step": step, "p_hat": [round(v, 4) for v in values]}])


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
    """GRPO reward weights in `solver_reward_funcs` order (format, accuracy)."""
    return reward_weights("solver", cfg)


def solver_reward_funcs(
    cfg: RewardConfig | None = None,
    solver_format: SolverFormat | None = None,
    max_completion_length: int | None = None,
    end_token_ids: tuple[int, ...] = (),
) -> list[RewardFunc]:
    """One function per Solver term (`SOLVER_TERMS`: format, accuracy) for Solver GRPO in the Solver's format;
    gold calls from the `calls_json` column (unreadable gold: accuracy 0).

    `max_completion_length` and `end_token_ids` (EOS and pad, as TRL's clipped-ratio uses them) tell from
    TRL's `completion_ids` which replies were cut at the limit: in the native format those earn nothing
    unless `allow_unclosed_answer` (`SolverSample.of`). None: no reply counts as cut."""
    c = cfg if cfg is not None else RewardConfig()
    fmt = solver_format or SolverFormat()
    ends = set(end_token_ids)

    def is_cut(ids: Any) -> bool:
        if not max_completion_length or not isinstance(ids, list | tuple) or not ids:
            return False
        return len(ids) >= max_completion_length and ids[-1] not in ends

    def samples(texts: list[str], columns: dict[str, Any]) -> list[SolverSample]:
        calls_json = columns.get("calls_json")
        ids = columns.get("completion_ids") or []
        return [
            SolverSample.of(
                t,
                _gold(calls_json[i] if calls_json and i < len(calls_json) else None),
                c,
                fmt,
                cut=is_cut(ids[i] if i < len(ids) else None),
            )
            for i, t in enumerate(texts)
        ]

    return _adapters(SOLVER_TERMS, _LastBatch(samples, ("calls_json", "completion_ids")), c)


def _gold(calls_json: str | None) -> Any:
    if calls_json is None:
        return None
    try:
        return json.loads(calls_json)
    except ValueError:
        return None


_TERMS: dict[str, tuple[RewardTerm[Any], ...]] = {"generator": GENERATOR_TERMS, "solver": SOLVER_TERMS}
