"""Two-call tasks composed from two solved one-call tasks (not in the paper; ``loop.two_call_from_solved``).

The 0.5B Generator's own two-call tasks are almost never solvable: in iteration 1 of the ``cpu`` preset all five
verified ones were junk when read and cross-verification dropped all five, so the curriculum held only one-call
and no-call tasks and the Solver learned "exactly one call" (BFCL parallel 36 → 30 %, RESULTS.md, issue 28).
Two one-call tasks that the frozen Solver solved at least once are each a request it can answer; asked together,
with both tools on one menu, they make a request that needs two calls (BFCL's parallel-multiple kind). The
composed task gets its own pass rate from the frozen Solver like any other task; nothing here guesses it.

Pure: no torch, no engine.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from toolr0.core.schema import Task, Tool
from toolr0.core.seeds import derive_seed

COMPOSED_KEY = "composed_from"
MAX_MENU = 5  # the largest two-call menu the packaged specs ask for (default_spec.yaml, menu_size default: 3-5)


@dataclass(frozen=True)
class Part:
    """A one-call task that may be composed: its row id and the task."""

    id: str
    task: Task


def can_compose(a: Task, b: Task) -> bool:
    """Both one-call tasks with their gold tool on their menu, different gold tools, and no tool name defined two
    different ways across the menus (the Solver could not tell which one is meant)."""
    if len(a.calls) != 1 or len(b.calls) != 1 or a.calls[0].name == b.calls[0].name:
        return False
    if any(x.calls[0].name not in {t.name for t in x.tools} for x in (a, b)):
        return False
    if not a.question.strip() or not b.question.strip():
        return False
    mine = {t.name: t.to_json_schema() for t in a.tools}
    return all(mine.get(t.name, t.to_json_schema()) == t.to_json_schema() for t in b.tools)


def join_questions(first: str, second: str) -> str:
    """One request asking both: the first sentence closed, then "Also, " and the second (its first letter lowered
    only when it starts a capitalised ordinary word, so "SMS ..." stays)."""
    a, b = first.strip(), second.strip()
    if a[-1] not in ".?!":
        a += "."
    if len(b) > 1 and b[0].isupper() and b[1].islower():
        b = b[0].lower() + b[1:]
    return f"{a} Also, {b}"


def _menu(a: Task, b: Task, rng: random.Random) -> list[Tool]:
    """Both gold tools, then the other tools of both menus taken in turn, up to MAX_MENU, in a seeded order (so
    the gold tools sit nowhere in particular)."""
    gold = {a.calls[0].name, b.calls[0].name}
    by_name = {t.name: t for t in a.tools + b.tools}
    rest_a = [t.name for t in a.tools if t.name not in gold]
    rest_b = [t.name for t in b.tools if t.name not in gold and t.name not in rest_a]
    names = [a.calls[0].name, b.calls[0].name]
    for i in range(max(len(rest_a), len(rest_b))):
        names += rest_a[i : i + 1] + rest_b[i : i + 1]
    names = list(dict.fromkeys(names))[:MAX_MENU]
    rng.shuffle(names)
    return [by_name[n] for n in names]


def compose(a: Task, b: Task, seed: int) -> Task | None:
    """The two-call task asking ``a`` then ``b``; None when :func:`can_compose` says no."""
    if not can_compose(a, b):
        return None
    rng = random.Random(seed)
    # the first request's domain: a spec domain, so the curriculum's domain quotas see it
    return Task(join_questions(a.question, b.question), _menu(a, b, rng), [a.calls[0], b.calls[0]], a.domain, {})


def compose_pairs(parts: list[Part], n: int, seed: int) -> list[tuple[str, str, Task]]:
    """Up to ``n`` composed tasks from distinct pairs of ``parts`` as (first id, second id, task): pairs in a seeded
    order that uses every part before reusing one, the question order seeded per pair. Stable for a given input
    and seed, so a resumed run composes the same tasks."""
    if n <= 0 or len(parts) < 2:
        return []
    rng = random.Random(seed)
    pairs = [(i, j) for i in range(len(parts)) for j in range(i + 1, len(parts))]
    rng.shuffle(pairs)
    uses = [0] * len(parts)
    out: list[tuple[str, str, Task]] = []
    while pairs and len(out) < n:
        pairs.sort(key=lambda p: max(uses[p[0]], uses[p[1]]))  # stable: the seeded order within a level
        i, j = pairs.pop(0)
        if rng.random() < 0.5:
            i, j = j, i
        first, second = parts[i], parts[j]
        task = compose(first.task, second.task, derive_seed(seed, first.id, second.id))
        if task is None:
            continue
        task.meta[COMPOSED_KEY] = [first.id, second.id]
        uses[i] += 1
        uses[j] += 1
        out.append((first.id, second.id, task))
    return out
