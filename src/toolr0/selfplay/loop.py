"""The Tool-R0 self-play loop (spec §2), written to read like the paper's algorithm:

    for t in 1..N:
        A. G_t ← GRPO(G_{t-1}; rewards from the frozen S_{t-1})            (skipped if freeze_generator)
        B. D_t ← select(difficulty(cross_verify(dedup(verify(generate(G_t, N))), S_{t-1}), S_{t-1}))
        C. S_t ← GRPO(S_{t-1}; D_t)                                          (skipped, with a reason, if D_t is empty)

Every stage is resumable from the run directory (`rundir.py`); the models live behind an `Engine`
(`seam.py`; `engine.py`, `launch.py`) so the loop itself never touches torch. Per-stage wall time and counts go to metrics.jsonl
and TensorBoard; `summary.md` and the plots are rewritten after every iteration.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from toolr0.config import ToolR0Config, config_to_dict, dump_config
from toolr0.errors import ToolR0Error
from toolr0.selfplay.monitor import StageTimer, cross_verify_line, log_train, open_tb, record_stage_b
from toolr0.selfplay.progress import Reporter
from toolr0.selfplay.rundir import RunDir, maybe_fault
from toolr0.selfplay.seam import Engine, StageBChild
from toolr0.selfplay.stages import (
    Ctx,
    stage_compose_two_call,
    stage_cross_verify,
    stage_dedup,
    stage_derive_no_call,
    stage_difficulty,
    stage_generate,
    stage_select,
)


def _config_for_state(cfg: ToolR0Config) -> dict[str, Any]:
    return config_to_dict(cfg)


def _role_inits(run: RunDir, t: int, shared: bool) -> tuple[str | None, str | None]:
    """(Generator init, frozen/initial Solver) checkpoints at the start of iteration t.

    Separate roles: G_t starts from G_{t-1}, the frozen Solver is S_{t-1}. Shared weights (spec §11): one
    model is trained as G then as S each iteration, so G_t starts from S_{t-1} (the shared model's latest
    state) and the frozen Solver is a snapshot of the shared model at the start of the phase.
    """
    solver_prev = run.checkpoint("solver", t - 1)
    if shared:
        latest = solver_prev or run.checkpoint("generator", t - 1)
        return latest, latest
    return run.checkpoint("generator", t - 1), solver_prev


def run_selfplay(
    cfg: ToolR0Config,
    out: str | Path,
    *,
    engine: Engine | None = None,
    progress: bool = True,
    engine_factory: Callable[[ToolR0Config, RunDir], Engine] | None = None,
    until: tuple[int, str] | None = None,
) -> dict[str, Any]:
    """Run (or resume) the whole loop into `out`; returns the final summary rows. Resumes automatically.

    `until=(T, phase)` (`toolr0 selfplay --iteration T --phase P`) stops after phase P ("generator", "stage-b"
    or "solver") of iteration T: the loop up to there, what is done skipped, so a phase run by hand always
    starts from the weights the run directory records (G_{T-1}, S_{T-1})."""
    if until is not None:
        if until[1] not in PHASES:
            raise ToolR0Error(f"--phase {until[1]}: one of {', '.join(PHASES)}")
        if not 1 <= until[0] <= cfg.loop.iterations:
            raise ToolR0Error(f"--iteration {until[0]}: the run has iterations 1..{cfg.loop.iterations}")
    run = RunDir(out)
    resumed = run.open(_config_for_state(cfg), dump_config(cfg))
    if engine is None:
        from toolr0.selfplay.engine import build_engine

        engine = (engine_factory or build_engine)(cfg, run)
    lp = cfg.loop
    tb = open_tb(run)
    reporter = Reporter(enabled=progress, iterations=lp.iterations)
    ctx = Ctx(cfg=cfg, run=run, engine=engine, reporter=reporter)
    run.log_metric({"event": "run_start", "resumed": resumed, "iterations": lp.iterations})
    try:
        with reporter:
            if resumed:
                reporter.note(f"resuming {run.root} (done: {len(run.state['done'])} stages)")
            last = until[0] if until else lp.iterations
            for t in range(1, last + 1):
                run_iteration(ctx, t, tb, stop_after=until[1] if until and t == last else None)
            if all(run.is_done(lp.iterations, s) for s in ("generator_train", "select", "solver_train")):
                run.state["finished"] = True
                run.save()
    finally:
        if tb is not None:
            tb.close()
        engine.close()
    from toolr0.selfplay.report import summary_rows, write_reports

    write_reports(run)
    rows = summary_rows(run)
    from rich.console import Console

    from toolr0.selfplay.progress import final_table

    (reporter.console if reporter.enabled else Console(stderr=True)).print(final_table(rows))
    return {"rows": rows, "run_dir": str(run.root)}


#: the phases `toolr0 selfplay --phase` names, in order
PHASES = ("generator", "stage-b", "solver")


def run_iteration(ctx: Ctx, t: int, tb: Any, stop_after: str | None = None) -> None:
    """One self-play iteration: phases A, B, C of spec §2 (each stage skipped if already done); with
    `stop_after` ("generator", "stage-b") only up to that phase."""
    cfg, run, engine, rep = ctx.cfg, ctx.run, ctx.engine, ctx.reporter
    lp = cfg.loop
    shared = cfg.roles.mode == "shared"
    if all(run.is_done(t, s) for s in ("generator_train", "select", "solver_train")):
        return
    run.iter_dir(t).mkdir(parents=True, exist_ok=True)
    engine.begin_iteration(t)  # clears every Solver cache (spec §10.10)
    gen_init, solver_frozen = _role_inits(run, t, shared)

    # ---- A. Generator GRPO against the frozen S_{t-1}
    if not run.is_done(t, "generator_train"):
        rep.stage_start(t, "generator_train", cfg.generator.max_steps, "steps")
        if lp.freeze_generator:
            run.mark_done(
                t, "generator_train", "freeze_generator: the base model generates (Table 3 ablation)"
            )
            rep.stage_end(t, "generator_train", "skipped (freeze_generator)")
        else:
            with StageTimer(ctx, t, "generator_train", tb):
                res = engine.train_generator(
                    iteration=t,
                    init=gen_init,
                    frozen_solver=solver_frozen,
                    out_dir=run.checkpoint_dir(t, "generator"),
                    reporter=rep,
                )
            _finish_train(ctx, t, "generator", res, tb, fallback_checkpoint=None)
            from toolr0.selfplay.tb_log import log_phase_a

            log_phase_a(tb, t, run.checkpoint_dir(t, "generator"))
        maybe_fault("generator_train", 1)
    if stop_after == "generator":
        return
    gen_ckpt = run.checkpoint("generator", t) if not lp.freeze_generator else None
    # shared weights: the frozen Solver of phase B is the shared model at the start of the phase (= G_t)
    shared_trained = shared and not lp.freeze_generator
    solver_b = gen_ckpt if shared_trained else solver_frozen

    # ---- B. Dataset synthesis with G_t frozen, S_{t-1} as verifier and difficulty judge
    if not run.is_done(t, "select"):
        if isinstance(engine, StageBChild):  # launch.mode processes: stage B in its own process
            with StageTimer(ctx, t, "stage_b", tb):
                engine.run_stage_b(t, rep)
            _reload_state(run)
            if not run.is_done(t, "select"):
                raise ToolR0Error(f"iteration {t} stage B: the child exited without marking select done")
        else:
            run_stage_b(ctx, t, gen_ckpt, solver_b, tb)
    if stop_after == "stage-b":
        return
    selected_path = run.file(t, "curriculum.jsonl")

    # ---- C. Solver GRPO on the curriculum
    if not run.is_done(t, "solver_train"):
        from toolr0.io import read_jsonl

        n_sel = sum(1 for _ in read_jsonl(selected_path))
        solver_init = gen_ckpt if shared_trained else solver_frozen
        rep.stage_start(t, "solver_train", cfg.solver.max_steps, "steps")
        if n_sel < max(1, lp.min_curriculum):
            reason = f"empty curriculum: {n_sel} task(s) selected (< {max(1, lp.min_curriculum)}); Solver unchanged"
            run.set_checkpoint("solver", t, solver_init)
            run.mark_done(t, "solver_train", reason)
            rep.stage_end(t, "solver_train", "skipped: " + reason)
        else:
            with StageTimer(ctx, t, "solver_train", tb):
                res = engine.train_solver(
                    iteration=t,
                    init=solver_init,
                    curriculum=selected_path,
                    out_dir=run.checkpoint_dir(t, "solver"),
                    reporter=rep,
                )
            _finish_train(ctx, t, "solver", res, tb, fallback_checkpoint=solver_init)
        maybe_fault("solver_train", 1)
    from toolr0.selfplay.report import write_reports

    write_reports(run, upto=t)


def run_stage_b(ctx: Ctx, t: int, gen_ckpt: str | None, solver_b: str | None, tb: Any) -> None:
    """Stage B of iteration t: generate + verify, dedup, cross-verify, difficulty, select (each resumable)."""
    cfg, run, engine, rep = ctx.cfg, ctx.run, ctx.engine, ctx.reporter
    with StageTimer(ctx, t, "generate", tb):
        candidates = stage_generate(ctx, t, gen_ckpt, solver_b)
    ok = sum(r["ok"] for r in candidates)
    rep.stage_end(t, "generate", f"{len(candidates)} generated, {ok} pass verification")
    with StageTimer(ctx, t, "dedup", tb):
        unique = stage_dedup(ctx, t, candidates)
    rep.stage_end(t, "dedup", f"{len(unique)} unique of {ok}")
    if cfg.loop.no_call_from_calls > 0 or cfg.loop.no_call_from_other_menus > 0:
        n_unique = len(unique)
        unique = stage_derive_no_call(ctx, t, unique)
        rep.stage_end(t, "dedup", f"{len(unique) - n_unique} no-call tasks derived from call tasks")
    solver = engine.solver(solver_b, t) if unique else None
    with StageTimer(ctx, t, "cross_verify", tb):
        crossed = stage_cross_verify(ctx, t, unique, solver) if unique else []
    rep.stage_end(t, "cross_verify", cross_verify_line(cfg, len(crossed), len(unique)))
    with StageTimer(ctx, t, "difficulty", tb):
        labelled = stage_difficulty(ctx, t, crossed, solver) if crossed else []
    rep.stage_end(t, "difficulty", f"{len(labelled)} labelled of {len(crossed)}")
    pool = labelled
    if cfg.loop.two_call_from_solved > 0:
        with StageTimer(ctx, t, "compose", tb):
            pool = stage_compose_two_call(ctx, t, labelled, solver) if labelled else labelled
        rep.stage_end(t, "difficulty", f"{len(pool) - len(labelled)} two-call tasks composed and labelled")
    with StageTimer(ctx, t, "select", tb):
        selected = stage_select(ctx, t, pool)
    rep.stage_end(t, "select", f"{len(selected)} selected (n_final={cfg.curriculum.n_final})")
    record_stage_b(ctx, t, tb, candidates, unique, crossed, labelled, selected)
    run.mark_done(t, "select")


def _phase_b_checkpoints(run: RunDir, t: int, cfg: ToolR0Config) -> tuple[str | None, str | None]:
    """(G_t, the frozen Solver of stage B) of iteration t, from the run's recorded checkpoints."""
    lp, shared = cfg.loop, cfg.roles.mode == "shared"
    _, solver_frozen = _role_inits(run, t, shared)
    gen_ckpt = run.checkpoint("generator", t) if not lp.freeze_generator else None
    shared_trained = shared and not lp.freeze_generator
    return gen_ckpt, (gen_ckpt if shared_trained else solver_frozen)


def _reload_state(run: RunDir) -> None:
    """Re-read state.json after a child process wrote it."""
    import json

    run.state = json.loads(run.state_path.read_text(encoding="utf-8"))


def run_stage_b_only(cfg: ToolR0Config, out: str | Path, t: int, *, progress: bool = False) -> None:
    """The stage-B child of `launch.mode: processes`: stage B of iteration t in this process, into the run
    directory (which must exist: the parent loop created it), then exit."""
    from toolr0.selfplay.engine import build_engine

    run = RunDir(out)
    if not run.has_state():
        raise ToolR0Error(f"--stage-b: {run.root} holds no run (no state.json)")
    run.open(_config_for_state(cfg), dump_config(cfg))
    if run.is_done(t, "select"):
        return
    run.iter_dir(t).mkdir(parents=True, exist_ok=True)
    engine = build_engine(cfg, run, in_process=True)
    tb = open_tb(run)
    reporter = Reporter(enabled=progress, iterations=cfg.loop.iterations)
    ctx = Ctx(cfg=cfg, run=run, engine=engine, reporter=reporter)
    try:
        with reporter:
            engine.begin_iteration(t)
            gen_ckpt, solver_b = _phase_b_checkpoints(run, t, cfg)
            run_stage_b(ctx, t, gen_ckpt, solver_b, tb)
    finally:
        if tb is not None:
            tb.close()
        engine.close()


def _finish_train(
    ctx: Ctx, t: int, role: str, res: dict[str, Any], tb: Any, fallback_checkpoint: str | None
) -> None:
    """Record a finished training phase: its checkpoint (else ``fallback_checkpoint``), logs, done mark."""
    ctx.run.set_checkpoint(role, t, res.get("checkpoint") or fallback_checkpoint)
    log_train(ctx, t, role, res, tb)
    ctx.run.mark_done(t, f"{role}_train", res.get("skipped"))
    ctx.reporter.stage_end(t, f"{role}_train", res.get("skipped") or f"{res.get('steps', '?')} steps")
