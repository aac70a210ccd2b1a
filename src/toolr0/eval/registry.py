"""The benchmark registry: every benchmark behind one small base class, so the runner, the report and the CLI
iterate benchmarks instead of branching on names.

A benchmark says its name, display name, family and expected size, whether its data (or optional engine) is
here, how to load its items, how to score one completion and what an oracle (gold or corrupted) prediction is.
Adding a Hammer-format file is one ``register(HammerBenchmark(name, display, file=..., size=...))`` line; a new
family is one module with one `Benchmark` subclass whose instances it registers with :func:`register`. Groups
(`hammer`, `bfcl`, `bfcl_live`, `all`) are families' members. Nothing outside this module and the families'
own modules branches on benchmark names or families.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from toolr0.core.schema import ToolCall
from toolr0.errors import ToolR0Error
from toolr0.eval import bfcl
from toolr0.eval.benchmarks import HAMMER_BENCHMARKS, EvalItem, hammer_file, load_hammer
from toolr0.eval.corrupt import EXPECTED_REASON, corrupt_calls
from toolr0.eval.scoring import Verdict, score_completion


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

    def score(self, item: EvalItem, text: str, solver_format: str = "reference") -> Verdict:
        raise NotImplementedError

    def oracle_calls(self, item: EvalItem, mode: str) -> tuple[list[ToolCall], dict[str, Any]]:
        """The calls standing in for the model in `gold` / `corrupt` mode, plus row extras."""
        if mode == "gold":
            return list(item.gold), {}
        calls, kind = corrupt_calls(item.id, item.gold, item.tools)
        return calls, {"corruption": kind, "expected_reason": EXPECTED_REASON[kind]}


@dataclass(frozen=True)
class HammerBenchmark(Benchmark):
    """A processed Hammer test file (spec §12.1), read at run time from ``<data dir>/hammer/``."""

    family: str = "hammer"
    groups: tuple[str, ...] = ("hammer",)
    file: str | None = None  # file name under hammer/ (None: the entry in benchmarks.HAMMER_BENCHMARKS)

    def available(self, data_dir: str | os.PathLike | None = None) -> tuple[bool, str]:
        try:
            return True, str(hammer_file(self.name, data_dir, self.file))
        except ToolR0Error as exc:
            return False, f"missing ({exc})"

    def load(self, data_dir: str | os.PathLike | None = None) -> list[EvalItem]:
        return load_hammer(self.name, data_dir, self.file)

    def score(self, item: EvalItem, text: str, solver_format: str = "reference") -> Verdict:
        return score_completion(text, item.gold, solver_format)


@dataclass(frozen=True)
class BfclBenchmark(Benchmark):
    """One BFCL category, scored by BFCL's official checker (optional `bfcl-eval` extra, spec §12.2)."""

    family: str = "bfcl"

    @property
    def category(self) -> str:
        return self.name[len(bfcl.PREFIX) :]

    @property
    def short(self) -> str:
        return self.category

    @property
    def engine_version(self) -> str | None:
        return bfcl.BFCL_VERSION

    def missing_engine(self) -> str | None:
        return None if bfcl.is_available() else bfcl.INSTALL_HINT

    def available(self, data_dir: str | os.PathLike | None = None) -> tuple[bool, str]:
        ok = bfcl.is_available()
        return ok, "bfcl-eval installed" if ok else "needs scripts/install_bfcl.sh"

    def load(self, data_dir: str | os.PathLike | None = None) -> list[EvalItem]:
        return bfcl.load_bfcl(self.name)

    def score(self, item: EvalItem, text: str, solver_format: str = "reference") -> Verdict:
        return bfcl.score_bfcl(item, text, solver_format)

    def oracle_calls(self, item: EvalItem, mode: str) -> tuple[list[ToolCall], dict[str, Any]]:
        kind = item.meta.get("kind", "ast")
        any_call = [ToolCall(item.tools[0].name if item.tools else "zq_any_tool", {})]
        if kind == "irrelevance":  # gold: no call; corrupt: call the first tool
            if mode == "gold":
                return [], {}
            return any_call, {"corruption": "extra_call", "expected_reason": "unexpected_call"}
        if kind == "relevance":  # gold: some call; corrupt: none
            if mode == "gold":
                return any_call, {}
            return [], {"corruption": "no_call", "expected_reason": "no_call"}
        if mode == "gold":
            return list(item.gold), {}
        required, avoid = _bfcl_corruption_hints(item)
        calls, ckind = corrupt_calls(item.id, item.gold, item.tools, required=required, avoid_values=avoid)
        return calls, {"corruption": ckind, "expected_reason": EXPECTED_REASON[ckind]}


def _bfcl_corruption_hints(item: EvalItem) -> tuple[dict[str, list[str]], dict[tuple[int, str], list[Any]]]:
    """Required parameters per function, and per (gold call, parameter) the values BFCL would also accept."""
    required = {f["name"]: list(f.get("parameters", {}).get("required", [])) for f in item.meta["functions"]}
    avoid: dict[tuple[int, str], list[Any]] = {}
    names = [next(iter(e)) for e in item.meta["possible_answer"] or []]
    for i, c in enumerate(item.gold):
        if i < len(names) and names[i] == c.name:
            for p, allowed in item.meta["possible_answer"][i][c.name].items():
                avoid[(i, p)] = [a for a in allowed if a != ""] if isinstance(allowed, list) else []
    # other gold calls of the same name may accept the corrupted value too: avoid theirs as well
    for (i, p), vals in list(avoid.items()):
        for (j, q), other in avoid.items():
            if q == p and j != i and item.gold[j].name == item.gold[i].name:
                vals.extend(other)
    return required, avoid


REGISTRY: dict[str, Benchmark] = {}


def register(benchmark: Benchmark) -> Benchmark:
    """Add a benchmark (a new family's module calls this at import)."""
    REGISTRY[benchmark.name] = benchmark
    return benchmark


for _name, (_file, _size, _display) in HAMMER_BENCHMARKS.items():
    register(HammerBenchmark(_name, _display, size=_size))
for _cat in bfcl.CATEGORIES:
    register(
        BfclBenchmark(bfcl.PREFIX + _cat, f"BFCL {_cat}", groups=("bfcl",) if _cat in bfcl.NON_LIVE else ("bfcl_live",))
    )


def groups() -> dict[str, list[str]]:
    """Group name -> member benchmark names (registry order); `all` holds every benchmark."""
    out: dict[str, list[str]] = {}
    for b in REGISTRY.values():
        for g in b.groups:
            out.setdefault(g, []).append(b.name)
    out["all"] = list(REGISTRY)
    return out


def get(name: str) -> Benchmark:
    """A registered benchmark by name (a bare BFCL category is accepted); unknown names are a one-line error."""
    b = REGISTRY.get(name) or REGISTRY.get(bfcl.PREFIX + name)
    if b is None and name.startswith(bfcl.PREFIX):
        bfcl.category_of(name)  # names the BFCL categories that exist
    if b is None:
        known = ", ".join([*groups(), *REGISTRY])
        raise ToolR0Error(f"unknown benchmark {name!r} (known: {known})")
    return b


def family_of(name: str) -> str | None:
    b = REGISTRY.get(name)
    return b.family if b is not None else None


def display_name(name: str) -> str:
    b = REGISTRY.get(name)
    return b.display if b is not None else name


def short_name(name: str) -> str:
    """The row label of ``name`` inside its family's table (a BFCL category); the name when unregistered."""
    b = REGISTRY.get(name)
    return b.short if b is not None else name


def engine_versions(names: list[str]) -> dict[str, str]:
    """Family -> optional engine version, for the families among ``names`` that have one."""
    out: dict[str, str] = {}
    for n in names:
        b = REGISTRY.get(n)
        if b is not None and b.engine_version:
            out.setdefault(b.family, b.engine_version)
    return out


def members(family: str) -> list[str]:
    return [b.name for b in REGISTRY.values() if b.family == family]


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
