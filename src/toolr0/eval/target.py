"""What ``toolr0 eval run --model`` names, resolved: a self-play run directory becomes its newest Solver, and is
evaluated in the Solver format it was trained in (its resolved config's ``prompts`` section) unless the
command line says otherwise. Light: reads files, imports no engine."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from toolr0.core.solver_format import SOLVER_FORMATS
from toolr0.errors import ToolR0Error


def resolve_eval_model(model: str) -> str:
    """``model`` as the sampler should load it: a self-play run directory becomes its latest Solver."""
    from toolr0.selfplay.rundir import is_run_dir, latest_solver  # light: no engine imports

    p = Path(model).expanduser()
    if is_run_dir(p):
        solver = latest_solver(p)
        if solver is None:
            raise ToolR0Error(
                f"{p} is a self-play run without a Solver checkpoint yet; pass --model default to "
                "evaluate the base model"
            )
        return str(solver)
    return model


@dataclass(frozen=True)
class SolverChoice:
    """The Solver format an evaluation uses, and why (printed by ``toolr0 eval run``)."""

    solver_format: str
    prompt_variant: str
    reason_first: bool
    why: str


def choose_solver_format(
    model: str,
    solver_format: str | None = None,
    prompt_variant: str | None = None,
    reason_first: bool | None = None,
) -> SolverChoice:
    """The Solver format, prompt variant and reason-first switch of an evaluation. Each one given explicitly
    wins; else a self-play run directory's own (its resolved config's ``prompts`` section: the run is
    evaluated the way it was trained); else the config default (:data:`DEFAULT_SOLVER_FORMAT`)."""
    from toolr0.core.prompts import PromptConfig
    from toolr0.selfplay.rundir import is_run_dir, run_config  # light: no engine imports

    defaults = PromptConfig()
    run = Path(model).expanduser()
    prompts: dict[str, Any] = {}
    if is_run_dir(run):
        cfg = run_config(run)
        if cfg is None:
            raise ToolR0Error(
                f"{run}: a self-play run without a readable config (state.json or config.yaml); "
                "pass --solver-format"
            )
        prompts = cfg.get("prompts") or {}
    if solver_format is not None:
        name, why = solver_format, "--solver-format"
    elif "solver_format" in prompts:
        name, why = (
            str(prompts["solver_format"]),
            f"the run's prompts.solver_format ({run}); --solver-format overrides",
        )
    else:
        name = defaults.solver_format
        why = "the config default prompts.solver_format" + (
            f" ({run} does not set it)" if is_run_dir(run) else "; --solver-format to choose"
        )
    if name not in SOLVER_FORMATS:
        raise ToolR0Error(f"solver format must be one of {', '.join(SOLVER_FORMATS)}, not {name!r}")
    variant = (
        prompt_variant
        if prompt_variant is not None
        else prompts.get("solver_variant", defaults.solver_variant)
    )
    if reason_first is None:
        reason_first = bool(prompts.get("solver_reason_first", defaults.solver_reason_first))
    return SolverChoice(name, str(variant), bool(reason_first), why)
