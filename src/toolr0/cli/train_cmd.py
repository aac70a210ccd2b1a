"""`toolr0 train generator|solver`: GRPO training of one role on TRL (engines imported inside commands).

    toolr0 train generator --config configs/cpu.yaml [--out DIR] [--resume] [--dry-run]
    toolr0 train solver --config configs/cpu.yaml --data curriculum.jsonl [--out DIR] [--resume]

`--dry-run` prints the resolved GRPOConfig arguments (and the reward setup) without loading a model: this
is how GPU recipes (full fine-tune, vLLM, several processes) are checked on a CPU machine.
"""

from __future__ import annotations

import json
from pathlib import Path

import typer

app = typer.Typer(
    help="GRPO training of the Generator or the Solver (TRL GRPOTrainer).",
    no_args_is_help=True,
    add_completion=False,
)

ConfigOpt = typer.Option(None, "--config", "-c", help="toolr0 YAML config (default: built-in defaults).")
SetOpt = typer.Option(
    None, "--set", help="Override a config field, e.g. --set generator.max_steps=2 (repeatable)."
)
ResumeOpt = typer.Option(False, "--resume", help="Continue from the newest complete checkpoint under --out.")
DryRunOpt = typer.Option(False, "--dry-run", help="Print the resolved GRPOConfig arguments; load no model.")
ProcOpt = typer.Option(
    1, "--processes", min=1, help="Dry run: training processes (GPUs) to resolve batches for."
)
InitGenOpt = typer.Option(
    None, "--init-generator", help="Start the Generator from this adapter/model folder."
)
InitSolOpt = typer.Option(None, "--init-solver", help="Start the Solver from this adapter/model folder.")
DeviceOpt = typer.Option(
    None, "--device", help="auto (CUDA when present, else CPU), cpu or cuda:N (default: model.device)."
)
SpecSeedOpt = typer.Option(
    None, "--spec-seed", hidden=True, help="Seed of the Generator's training specs (default: the master seed)."
)


def _load(config: Path | None, overrides: list[str] | None):  # noqa: ANN202
    from toolr0.config import load_config

    return load_config(config, overrides or None)


def _run(
    role: str,
    config: Path | None,
    out: Path | None,
    resume: bool,
    dry_run: bool,
    overrides: list[str] | None,
    processes: int,
    data: Path | None = None,
    init_generator: Path | None = None,
    init_solver: Path | None = None,
    device: str | None = None,
    spec_seed: int | None = None,
) -> None:
    import logging

    from rich.console import Console

    from toolr0.errors import ConfigError

    console = Console(stderr=True)
    cfg = _load(config, overrides)
    from toolr0.inference.device import check_device, pin_training_gpu

    cfg.model.device = check_device(device or cfg.model.device)
    out = out or Path("runs") / f"train-{role}"
    if dry_run:
        from toolr0.training.run import dry_run as resolve

        typer.echo(json.dumps(resolve(role, cfg, out, n_processes=processes), indent=2, default=str))
        return
    if role == "solver" and data is None:
        raise ConfigError("toolr0 train solver needs --data curriculum.jsonl")
    if data is not None and not data.is_file():
        raise ConfigError(f"{data}: curriculum file not found")
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    cfg.model.device = pin_training_gpu(cfg.model.device)  # before CUDA starts: one process trains on one GPU
    from toolr0.training.run import train_role

    init = {"generator": init_generator, "solver": init_solver}
    console.print(
        f"[bold]toolr0 train {role}[/bold]: model {cfg.model.name}, roles {cfg.roles.mode}, out {out}"
    )
    result = train_role(
        role,  # type: ignore[arg-type]
        cfg,
        out,
        data=data,
        resume=resume,
        init={k: str(v) for k, v in init.items() if v},
        echo=lambda line: console.print(line),
        spec_seed=spec_seed,
    )
    sps = f"{result.seconds_per_step:.1f}" if result.seconds_per_step else "n/a"
    console.print(
        f"done: step {result.global_step} (from {result.start_step}), {sps} s/step, "
        f"peak RSS {result.peak_rss_gb:.1f} GB, precision {result.precision}, final {result.final_dir}"
    )


@app.command("generator")
def generator(
    config: Path = ConfigOpt,
    out: Path = typer.Option(None, "--out", "-o", help="Run folder (default runs/train-generator)."),
    resume: bool = ResumeOpt,
    dry_run: bool = DryRunOpt,
    overrides: list[str] = SetOpt,
    processes: int = ProcOpt,
    init_generator: Path = InitGenOpt,
    init_solver: Path = InitSolOpt,
    device: str = DeviceOpt,
    spec_seed: int = SpecSeedOpt,
) -> None:
    """Train the Generator: prompts from sampled specs; rewards format, validity, curriculum (frozen Solver)."""
    _run(
        "generator",
        config,
        out,
        resume,
        dry_run,
        overrides,
        processes,
        None,
        init_generator,
        init_solver,
        device,
        spec_seed,
    )


@app.command("solver")
def solver(
    config: Path = ConfigOpt,
    data: Path = typer.Option(
        None, "--data", "-d", help="Curriculum JSONL (records with question/tools/calls)."
    ),
    out: Path = typer.Option(None, "--out", "-o", help="Run folder (default runs/train-solver)."),
    resume: bool = ResumeOpt,
    dry_run: bool = DryRunOpt,
    overrides: list[str] = SetOpt,
    processes: int = ProcOpt,
    init_generator: Path = InitGenOpt,
    init_solver: Path = InitSolOpt,
    device: str = DeviceOpt,
) -> None:
    """Train the Solver on a curriculum JSONL; rewards format and accuracy."""
    _run(
        "solver",
        config,
        out,
        resume,
        dry_run,
        overrides,
        processes,
        data,
        init_generator,
        init_solver,
        device,
    )
