"""The benchmark registry: every benchmark behind one small base class, so the runner, the report and the CLI
iterate benchmarks instead of branching on names.

A benchmark says its name, display name, family and expected size, whether its data (or optional engine) is
here, how to load its items, how to score one completion and what an oracle (gold or corrupted) prediction is.
Each family lives in its own module, which imports this one, subclasses :class:`Benchmark` and calls
:func:`register` at import: :mod:`toolr0.eval.hammer_family` (the Hammer-format files; adding one is one
``register(HammerBenchmark(name, display, file=..., size=...))`` line there) and
:mod:`toolr0.eval.bfcl_family`. This module imports no family: the first lookup imports the modules of
:data:`FAMILY_MODULES` (the families shipped in the package), then those named in ``$TOOLR0_BENCHMARK_MODULES``
(comma-separated, for families outside the package) and any passed to :func:`load_families` (the
``--benchmark-module`` option of ``toolr0 eval``). So a new family is one new module, plus one line in
:data:`FAMILY_MODULES` when it ships in the package. Groups (`hammer`, `bfcl`, `bfcl_live`, `all`) are
families' members. Nothing outside this module and the families' own modules branches on benchmark names.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from toolr0.core.schema import ToolCall
from toolr0.core.solver_format import DEFAULT_SOLVER_FORMAT
from toolr0.errors import ToolR0Error
from toolr0.eval.corrupt import EXPECTED_REASON, corrupt_calls

if TYPE_CHECKING:
    from toolr0.eval.items import EvalItem
    from toolr0.eval.scoring import Verdict

# The families shipped in the package, imported (in this order: the registry order) on the first lookup.
FAMILY_MODULES: tuple[str, ...] = ("toolr0.eval.hammer_family", "toolr0.eval.bfcl_family")
ENV_VAR = "TOOLR0_BENCHMARK_MODULES"  # comma-separated importable modules holding more families


@dataclass(frozen=True)
class Benchmark:
    """One benchmark. Subclasses implement `load` and `score`; `oracle_calls` defaults to gold / corrupted."""

    name: str
    display: str
    family: str
    groups: tuple[str, ...] = ()
    size: int | None = None  # expected number of items (None: known only once loaded)

    @property
    def short(self) -> str:
        """The row label inside its family's own table."""
        return self.display

    @property
    def aliases(self) -> tuple[str, ...]:
        """Other names :func:`get` accepts for this benchmark (a bare BFCL category)."""
        return ()

    @classmethod
    def unknown_hint(cls, name: str) -> str | None:
        """A sharper error than "unknown benchmark" when ``name`` looks like one of this family's names."""
        return None

    @property
    def engine_version(self) -> str | None:
        """Version of the optional scoring engine, recorded with the results (None: no engine)."""
        return None

    def missing_engine(self) -> str | None:
        """An install hint when the benchmark's optional engine is absent, else None."""
        return None

    def available(self, data_dir: str | os.PathLike | None = None) -> tuple[bool, str]:
        """(data here?, where it is or what to install)."""
        return True, ""

    def load(self, data_dir: str | os.PathLike | None = None) -> list[EvalItem]:
        raise NotImplementedError

    def score(self, item: EvalItem, text: str, solver_format: str = DEFAULT_SOLVER_FORMAT) -> Verdict:
        raise NotImplementedError

    def oracle_calls(self, item: EvalItem, mode: str) -> tuple[list[ToolCall], dict[str, Any]]:
        """The calls standing in for the model in `gold` / `corrupt` mode, plus row extras."""
        if mode == "gold":
            return list(item.gold), {}
        calls, kind = corrupt_calls(item.id, item.gold, item.tools)
        return calls, {"corruption": kind, "expected_reason": EXPECTED_REASON[kind]}


REGISTRY: dict[str, Benchmark] = {}
_LOADED: set[str] = set()  # family modules already imported (or being imported)


def register(benchmark: Benchmark) -> Benchmark:
    """Add a benchmark (a family's module calls this at import)."""
    REGISTRY[benchmark.name] = benchmark
    return benchmark


def load_families(modules: Iterable[str] = ()) -> None:
    """Import the family modules not imported yet: :data:`FAMILY_MODULES`, ``$TOOLR0_BENCHMARK_MODULES`` and
    ``modules``. A module that fails to import is a one-line error naming it."""
    env = [m.strip() for m in os.environ.get(ENV_VAR, "").split(",")]
    for name in (m for m in (*FAMILY_MODULES, *env, *(m.strip() for m in modules)) if m):
        if name in _LOADED:
            continue
        _LOADED.add(name)  # before importing: a family module may look the registry up at import
        try:
            importlib.import_module(name)
        except Exception as exc:  # any failure of a user's module: one line naming it
            _LOADED.discard(name)
            why = (str(exc).strip().splitlines() or [""])[0]
            hint = "; is its folder on PYTHONPATH?" if isinstance(exc, ModuleNotFoundError) else ""
            raise ToolR0Error(
                f"benchmark module {name!r} failed to import ({type(exc).__name__}: {why}){hint}"
            ) from None


def benchmarks() -> dict[str, Benchmark]:
    """Every registered benchmark by name, in registry order."""
    load_families()
    return REGISTRY


def groups() -> dict[str, list[str]]:
    """Group name -> member benchmark names (registry order); `all` holds every benchmark."""
    out: dict[str, list[str]] = {}
    for b in benchmarks().values():
        for g in b.groups:
            out.setdefault(g, []).append(b.name)
    out["all"] = list(REGISTRY)
    return out


def get(name: str) -> Benchmark:
    """A registered benchmark by name or alias (a bare BFCL category); unknown names are a one-line error."""
    b = benchmarks().get(name) or next((b for b in REGISTRY.values() if name in b.aliases), None)
    if b is not None:
        return b
    for family in dict.fromkeys(type(b) for b in REGISTRY.values()):
        hint = family.unknown_hint(name)
        if hint:
            raise ToolR0Error(hint)
    known = ", ".join([*groups(), *REGISTRY])
    raise ToolR0Error(f"unknown benchmark {name!r} (known: {known})")


def family_of(name: str) -> str | None:
    b = benchmarks().get(name)
    return b.family if b is not None else None


def display_name(name: str) -> str:
    b = benchmarks().get(name)
    return b.display if b is not None else name


def short_name(name: str) -> str:
    """The row label of ``name`` inside its family's table (a BFCL category); the name when unregistered."""
    b = benchmarks().get(name)
    return b.short if b is not None else name


def engine_versions(names: list[str]) -> dict[str, str]:
    """Family -> optional engine version, for the families among ``names`` that have one."""
    out: dict[str, str] = {}
    for n in names:
        b = benchmarks().get(n)
        if b is not None and b.engine_version:
            out.setdefault(b.family, b.engine_version)
    return out


def members(family: str) -> list[str]:
    return [b.name for b in benchmarks().values() if b.family == family]


def expand(names: list[str], skip_unavailable: bool = False) -> tuple[list[str], list[str]]:
    """Expand group names and check names; returns (benchmarks, notes). A benchmark whose optional engine is
    missing is an error, or skipped with a note when ``skip_unavailable``."""
    table = groups()
    out: list[str] = []
    for raw in names:
        for name in (n.strip() for n in raw.split(",")):
            if not name:
                continue
            for m in table.get(name) or [get(name).name]:
                if m not in out:
                    out.append(m)
    notes: list[str] = []
    missing = {b: hint for b in out if (hint := REGISTRY[b].missing_engine())}
    if missing and not skip_unavailable:
        raise ToolR0Error(next(iter(missing.values())))
    for family, hint in {REGISTRY[b].family: hint for b, hint in missing.items()}.items():
        notes.append(f"{family} skipped: {hint}")
    return [b for b in out if b not in missing], notes
