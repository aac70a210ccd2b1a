"""Training datasets for GRPO, in TRL's conversational format (a `prompt` column of chat messages).

- Generator: one prompt per freshly sampled task spec (spec §2/§3; no data). The spec travels in the
  `spec_json` column, so TRL hands it to every reward function as a keyword argument.
- Solver: one prompt per task of a curriculum JSONL (records with question/tools/calls, spec §6.6), in the
  Solver's format (`core.solver_format`; native prompts are rendered text). The gold calls travel in
  `calls_json`, the whole task in `task_json`.

Nested, row-varying objects (tool schemas, call arguments) are stored as JSON strings: Arrow would otherwise
merge their keys across rows into one struct type and fill missing keys with nulls, changing the data.
Datasets are deterministic under the seed; TRL's seeded sampler then fixes the order (also on resume).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from toolr0.core import prompts
from toolr0.core.schema import Task
from toolr0.core.solver_format import SolverFormat
from toolr0.core.spec import SpecDistribution, SpecSampler, TaskSpec
from toolr0.errors import ConfigError
from toolr0.io import read_jsonl


def generator_rows(
    n: int,
    seed: int,
    variant: str = "reference",
    dist: SpecDistribution | None = None,
    start: int = 0,
) -> list[dict[str, Any]]:
    """`n` Generator prompts for specs `start..start+n-1` of `SpecSampler(dist, seed)`."""
    sampler = SpecSampler(dist, seed=seed)
    rows = []
    for i, spec in enumerate(sampler.sample(n, start=start)):
        rows.append(
            {
                "prompt": prompts.generator_messages(spec, variant),
                "spec_json": json.dumps(spec.to_dict(), sort_keys=True),
                "index": start + i,
            }
        )
    return rows


def generator_dataset(
    n: int,
    seed: int,
    variant: str = "reference",
    dist: SpecDistribution | None = None,
    start: int = 0,
) -> Any:
    """A `datasets.Dataset` of Generator prompts (columns: prompt, spec_json, index)."""
    from datasets import Dataset

    return Dataset.from_list(generator_rows(n, seed, variant, dist, start))


def spec_of(spec_json: str | None) -> TaskSpec | None:
    """The `TaskSpec` stored in a row's `spec_json` (None when absent or malformed)."""
    if not spec_json:
        return None
    try:
        return TaskSpec.from_dict(json.loads(spec_json))
    except (ValueError, KeyError, TypeError):
        return None


def load_tasks(path: str | os.PathLike) -> list[Task]:
    """Tasks of a curriculum JSONL; a missing file, or no usable record, is a one-line `ConfigError`."""
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"{p}: curriculum file not found")
    tasks: list[Task] = []
    bad = 0
    for rec in read_jsonl(p):
        body = rec.get("task", rec) if isinstance(rec, dict) else None
        try:
            task = Task.from_dict(body)
        except Exception:  # noqa: BLE001 - any malformed record is skipped and counted
            task = None
        # an explicit empty "calls" list is a no-call task (gold []); a record without one is malformed
        has_calls = isinstance(body, dict) and isinstance(body.get("calls"), list)
        if task is None or not task.question or not has_calls:
            bad += 1
            continue
        tasks.append(task)
    if not tasks:
        raise ConfigError(f"{p}: no usable task records (question/tools/calls); {bad} malformed")
    return tasks


def solver_rows(
    tasks: list[Task],
    variant: str = "reference",
    solver_format: SolverFormat | None = None,
    render: Callable[[list[dict[str, Any]]], str] | None = None,
) -> list[dict[str, Any]]:
    """One Solver prompt per task in the Solver's format, gold calls in `calls_json`.

    Reference format: chat messages (TRL applies the chat template). Native format: the prompt is rendered
    to text by ``render`` (the tokenizer's template with the task's own ``tools=``), since TRL renders every
    conversational prompt of a dataset with one shared tool list."""
    fmt = solver_format or SolverFormat(variant=variant)
    if fmt.native and render is None:
        raise ValueError("native Solver prompts need a render function (the tokenizer's chat template)")
    rows = []
    for i, t in enumerate(tasks):
        d = t.to_dict()
        messages = fmt.messages(t.question, t.tools)
        rows.append(
            {
                "prompt": render(messages) if fmt.native and render is not None else messages,
                "calls_json": json.dumps(d.get("calls", []), ensure_ascii=False, sort_keys=True),
                "task_json": json.dumps(d, ensure_ascii=False, sort_keys=True),
                "index": i,
            }
        )
    return rows


def solver_dataset(
    data: str | os.PathLike | list[Task],
    variant: str = "reference",
    solver_format: SolverFormat | None = None,
    render: Callable[[list[dict[str, Any]]], str] | None = None,
) -> Any:
    """A `datasets.Dataset` of Solver prompts from a curriculum JSONL path or a list of tasks."""
    from datasets import Dataset

    tasks = data if isinstance(data, list) else load_tasks(data)
    return Dataset.from_list(solver_rows(tasks, variant, solver_format, render))
