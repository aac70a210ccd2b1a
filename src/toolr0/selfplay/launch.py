"""Phases as child processes (`launch.mode: processes`): each GRPO phase runs as a child
`accelerate launch ... -m toolr0.cli train <role> --resume ...` and stage B as a child
`python -m toolr0.cli selfplay --stage-b T`, with the GPUs, process count, nodes and accelerate config of the
config's `launch` section.

The run directory stays the single source of truth: a child trains into the same role folder
(`iter_XX/<role>/`, resumed from its newest complete checkpoint) and stage B into the same JSONL files the
in-process loop uses, and the parent records a phase as done only after its child exited 0 and left its
`summary.json` (GRPO) or its `select` mark (stage B). So a killed child or a killed loop resumes with the same
command. Each child's output goes to a log file beside its results (the tail is quoted when it fails); its
process group is terminated, then killed, when the loop itself stops.
"""

from __future__ import annotations

import json
import os
import shlex
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from toolr0.config import ToolR0Config
from toolr0.core.seeds import seed_for
from toolr0.errors import ConfigError, ToolR0Error
from toolr0.inference.server import die_with_parent
from toolr0.selfplay.progress import Reporter
from toolr0.selfplay.rundir import RunDir
from toolr0.selfplay.served import ServedSolver
from toolr0.selfplay.train_record import train_record

PHASES = {"generator": "A  Generator GRPO", "stage_b": "B  dataset synthesis", "solver": "C  Solver GRPO"}


class ChildFailed(ToolR0Error):
    """A phase's child process exited non-zero."""


# --------------------------------------------------------------------------------------------- commands
def packaged_accelerate_dir() -> Path:
    """The accelerate configs shipped in the package (`ddp.yaml`, `zero3.yaml`, `multinode.yaml`; the
    checkout's `configs/accelerate/` points here)."""
    return Path(__file__).with_name("accelerate")


def resolve_accelerate_config(value: str, phase: str) -> str:
    """An absolute path for `launch.<phase>.accelerate_config`: the file as given when it exists (relative to
    the working directory), else the packaged config of that name (so `configs/accelerate/zero3.yaml` works
    outside the checkout too); a one-line `ConfigError` otherwise."""
    given = Path(value).expanduser()
    if given.is_file():
        return str(given.resolve())
    packaged = packaged_accelerate_dir() / given.name
    if packaged.is_file():
        return str(packaged)
    names = ", ".join(sorted(p.name for p in packaged_accelerate_dir().glob("*.yaml")))
    raise ConfigError(
        f"launch.{phase}.accelerate_config {value}: no such file, and no packaged accelerate config of that "
        f"name ({names})"
    )


def accelerate_prefix(cfg: ToolR0Config, phase: str) -> list[str]:
    """`python -m accelerate.commands.launch ...` for a GRPO phase, from `launch.<phase>`."""
    pl = getattr(cfg.launch, phase)
    cmd = [sys.executable, "-m", "accelerate.commands.launch"]
    if pl.accelerate_config:
        cmd += ["--config_file", resolve_accelerate_config(pl.accelerate_config, phase)]
    if pl.cpu:
        # accelerate 1.15 runs `--cpu` with several processes only under mpirun; its torchrun launcher
        # (--multi_gpu) with ACCELERATE_USE_CPU (child_env) gives DDP over gloo instead
        cmd += ["--multi_gpu"] if pl.processes > 1 else ["--cpu"]
        cmd += ["--mixed_precision", "no", "--dynamo_backend", "no"]
    elif pl.processes > 1 and not pl.accelerate_config:
        cmd += ["--multi_gpu"]
    cmd += ["--num_processes", str(pl.processes), "--num_machines", str(pl.nodes)]
    if cfg.launch.main_process_port is not None:
        cmd += ["--main_process_port", str(cfg.launch.main_process_port)]
    return cmd + list(pl.extra_args)


def train_command(
    cfg: ToolR0Config,
    run: RunDir,
    role: str,
    out_dir: Path | str,
    *,
    init_generator: str | None,
    init_solver: str | None,
    spec_seed: int | None = None,
    curriculum: Path | str | None = None,
    overrides: list[str] = (),  # type: ignore[assignment]
) -> list[str]:
    """The child command of one GRPO phase (always `--resume`: a re-run continues the same folder)."""
    cmd = [*accelerate_prefix(cfg, role), "-m", "toolr0.cli", "train", role]
    cmd += ["--config", str(run.config_path), "--out", str(out_dir), "--resume"]
    if init_generator:
        cmd += ["--init-generator", str(init_generator)]
    if init_solver:
        cmd += ["--init-solver", str(init_solver)]
    if spec_seed is not None:
        cmd += ["--spec-seed", str(spec_seed)]
    if curriculum is not None:
        cmd += ["--data", str(curriculum)]
    for o in overrides:
        cmd += ["--set", o]
    return cmd


def stage_b_command(run: RunDir, t: int) -> list[str]:
    """The child command of stage B of iteration t (one process)."""
    return [
        sys.executable,
        "-m",
        "toolr0.cli",
        "selfplay",
        "--config",
        str(run.config_path),
        "--out",
        str(run.root),
        "--stage-b",
        str(t),
        "--no-progress",
    ]


def child_env(cfg: ToolR0Config, phase: str) -> dict[str, str]:
    env = dict(os.environ)
    pl = getattr(cfg.launch, phase)
    if pl.gpus is not None:
        env["CUDA_VISIBLE_DEVICES"] = pl.gpus
    if pl.cpu:
        env["ACCELERATE_USE_CPU"] = "true"
        env["CUDA_VISIBLE_DEVICES"] = ""
    return env


def describe(cmd: list[str], gpus: str | None) -> str:
    return (f"CUDA_VISIBLE_DEVICES={gpus} " if gpus is not None else "") + shlex.join(cmd)


def launch_plan(cfg: ToolR0Config, out: Path | str | None) -> list[str]:
    """The `--dry-run` lines: per phase, the process it starts (command, GPUs, process count), and the server."""
    root = Path(out) if out is not None else Path("<out>")
    run = RunDir(root)
    lines = []
    if cfg.launch.mode == "in_process":
        lines.append("launch: in-process (every phase runs in the `toolr0 selfplay` process; launch.mode)")
    else:
        lines.append(
            "launch: processes (per phase one child; the run directory is shared; shown for iteration 1)"
        )
        d1 = run.iter_dir(1)
        seed = "<derived>"
        gen = train_command(
            cfg, run, "generator", d1 / "generator", init_generator="<G_{t-1}>", init_solver="<S_{t-1}>"
        )
        gen += ["--spec-seed", seed]
        sol = train_command(
            cfg,
            run,
            "solver",
            d1 / "solver",
            init_generator=None,
            init_solver="<S_{t-1}>",
            curriculum=d1 / "curriculum.jsonl",
        )
        for phase, cmd in (("generator", gen), ("stage_b", stage_b_command(run, 1)), ("solver", sol)):
            pl = getattr(cfg.launch, phase)
            gpus = pl.gpus if pl.gpus is not None else "inherited"
            lines.append(
                f"  {PHASES[phase]}: {pl.processes} process(es) on {pl.nodes} node(s), GPUs {gpus}"
                + (f", {pl.accelerate_config}" if pl.accelerate_config else "")
                + (", CPU (DDP over gloo)" if pl.cpu else "")
            )
            lines.append(f"    {describe(cmd, pl.gpus)}")
            if pl.nodes > 1:
                lines.append(
                    f"    {pl.nodes} nodes: the loop starts this on its own node only; start the same command on "
                    "every other node with its --machine_rank (and the same --main_process_ip)"
                )
    if cfg.server.managed:
        from toolr0.inference.server import ManagedServer

        s = ManagedServer(
            cfg.server,
            cfg.model.name,
            root / "server.log",
            gpu_memory_utilization=cfg.inference.gpu_memory_utilization,
        )
        lines.append(
            "server: managed frozen Solver, started before phase A with S_{t-1} (a LoRA adapter is served as "
            f"--lora-modules {cfg.server.served_model_name}=<adapter>), restarted each iteration, stopped "
            "before training"
        )
        lines.append(f"    {s.describe()}")
    elif cfg.inference.backend == "openai":
        lines.append(f"server: not managed; the frozen Solver is queried at {cfg.inference.base_url}")
    else:
        lines.append(
            f"server: none (inference.backend {cfg.inference.backend}: the frozen Solver is in-process)"
        )
    return lines


# ------------------------------------------------------------------------------------------------ running
def _tail(path: Path, n: int = 15) -> str:
    try:
        rows = [
            r.strip() for r in path.read_text(encoding="utf-8", errors="replace").splitlines() if r.strip()
        ]
    except OSError:
        return "(no log)"
    return " | ".join(rows[-n:]) or "(empty log)"


def run_child(
    cmd: list[str],
    env: dict[str, str],
    log_path: Path,
    what: str,
    echo: Any = None,
    watch: Callable[[], None] | None = None,
) -> None:
    """Run one child to completion, its output appended to `log_path`; its pid in `<log>.pid` while it runs.

    A non-zero exit raises `ChildFailed` with the log tail; if the loop is interrupted, the child's process
    group is terminated, then killed. `watch` (e.g. `ManagedServer.watch`) is called about twice a second
    while the child runs: when it raises (the server the child queries died or hangs), the child is stopped
    and the error, prefixed with `what`, is raised."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    pid_path = log_path.with_suffix(".pid")
    if echo is not None:
        echo(f"{what}: {shlex.join(cmd)} (log {log_path})")
    with open(log_path, "ab") as log:
        log.write(f"\n$ {shlex.join(cmd)}\n".encode())
        log.flush()
        proc = subprocess.Popen(
            cmd,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=env,
            start_new_session=True,  # its own process group: the launcher and every rank are stopped together
            preexec_fn=die_with_parent,  # and a killed loop leaves no orphan training job behind
        )
        pid_path.write_text(str(proc.pid))
        try:
            rc = _wait(proc, watch)
        except ToolR0Error as exc:
            _stop_group(proc)
            raise type(exc)(f"{what}: {exc}; the child was stopped (re-run the same command to resume)") from None
        except BaseException:
            _stop_group(proc)
            raise
        finally:
            pid_path.unlink(missing_ok=True)
    if rc != 0:
        raise ChildFailed(
            f"{what}: child exited with code {rc} (re-run the same command to resume); log {log_path}, tail: "
            f"{_tail(log_path)}"
        )


def _wait(proc: subprocess.Popen[bytes], watch: Callable[[], None] | None, poll_s: float = 0.5) -> int:
    if watch is None:
        return proc.wait()
    while True:
        try:
            return proc.wait(timeout=poll_s)
        except subprocess.TimeoutExpired:
            watch()


def _stop_group(proc: subprocess.Popen[bytes], timeout_s: float = 30.0) -> None:
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(timeout=timeout_s)
            return
        except subprocess.TimeoutExpired:
            continue


def _summary_result(out_dir: Path) -> dict[str, Any]:
    """The loop's record of a finished child GRPO phase, from the role folder's `summary.json`."""
    path = out_dir / "summary.json"
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ToolR0Error(f"{path}: the training child left no readable summary ({exc})") from None
    return train_record(SimpleNamespace(**data))


class ProcessEngine:
    """The loop's engine (`seam.Engine`, `seam.StageBChild`) when `launch.mode` is `processes`: every phase
    in a child process (module docstring)."""

    def __init__(self, cfg: ToolR0Config, run: RunDir):
        self.cfg = cfg
        self.run = run
        self._served = ServedSolver(cfg, run)

    def begin_iteration(self, t: int) -> None:
        pass

    def _echo(self, reporter: Reporter | None) -> Any:
        return getattr(reporter, "note", None)

    def train_generator(
        self, *, iteration: int, init: str | None, frozen_solver: str | None, out_dir: Path, reporter: Reporter
    ) -> dict[str, Any]:
        overrides: list[str] = []
        t0 = time.monotonic()
        try:
            if self.cfg.server.managed:
                server = self._served.serve(frozen_solver)
                overrides = [
                    f"inference.base_url={server.base_url}",
                    f"inference.served_model={server.served_model}",
                ]
            shared = self.cfg.roles.mode == "shared"
            cmd = train_command(
                self.cfg,
                self.run,
                "generator",
                out_dir,
                init_generator=init,
                init_solver=None if shared else frozen_solver,
                spec_seed=seed_for(self.cfg.seed, "generator_prompts", iteration),
                overrides=overrides,
            )
            run_child(
                cmd,
                child_env(self.cfg, "generator"),
                Path(out_dir) / "launch.log",
                f"iteration {iteration} generator_train",
                self._echo(reporter),
                watch=self._served.server.watch if self._served.server is not None else None,
            )
        finally:
            self._served.stop()
        res = _summary_result(Path(out_dir))
        res["child_wall_s"] = round(time.monotonic() - t0, 2)
        return res

    def train_solver(
        self, *, iteration: int, init: str | None, curriculum: Path, out_dir: Path, reporter: Reporter
    ) -> dict[str, Any]:
        shared = self.cfg.roles.mode == "shared"
        cmd = train_command(
            self.cfg,
            self.run,
            "solver",
            out_dir,
            init_generator=init if shared else None,
            init_solver=None if shared else init,
            curriculum=curriculum,
        )
        t0 = time.monotonic()
        run_child(
            cmd,
            child_env(self.cfg, "solver"),
            Path(out_dir) / "launch.log",
            f"iteration {iteration} solver_train",
            self._echo(reporter),
        )
        res = _summary_result(Path(out_dir))
        res["child_wall_s"] = round(time.monotonic() - t0, 2)
        return res

    def run_stage_b(self, t: int, reporter: Reporter | None = None) -> None:
        run_child(
            stage_b_command(self.run, t),
            child_env(self.cfg, "stage_b"),
            self.run.file(t, "stage_b.log"),
            f"iteration {t} stage B",
            self._echo(reporter),
        )

    def generator(self, checkpoint: str | None, t: int) -> Any:
        raise ToolR0Error("launch.mode processes: stage B runs in its own process (run_stage_b)")

    solver = generator

    def close(self) -> None:
        self._served.stop()
