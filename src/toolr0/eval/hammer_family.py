"""The Hammer benchmark family (spec §12.1): processed Hammer-format test files, read at run time from
``<data dir>/hammer/`` and scored by :func:`toolr0.eval.scoring.score_completion`.

Adding a Hammer-format file (a JSON list of ``{"query", "tools", "answers"}``) is one line at the end of this
module: ``register(HammerBenchmark("mybench", "My Bench", file="mybench.json", size=120))``. It joins the
``hammer`` group and the Hammer table of the report.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from toolr0.core.solver_format import DEFAULT_SOLVER_FORMAT
from toolr0.errors import ToolR0Error
from toolr0.eval.hammer_data import HAMMER_BENCHMARKS, hammer_file, load_hammer
from toolr0.eval.items import EvalItem
from toolr0.eval.registry import Benchmark, register
from toolr0.eval.scoring import Verdict, score_completion


@dataclass(frozen=True)
class HammerBenchmark(Benchmark):
    """A processed Hammer test file, read at run time from ``<data dir>/hammer/``."""

    family: str = "hammer"
    groups: tuple[str, ...] = ("hammer",)
    file: str | None = None  # file name under hammer/ (None: the entry in hammer_data.HAMMER_BENCHMARKS)

    def available(self, data_dir: str | os.PathLike | None = None) -> tuple[bool, str]:
        try:
            return True, str(hammer_file(self.name, data_dir, self.file))
        except ToolR0Error as exc:
            return False, f"missing ({exc})"

    def load(self, data_dir: str | os.PathLike | None = None) -> list[EvalItem]:
        return load_hammer(self.name, data_dir, self.file)

    def score(self, item: EvalItem, text: str, solver_format: str = DEFAULT_SOLVER_FORMAT) -> Verdict:
        return score_completion(text, item.gold, solver_format)


# The paper's four files (spec §12.1); one more file is one more register line.
for _name, (_file, _size, _display) in HAMMER_BENCHMARKS.items():
    register(HammerBenchmark(_name, _display, size=_size))
