"""The stages of one self-play iteration (spec §2, §6), each resumable from the run directory.

generate (+ structural verification) → dedup → cross-verify (S_{t-1}) → pass@K difficulty (S_{t-1}) →
select (quota curriculum) → Solver training; two additions, off in the paper's stage B: no-call tasks derived
after dedup, two-call tasks composed (and labelled) after difficulty. Each stage reads what an earlier (possibly
killed) run wrote, continues after the last complete batch, and returns the rows the next stage needs. Counting
and reasons are recorded for every candidate, so an empty stage is a recorded outcome, never a crash.
"""

from __future__ import annotations

import math
import os
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from toolr0.config import ToolR0Config
from toolr0.core.seeds import seed_for
from toolr0.selfplay.progress import Reporter
from toolr0.selfplay.rundir import BatchLog, RunDir, maybe_fault
from toolr0.selfplay.seam import Engine, FrozenSolver

STAGES = ("generator_train", "generate", "dedup", "cross_verify", "difficulty", "select", "solver_train")


@dataclass
class Ctx:
    """What every stage needs: config, run directory, engine (models) and the reporter."""

    cfg: ToolR0Config
    run: RunDir
    engine: Engine
    reporter: Reporter
    timings: dict[str, float] = field(default_factory=dict)


def _batches(n: int, bs: int) -> int:
    return math.ceil(n / bs) if n > 0 else 0


def _expected(n: int, bs: int):
    return lambda b: max(0, min(bs, n - b * bs))


# ------------------------------------------------------------------------------------------- generate
def stage_generate(
    ctx: Ctx, t: int, generator_checkpoint: str | None, solver_checkpoint: str | None = None
) -> list[dict[str, Any]]:
    """Sample n candidates from the frozen G_t (one fresh spec each) and verify each (spec §6.1–6.2).

    Spec i of iteration t depends only on (seed, t, i) and batch b's sampling seed only on (seed, t, b),
    so a resumed run regenerates exactly the batches that were lost. With ``loop.references`` (not in the
    paper) each prompt also shows earlier solved tasks of the Generator's own: the pool is rebuilt before each
    batch from the recorded rows (earlier iterations and this one's batches so far), and each batch's verified
    call tasks are probed by the frozen Solver ``solver_checkpoint`` (``probe_p_hat`` in their rows).
    """
    from toolr0.core.prompts import generator_messages
    from toolr0.core.references import pick_references, reject_copies
    from toolr0.core.spec import SpecSampler, load_spec_file
    from toolr0.core.verify import verify_task
    from toolr0.selfplay.references import earlier_candidates, probe_batch, reference_pool

    cfg, lp = ctx.cfg, ctx.cfg.loop
    n, bs = lp.n_candidates, lp.gen_batch_size
    log = BatchLog(ctx.run.file(t, "candidates.jsonl"), _expected(n, bs))
    rows, done = log.load()
    total = _batches(n, bs)
    ctx.reporter.stage_start(t, "generate", n, "candidates")
    ctx.reporter.advance(completed=len(rows))
    if done >= total:
        return rows
    sampler = SpecSampler(load_spec_file(cfg.spec_file), seed=seed_for(cfg.seed, "spec", t))
    variant = cfg.prompts.generator_variant
    gen = ctx.engine.generator(generator_checkpoint, t)
    k_refs, earlier = lp.references, earlier_candidates(ctx.run, t) if lp.references else []
    ref_seed = seed_for(cfg.seed, "references", t)
    for b in range(done, total):
        idx = list(range(b * bs, min(n, (b + 1) * bs)))
        specs = [sampler.sample_one(i) for i in idx]
        pool = reference_pool(earlier + rows) if k_refs else []
        shown = [pick_references(pool, s, k_refs, ref_seed, str(i)) for i, s in zip(idx, specs, strict=True)]
        messages = [generator_messages(s, variant, r) for s, r in zip(specs, shown, strict=True)]
        texts = gen.generate(messages, specs, seed=seed_for(cfg.seed, "gen", t, b))
        new = []
        for i, spec, text, refs in zip(idx, specs, texts, shown, strict=True):
            v = reject_copies(verify_task(text, spec), text, refs)
            task = v.task.to_dict() if v.ok and v.task is not None else None
            if task is not None:
                task["domain"] = spec.domain
            new.append(
                {
                    "id": f"i{t:02d}-{i:06d}",
                    "index": i,
                    "spec": spec.to_dict(),
                    "ok": bool(v.ok),
                    "reason": v.reason,
                    "details": v.details,
                    "task": task,
                    "text": text,
                    **({"references": [r.question for r in refs]} if k_refs else {}),
                }
            )
        if k_refs:
            probe = seed_for(cfg.seed, "ref_probe", t, b)
            probe_batch(lambda: ctx.engine.solver(solver_checkpoint, t), new, probe)
        if b == done and _torn_fault(b):
            log.append(b, new[: max(1, len(new) // 2)])  # simulate a kill mid-write
            maybe_fault("generate_torn", b)
        log.append(b, new)
        rows.extend(new)
        stats = getattr(gen, "last_stats", None)
        if stats:
            ctx.run.log_metric(
                {
                    "event": "gen_batch",
                    "iteration": t,
                    "batch": b,
                    "prompts": len(idx),
                    **({"reference_pool": len(pool)} if k_refs else {}),
                    **stats,
                }
            )
        ctx.reporter.advance(len(new))
        ctx.reporter.update(acceptance={"verify": _rate(sum(r["ok"] for r in rows), len(rows))})
        maybe_fault("generate", b + 1)
    return rows


def _torn_fault(b: int) -> bool:
    """Test hook `TOOLR0_FAULT=generate_torn:b`: write half of batch b, then fail (a kill mid-write)."""
    return f"generate_torn:{b}" in os.environ.get("TOOLR0_FAULT", "")


def _rate(k: int, n: int) -> str:
    return f"{k}/{n}" + (f" ({k / n:.0%})" if n else "")


# ------------------------------------------------------------------------------------------- dedup
def stage_dedup(ctx: Ctx, t: int, candidates: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Keep one verified candidate per fingerprint, the highest-quality one (spec §6.3). Pure and quick."""
    from toolr0.core.dedup import dedup, dedup_fingerprint
    from toolr0.core.schema import Task

    ok = [r for r in candidates if r["ok"] and r.get("task")]
    ctx.reporter.stage_start(t, "dedup", len(ok), "tasks")
    tasks = [Task.from_dict(r["task"]) for r in ok]
    _, dropped = dedup(tasks)
    dropped_set = set(dropped)
    fps = [dedup_fingerprint(x) for x in tasks]
    keeper = {}
    for i, fp in enumerate(fps):
        if i not in dropped_set:
            keeper[fp] = ok[i]["id"]
    rows = [
        {
            "id": r["id"],
            "fingerprint": fp,
            "kept": i not in dropped_set,
            "duplicate_of": None if i not in dropped_set else keeper.get(fp),
        }
        for i, (r, fp) in enumerate(zip(ok, fps, strict=True))
    ]
    ctx.run.write_jsonl(ctx.run.file(t, "dedup.jsonl"), rows)
    ctx.reporter.advance(completed=len(ok))
    return [r for i, r in enumerate(ok) if i not in dropped_set]


def stage_derive_no_call(ctx: Ctx, t: int, unique: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """``unique`` plus no-call tasks derived from its call tasks (core/derive_no_call.py; not in the paper): for a
    share ``loop.no_call_from_calls`` of them the same question with the gold tools taken off the menu, and for a
    share ``loop.no_call_from_other_menus`` the question with the whole menu of a call task of another domain;
    gold [] both. Pure and deterministic, so a resumed run derives the same rows; they are written to
    derived_no_call.jsonl to be read."""
    from toolr0.core.derive_no_call import chosen_for_derivation, derive_no_call, pick_other, with_other_menu
    from toolr0.core.schema import Task

    lp = ctx.cfg.loop
    if lp.no_call_from_calls <= 0 and lp.no_call_from_other_menus <= 0:
        return unique
    tasks = {str(r["id"]): Task.from_dict(r["task"]) for r in unique}
    call_tasks = [(i, x.domain) for i, x in tasks.items() if x.calls]
    seed, seed_other = seed_for(ctx.cfg.seed, "derive", t), seed_for(ctx.cfg.seed, "derive_other", t)
    derived = []
    for r in unique:
        rid = str(r["id"])
        made: list[tuple[str, Task | None, dict[str, Any]]] = []
        if chosen_for_derivation(rid, lp.no_call_from_calls, seed):
            made.append(("nc", derive_no_call(tasks[rid]), {}))  # None for a no-call task, among others
        if chosen_for_derivation(rid, lp.no_call_from_other_menus, seed_other):
            other = pick_other(rid, tasks[rid].domain, call_tasks, seed_other)
            task = with_other_menu(tasks[rid], tasks[other], other) if other is not None else None
            made.append(("om", task, {"menu_from": other}))
        for suffix, task, extra in made:
            if task is None:
                continue
            # "text" is the source completion, whose gold has calls: not this task's, so not carried
            spec = {**(r.get("spec") or {}), "num_calls": 0}
            row = {
                "id": f"{rid}-{suffix}",
                "spec": spec,
                "task": task.to_dict(),
                "text": "",
                "derived_from": rid,
            }
            derived.append({**r, **row, **extra})
    ctx.run.write_jsonl(ctx.run.file(t, "derived_no_call.jsonl"), derived)
    return unique + derived


# ------------------------------------------------------------------------------------------- cross-verify
def stage_cross_verify(
    ctx: Ctx, t: int, unique: list[dict[str, Any]], solver: FrozenSolver
) -> list[dict[str, Any]]:
    """Agreement of S_{t-1}'s samples with the gold calls; keep agreement ≥ τ (spec §6.4, §11; the settings
    are the solver's, `frozen_solver.verify`)."""
    if not ctx.cfg.loop.cross_verify:
        return unique

    def label(b: int, chunk: list[dict[str, Any]]) -> list[dict[str, Any]]:
        res = solver.cross_verify([r["task"] for r in chunk], seed=seed_for(ctx.cfg.seed, "xv", t, b))
        return [
            {"id": r["id"], "agreement": float(a), **extra} for r, (a, extra) in zip(chunk, res, strict=True)
        ]

    n = len(unique)
    exempt = {r["id"] for r in unique if not solver.verifies(r["task"])}
    checked = [r for r in unique if r["id"] not in exempt]
    rows = _run_batched(ctx, t, "cross_verify", "crossverify.jsonl", checked, label)
    kept = {r["id"] for r in rows if r["kept"]} | exempt
    ctx.reporter.update(acceptance={"cross-verify": _rate(len(kept), n)})
    return [{**r, "cross_verified": r["id"] not in exempt} for r in unique if r["id"] in kept]


def _run_batched(
    ctx: Ctx,
    t: int,
    stage: str,
    filename: str,
    inputs: list[dict[str, Any]],
    label: Callable[[int, list[dict[str, Any]]], list[dict[str, Any]]],
) -> list[dict[str, Any]]:
    """The resumable batch loop of the Solver-based filters: rows already in ``<iter>/<filename>`` are reused,
    the remaining batches of ``loop.filter_batch_size`` inputs are labelled by ``label(batch_index, chunk)``
    and appended one whole batch at a time, so a kill loses at most the batch in flight."""
    n, bs = len(inputs), ctx.cfg.loop.filter_batch_size
    log = BatchLog(ctx.run.file(t, filename), _expected(n, bs))
    rows, done = log.load()
    _check_ids(rows, inputs, filename)
    ctx.reporter.stage_start(t, stage, n, "tasks")
    ctx.reporter.advance(completed=len(rows))
    for b in range(done, _batches(n, bs)):
        new = label(b, inputs[b * bs : (b + 1) * bs])
        log.append(b, new)
        rows.extend(new)
        ctx.reporter.advance(len(new))
        maybe_fault(stage, b + 1)
    return rows


def _check_ids(rows: list[dict[str, Any]], inputs: list[dict[str, Any]], what: str) -> None:
    for r, x in zip(rows, inputs, strict=False):
        if r["id"] != x["id"]:
            from toolr0.errors import ToolR0Error

            raise ToolR0Error(
                f"{what}: row {r['id']} does not match input {x['id']}; the run dir is inconsistent"
            )


# ------------------------------------------------------------------------------------------- difficulty
def _pass_rate_labeller(
    ctx: Ctx, t: int, solver: FrozenSolver, seed_use: str
) -> Callable[[int, list[dict[str, Any]]], list[dict[str, Any]]]:
    """The difficulty labels of one batch: p̂ from S_{t-1}'s pass@K and/or the LLM label, bucketed."""
    from toolr0.core.curriculum import item_level

    cur = ctx.cfg.curriculum
    source = cur.difficulty_source

    def label(b: int, chunk: list[dict[str, Any]]) -> list[dict[str, Any]]:
        batch_tasks = [r["task"] for r in chunk]
        new: list[dict[str, Any]] = [
            {
                "id": r["id"],
                "domain": r["task"].get("domain", ""),
                **({"by_construction": True} if r.get("menu_from") else {}),
            }
            for r in chunk
        ]
        if source in ("passk", "both"):
            seed = seed_for(ctx.cfg.seed, seed_use, t, b)
            for row, r in zip(new, solver.pass_rates_detailed(batch_tasks, seed=seed), strict=True):
                row.update(p_hat=float(r.p_hat), successes=int(r.successes), K=int(r.K))
        if source in ("llm", "both"):
            for row, (lab, raw, fallback) in zip(new, solver.judge_labels(batch_tasks), strict=True):
                row.update(label=lab, judge_raw=raw, judge_used_fallback=fallback)
        for row in new:
            row["difficulty"] = item_level(row, cur)
            row["kept"] = row["difficulty"] is not None
        return new

    return label


def _with_labels(ctx: Ctx, tasks: list[dict[str, Any]], rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The tasks with a difficulty level, each with its label; the level is decided here from the recorded p̂ /
    label under the current curriculum settings (so a resumed run with, say, keep_zero_by_construction turned on
    reuses the measurements)."""
    from toolr0.core.curriculum import item_level

    by_id = {r["id"]: r for r in rows}
    out = []
    for r in tasks:
        lab = {**by_id[r["id"]], **({"by_construction": True} if r.get("menu_from") else {})}
        level = item_level(lab, ctx.cfg.curriculum)
        if level is not None:
            out.append({**r, "label": {**lab, "difficulty": level, "kept": True}})
    return out


def stage_difficulty(
    ctx: Ctx, t: int, tasks: list[dict[str, Any]], solver: FrozenSolver
) -> list[dict[str, Any]]:
    """p̂ from S_{t-1}'s pass@K (paper) and/or the LLM label, bucketed (spec §6.5, §11)."""
    label = _pass_rate_labeller(ctx, t, solver, "passk")
    out = _with_labels(ctx, tasks, _run_batched(ctx, t, "difficulty", "passrates.jsonl", tasks, label))
    ctx.reporter.update(acceptance={"labelled": _rate(len(out), len(tasks))})
    return out


def stage_compose_two_call(
    ctx: Ctx, t: int, labelled: list[dict[str, Any]], solver: FrozenSolver
) -> list[dict[str, Any]]:
    """``labelled`` plus up to ``loop.two_call_from_solved`` two-call tasks, each two one-call tasks S_{t-1}
    solved at least once asked together (core/compose_calls.py; not in the paper), with their own difficulty
    labels. The composed tasks are written to composed.jsonl and their labels to passrates_composed.jsonl;
    both are deterministic, so a resumed run composes and reuses the same rows."""
    from toolr0.core.compose_calls import Part, compose_pairs
    from toolr0.core.schema import Task

    n = ctx.cfg.loop.two_call_from_solved
    if n <= 0:
        return labelled
    by_id = {str(r["id"]): r for r in labelled}
    parts = [
        Part(str(r["id"]), Task.from_dict(r["task"]))
        for r in labelled
        if len(r["task"].get("calls") or []) == 1 and (r["label"].get("p_hat") or 0) > 0
    ]
    composed = []
    for first, second, task in compose_pairs(parts, n, seed_for(ctx.cfg.seed, "compose", t)):
        a, b = by_id[first], by_id[second]
        composed.append(
            {
                "id": f"{first}+{second}",
                "spec": {**(a.get("spec") or {}), "num_calls": 2},
                "task": task.to_dict(),
                "text": "",  # no completion wrote this task
                "composed_from": [first, second],
                "cross_verified": bool(a.get("cross_verified")) and bool(b.get("cross_verified")),
            }
        )
    ctx.run.write_jsonl(ctx.run.file(t, "composed.jsonl"), composed)
    label = _pass_rate_labeller(ctx, t, solver, "passk_composed")
    rows = _run_batched(ctx, t, "compose", "passrates_composed.jsonl", composed, label)
    return labelled + _with_labels(ctx, composed, rows)


# ------------------------------------------------------------------------------------------- select
def training_record(row: dict[str, Any]) -> dict[str, Any]:
    """The Solver training record of spec §6.6 (plus our p̂ and ids for traceability)."""
    from toolr0.core.prompts import solver_user_message

    task, lab = row["task"], row["label"]
    return {
        "question": solver_user_message(task["question"], task["tools"]),
        "answer": task["calls"],
        "difficulty": lab.get("difficulty"),
        "domain": task.get("domain", ""),
        "p_hat": lab.get("p_hat"),
        "cross_verified": bool(row.get("cross_verified", False)),
        "by_construction": bool(row.get("menu_from")),  # gold [] of a question with another domain's menu
        "judge_used_fallback": lab.get("judge_used_fallback", False),
        "judge_raw": lab.get("judge_raw", ""),
        "id": row["id"],
        "task": task,
    }


def stage_select(ctx: Ctx, t: int, labelled: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Quota-based curriculum selection (spec §6.5): domain quotas, easy/medium/hard mix, order."""
    from toolr0.core.curriculum import select_curriculum
    from toolr0.core.spec import load_spec_file

    cur = ctx.cfg.curriculum
    ctx.reporter.stage_start(t, "select", len(labelled), "tasks")
    items = [training_record(r) for r in labelled]  # p̂ = 0 without cross_verified drops in core.curriculum
    weights = load_spec_file(ctx.cfg.spec_file).domain_weights()
    selected = select_curriculum(items, weights, cur, seed=seed_for(ctx.cfg.seed, "select", t))
    ctx.run.write_jsonl(ctx.run.file(t, "curriculum.jsonl"), selected)
    ctx.reporter.advance(completed=len(labelled))
    return selected


def reason_counts(candidates: list[dict[str, Any]]) -> dict[str, int]:
    return dict(Counter(r["reason"] for r in candidates if not r["ok"]).most_common())
