"""`toolr0 selfplay`: run (or resume, or plan with --dry-run) the whole Tool-R0 self-play loop."""

from __future__ import annotations

from pathlib import Path

import typer


def selfplay(
    config: Path = typer.Option(
        None, "--config", "-c", help="Preset or config YAML (e.g. configs/quickstart.yaml)."
    ),
    out: Path = typer.Option(
        None, "--out", "-o", help="Run directory (e.g. runs/quick). Resumes if it holds this run."
    ),
    dry_run: bool = typer.Option(
        False, "--dry-run", help="Print the plan (stages, counts, cost) and exit; loads no model."
    ),
    resume: bool = typer.Option(
        False,
        "--resume",
        help="Require an existing run in --out (resuming is automatic without this flag too).",
    ),
    set_: list[str] = typer.Option(
        None, "--set", "-s", help="Override a config value, e.g. --set loop.iterations=2 (repeatable)."
    ),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="Live progress display."),
    device: str = typer.Option(
        None, "--device", help="auto (CUDA when present, else CPU), cpu or cuda:N (default: model.device)."
    ),
    iteration: int = typer.Option(
        None,
        "--iteration",
        help="With --phase: run the loop up to that phase of this iteration, then stop (done phases skipped).",
    ),
    phase: str = typer.Option(
        None,
        "--phase",
        help="generator (A), stage-b (B: generate, verify, dedup, cross-verify, difficulty, select) or solver "
        "(C); needs --iteration. The weights come from the run directory, as in the whole loop.",
    ),
    stage_b: int = typer.Option(
        None,
        "--stage-b",
        hidden=True,
        help="Run only stage B of this iteration (launch.mode processes child).",
    ),
) -> None:
    """Self-play: train the Generator, synthesise and filter tasks, train the Solver; N iterations."""
    from toolr0.config import load_config
    from toolr0.errors import ToolR0Error

    cfg = load_config(config, set_ or None)
    from toolr0.inference.device import check_device, pin_training_gpu

    cfg.model.device = check_device(device or cfg.model.device)
    if dry_run:
        from toolr0.selfplay.progress import print_plan

        print_plan(cfg, out)
        from toolr0.selfplay.launch import launch_plan

        for line in launch_plan(cfg, out):
            typer.echo(line)
        return
    if out is None:
        raise ToolR0Error("--out is required (the run directory), e.g. --out runs/quick")
    if (iteration is None) != (phase is None):
        raise ToolR0Error("--iteration and --phase go together, e.g. --iteration 1 --phase generator")
    if resume and not (out / "state.json").is_file():
        raise ToolR0Error(f"--resume: {out} holds no run (no state.json)")
    if cfg.launch.mode == "in_process" or stage_b is not None:  # the loop of launch.mode processes trains
        # nothing itself: its children pin their own GPUs (pinning here would narrow what they inherit)
        cfg.model.device = pin_training_gpu(cfg.model.device)  # before CUDA starts: one process, one GPU
    if stage_b is not None:
        from toolr0.selfplay.loop import run_stage_b_only

        run_stage_b_only(cfg, out, stage_b, progress=progress)
        return
    from toolr0.selfplay.loop import run_selfplay

    run_selfplay(cfg, out, progress=progress, until=(iteration, phase) if phase is not None else None)


def register(app: typer.Typer) -> None:
    """Add the top-level `selfplay` command to the `toolr0` app."""
    app.command("selfplay", help="Run the Tool-R0 self-play loop (resumes automatically; --dry-run plans).")(
        selfplay
    )
