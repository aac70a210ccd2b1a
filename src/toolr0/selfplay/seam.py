"""The seam between the self-play loop and the models: what `loop.py` and `stages.py` call on an engine.

`engine.RoleEngine` (in-process models) and `launch.ProcessEngine` (phases as child processes) implement
`Engine`; the tests' fakes do too. The loop never touches torch: it only sees these protocols.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from toolr0.selfplay.progress import Reporter

Task = dict[str, Any]


class CandidateGenerator(Protocol):
    """The frozen G_t sampling one completion per Generator prompt (spec §6.1)."""

    def generate(self, messages: list[list[dict[str, str]]], specs: list[Any], seed: int) -> list[str]: ...


class FrozenSolver(Protocol):
    """The frozen S_{t-1} as verifier and difficulty judge of stage B (spec §6.4, §6.5):
    `inference.solver_service.SolverService`, every setting from the `frozen_solver` section. The stages pass
    tasks and a per-batch seed, never settings."""

    def verifies(self, task: Task) -> bool:
        """Whether cross-verification checks this task (no-call tasks may skip it)."""
        ...

    def cross_verify(
        self, tasks: list[Task], seed: int | None = None
    ) -> Sequence[tuple[float, dict[str, Any]]]:
        """(agreement, extra record fields: kept = agreement >= τ, k, mode) per task."""
        ...

    def pass_rates_detailed(
        self, tasks: list[Task], K: int | None = None, seed: int | None = None
    ) -> Sequence[Any]:
        """A `PassRate` (p_hat, successes, K, ...) per task."""
        ...

    def judge_labels(self, tasks: list[Task]) -> list[tuple[str, str, bool]]:
        """(easy|medium|hard, raw reply, used_fallback) per task."""
        ...


@runtime_checkable
class Engine(Protocol):
    """Both roles' weights across the loop. The `train_*` results are the records `loop._finish_train` keeps
    (checkpoint, steps, reward means, log history, ...)."""

    def begin_iteration(self, t: int) -> None: ...

    def generator(self, checkpoint: str | None, t: int) -> CandidateGenerator: ...

    def solver(self, checkpoint: str | None, t: int) -> FrozenSolver: ...

    def train_generator(
        self, *, iteration: int, init: str | None, frozen_solver: str | None, out_dir: Path, reporter: Reporter
    ) -> dict[str, Any]: ...

    def train_solver(
        self, *, iteration: int, init: str | None, curriculum: Path, out_dir: Path, reporter: Reporter
    ) -> dict[str, Any]: ...

    def close(self) -> None: ...


@runtime_checkable
class StageBChild(Protocol):
    """An engine that runs stage B in its own process (`launch.mode: processes`); the loop then reads the
    results from the run directory instead of calling `generator` / `solver`."""

    def run_stage_b(self, t: int, reporter: Reporter | None = None) -> None: ...
