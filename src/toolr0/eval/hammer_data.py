"""The Hammer-suite benchmark files (spec §12.1): where they are, and their items.

The four processed test files of MadeAgents/Hammer are never copied into the repository: they are read at run
time from ``--data-dir``, ``$TOOLR0_BENCHMARKS``, ``../shared/benchmarks`` or the cache that ``toolr0 data
fetch`` fills (:mod:`toolr0.eval.hammer_fetch`), the first that holds ``hammer/``. Every item becomes an :class:`EvalItem`: the question (API-Bank turn lists rendered as
a conversation), the menu normalised with :func:`schema.normalise_tool` and the gold calls normalised with
:func:`parsing.normalise_calls`.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from toolr0.core.parsing import normalise_calls
from toolr0.core.prompts import render_conversation
from toolr0.core.schema import normalise_tools
from toolr0.errors import ToolR0Error
from toolr0.eval.hammer_fetch import fetched_dir
from toolr0.eval.items import EvalItem

ENV_VAR = "TOOLR0_BENCHMARKS"

# name -> (file under hammer/, expected size, display name)
HAMMER_BENCHMARKS: dict[str, tuple[str, int, str]] = {
    "toolalpaca": ("toolalpaca.json", 114, "ToolAlpaca"),
    "sealtool": ("sealtool.json", 294, "Seal-Tools"),
    "apibank_l1": ("apibank_l1.json", 399, "API-Bank L1"),
    "apibank_l2": ("apibank_l2.json", 127, "API-Bank L2"),
}


def _repo_root() -> Path:
    # src/toolr0/eval/hammer_data.py -> repository root (editable install)
    return Path(__file__).resolve().parents[3]


def _candidates(data_dir: str | os.PathLike | None) -> list[Path]:
    if data_dir:
        return [Path(data_dir).expanduser()]
    env = os.environ.get(ENV_VAR)
    if env:
        return [Path(env).expanduser()]
    found = [
        Path.cwd() / ".." / "shared" / "benchmarks",
        _repo_root() / ".." / "shared" / "benchmarks",
        fetched_dir(),
    ]
    return list(dict.fromkeys(p.resolve() for p in found))  # each folder once


def benchmarks_dir(data_dir: str | os.PathLike | None = None) -> Path:
    """The folder holding ``hammer/`` (explicit path, else ``$TOOLR0_BENCHMARKS``, else ``../shared/benchmarks``
    from the current dir or the repository, else the ``toolr0 data fetch`` cache). A path pointing at
    ``hammer/`` itself is accepted too."""
    tried = _candidates(data_dir)
    for cand in tried:
        if (cand / "hammer").is_dir():
            return cand.resolve()
        if cand.name == "hammer" and cand.is_dir():
            return cand.parent.resolve()
    where = ", ".join(str(c) for c in tried)
    raise ToolR0Error(
        f"benchmark data not found (looked for hammer/ in {where}); run `toolr0 data fetch`, pass --data-dir "
        f"or set {ENV_VAR}"
    )


def hammer_file(name: str, data_dir: str | os.PathLike | None = None, file: str | None = None) -> Path:
    """The Hammer-format file of benchmark ``name`` under ``<data dir>/hammer/`` (``file``, else its entry in
    :data:`HAMMER_BENCHMARKS`)."""
    if file is None and name not in HAMMER_BENCHMARKS:
        raise ToolR0Error(f"unknown Hammer benchmark {name!r} (known: {', '.join(HAMMER_BENCHMARKS)})")
    path = benchmarks_dir(data_dir) / "hammer" / (file or HAMMER_BENCHMARKS[name][0])
    if not path.is_file():
        raise ToolR0Error(f"benchmark file missing: {path}")
    return path


def render_query(query: Any) -> str:
    """A string query as is; an API-Bank list of turns as a ``# Conversation`` transcript."""
    if isinstance(query, str):
        return query.strip()
    return render_conversation(query)


def load_hammer(
    name: str, data_dir: str | os.PathLike | None = None, file: str | None = None
) -> list[EvalItem]:
    """Load one Hammer-format benchmark as :class:`EvalItem` objects (ids ``<name>/<index in file>``)."""
    path = hammer_file(name, data_dir, file)
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ToolR0Error(f"{path}: cannot read benchmark file: {exc}") from None
    if not isinstance(raw, list):
        raise ToolR0Error(f"{path}: expected a JSON list of samples")
    items = []
    for i, row in enumerate(raw):
        answers = row.get("answers", []) if isinstance(row, dict) else []
        gold = normalise_calls(answers)
        items.append(
            EvalItem(
                id=f"{name}/{i}",
                benchmark=name,
                index=i,
                question=render_query(row.get("query", "")) if isinstance(row, dict) else "",
                tools=normalise_tools(row.get("tools", []) if isinstance(row, dict) else []),
                gold=gold,
                meta={"n_gold_raw": len(answers) if isinstance(answers, list) else 0},
            )
        )
    return items
