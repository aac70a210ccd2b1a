"""No-call tasks derived from verified call tasks (not in the paper; ``loop.no_call_from_calls``, ``_other_menus``).

A call task's question with its gold tools taken off the menu asks for something none of the remaining tools
does, so its right answer is no call (gold ``[]``). The 0.5B Generator writes no usable no-call task itself: it
copied the prompt's question placeholder in 13 of 14 no-call completions at step 0, and with that opening banned
it wrote "the request, with concrete real values" in 9 of 10 (RESULTS.md, issue 28). Removing the needed tool is
how tool-use data sets commonly make irrelevance examples, and the pair (same question, with and without its tool)
teaches the Solver to read the menu rather than to always, or never, call.

A second kind (``loop.no_call_from_other_menus``) puts a call task's question with the whole menu of a call task of
another domain: a request unrelated to every tool on offer, BFCL irrelevance's kind ("What is the largest planet?"
with a currency converter). The first kind alone, at 2 of 7 curriculum tasks, did not keep the Solver from calling
an unrelated tool on 46 of 50 BFCL irrelevance items (RESULTS.md, issue 28).

Pure: no torch, no engine.
"""

from __future__ import annotations

import hashlib

from toolr0.core.schema import Task, Tool

DERIVED_KEY = "derived_no_call_from"
MENU_KEY = "menu_from"


def _could_serve(tool: Tool, calls_args: list[set[str]]) -> bool:
    """A remaining tool that takes every argument of some gold call could serve the request in its stead."""
    params = {p.lower() for p in tool.properties}
    return any(args and args <= params for args in calls_args)


def derive_no_call(task: Task) -> Task | None:
    """``task`` with its gold tools removed from the menu and gold ``[]``; None when it has no gold call, when no
    tool remains, or when a remaining tool takes every argument of a gold call (it might serve the request)."""
    if not task.calls:
        return None
    gold = {c.name for c in task.calls}
    rest = [t for t in task.tools if t.name not in gold]
    if not rest:
        return None
    calls_args = [{k.lower() for k in c.arguments} for c in task.calls]
    if any(_could_serve(t, calls_args) for t in rest):
        return None
    return Task(task.question, rest, [], task.domain, {**task.meta, DERIVED_KEY: sorted(gold)})


def with_other_menu(task: Task, other: Task, other_id: str) -> Task | None:
    """``task``'s question with ``other``'s whole menu and gold ``[]``; None when ``task`` has no gold call, the
    domains are the same (a near tool might serve), ``other`` has no tools, or one of its tools shares a name with
    a gold tool of ``task`` or takes every argument of a gold call."""
    if not task.calls or not other.tools or not task.domain or task.domain == other.domain:
        return None
    gold = {c.name for c in task.calls}
    calls_args = [{k.lower() for k in c.arguments} for c in task.calls]
    if any(t.name in gold or _could_serve(t, calls_args) for t in other.tools):
        return None
    meta = {**task.meta, DERIVED_KEY: sorted(gold), MENU_KEY: other_id}
    return Task(task.question, list(other.tools), [], task.domain, meta)


def pick_other(task_id: str, domain: str, candidates: list[tuple[str, str]], seed: int) -> str | None:
    """The id of the call task whose menu ``task_id``'s question is put with: a stable seeded choice among
    ``candidates`` (id, domain) of another domain; None when there is none."""
    others = sorted(i for i, d in candidates if d != domain and i != task_id)
    if not others:
        return None
    h = hashlib.sha256(f"toolr0-other-menu:{seed}:{task_id}".encode()).digest()
    return others[int.from_bytes(h[:8], "big") % len(others)]


def chosen_for_derivation(task_id: str, share: float, seed: int) -> bool:
    """Whether the task with this id also gives a derived no-call task: a stable hash of (seed, id) below
    ``share`` (so a resumed run picks the same ones)."""
    if share <= 0:
        return False
    if share >= 1:
        return True
    h = hashlib.sha256(f"toolr0-derive:{seed}:{task_id}".encode()).digest()
    return int.from_bytes(h[:8], "big") / 2**64 < share
