"""The BFCL benchmark family (spec §12.2): one benchmark per BFCL category, loaded and scored by
:mod:`toolr0.eval.bfcl` (BFCL's official checker, optional ``bfcl-eval`` extra). Non-live categories form the
``bfcl`` group, live ones ``bfcl_live``; a bare category (``simple_python``) names its benchmark too.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from toolr0.core.schema import ToolCall
from toolr0.core.solver_format import DEFAULT_SOLVER_FORMAT
from toolr0.errors import ToolR0Error
from toolr0.eval import bfcl
from toolr0.eval.corrupt import EXPECTED_REASON, corrupt_calls
from toolr0.eval.items import EvalItem
from toolr0.eval.registry import Benchmark, register
from toolr0.eval.scoring import Verdict


@dataclass(frozen=True)
class BfclBenchmark(Benchmark):
    """One BFCL category, scored by BFCL's official checker."""

    family: str = "bfcl"

    @property
    def category(self) -> str:
        return self.name[len(bfcl.PREFIX) :]

    @property
    def short(self) -> str:
        return self.category

    @property
    def aliases(self) -> tuple[str, ...]:
        return (self.category,)

    @classmethod
    def unknown_hint(cls, name: str) -> str | None:
        if not name.startswith(bfcl.PREFIX):
            return None
        try:
            bfcl.category_of(name)
        except ToolR0Error as exc:  # names the BFCL categories that exist
            return str(exc)
        return None

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

    def score(self, item: EvalItem, text: str, solver_format: str = DEFAULT_SOLVER_FORMAT) -> Verdict:
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
        required, avoid = _corruption_hints(item)
        calls, ckind = corrupt_calls(item.id, item.gold, item.tools, required=required, avoid_values=avoid)
        return calls, {"corruption": ckind, "expected_reason": EXPECTED_REASON[ckind]}


def _corruption_hints(item: EvalItem) -> tuple[dict[str, list[str]], dict[tuple[int, str], list[Any]]]:
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


for _cat in bfcl.CATEGORIES:
    register(
        BfclBenchmark(
            bfcl.PREFIX + _cat, f"BFCL {_cat}", groups=("bfcl",) if _cat in bfcl.NON_LIVE else ("bfcl_live",)
        )
    )
