"""The benchmark registry: every benchmark behind one small base class, so the runner, the report and the CLI
iterate benchmarks instead of branching on names.

A benchmark says its name, display name and family, whether its data is here, how to load its items, how to
score one completion and what an oracle (gold or corrupted) prediction is. Adding a Hammer-format file is one
`HammerBenchmark(...)` line in :data:`REGISTRY`; a new family is one module with one `Benchmark` subclass,
registered with :func:`register`. Groups (`hammer`, `bfcl`, `bfcl_live`, `all`) are families' members.
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

    def available(self, data_dir: str | os.PathLike | None = None) -> tuple[bool, str]:
        try:
            return True, str(hammer_file(self.name, data_dir))
        except ToolR0Error as exc:
            return False, f"missing ({exc})"

    def load(self, data_dir: str | os.PathLike | None = None) -> list[EvalItem]:
        return load_hammer(self.name, data_dir)

    def score(self, item: EvalItem, text: str, solver_format: str = "reference") -> Verdict:
        return score_completion(text, item.gold, solver_format)


@dataclass(frozen=True)
class BfclBenchmark(Benchmark):
    """One BFCL category, scored by BFCL's official checker (optional `bfcl-eval` extra, spec §12.2)."""

    family: str = "bfcl"

    @property
    def category(self) -> str:
        return self.name[len(bfcl.PREFIX) :]

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
    register(HammerBenchmark(_name, _display))
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
    if any(family_of(b) == "bfcl" for b in out) and not bfcl.is_available():
        if not skip_unavailable:
            raise ToolR0Error(bfcl.INSTALL_HINT)
        out = [b for b in out if family_of(b) != "bfcl"]
        notes.append("BFCL skipped: bfcl-eval is not installed (scripts/install_bfcl.sh)")
    return out, notes
