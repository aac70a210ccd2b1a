"""Terminal UX of the self-play loop: per-stage progress bars (counts, ETA), a one-screen live summary
(iteration, stage, reward means, acceptance rates), the final table, and the `--dry-run` plan. Off a terminal
(a log file, CI) it prints plain lines: one per finished stage and a heartbeat at least every 30 s of a
running stage, so a long stage is never silent in the log."""

from __future__ import annotations

import sys
import threading
import time
from pathlib import Path
from typing import Any

from rich.console import Console, Group
from rich.live import Live
from rich.panel import Panel
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table

from toolr0.config import ToolR0Config

STAGE_TITLES = {
    "generator_train": "A  Generator GRPO",
    "generate": "B1 generate + verify",
    "dedup": "B2 dedup",
    "cross_verify": "B3 cross-verify",
    "difficulty": "B4 difficulty (pass@K)",
    "select": "B5 select curriculum",
    "solver_train": "C  Solver GRPO",
}


class Reporter:
    """Progress for one run. `enabled=False` (or no terminal) prints one plain line per finished stage and,
    while a stage runs, a progress line whenever `heartbeat_s` seconds passed without one (0: none)."""

    def __init__(
        self,
        enabled: bool = True,
        console: Console | None = None,
        iterations: int = 1,
        heartbeat_s: float = 30.0,
    ):
        self.console = console or Console(stderr=True)
        self.enabled = enabled and self.console.is_terminal
        self.heartbeat_s = heartbeat_s
        self._beat: _Heartbeat | None = None
        self._active = False  # a stage started and not yet ended
        self._done, self._total, self._unit = 0, None, ""
        self._last_line = time.monotonic()
        self.iterations = iterations
        self.iteration = 0
        self.stage = "-"
        self.info: dict[str, Any] = {}
        self.acceptance: dict[str, str] = {}
        self.rewards: dict[str, float] = {}
        self.progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[unit]}"),
            TimeElapsedColumn(),
            TextColumn("ETA"),
            TimeRemainingColumn(),
            console=self.console,
        )
        self._task: Any = None
        self._t0 = 0.0
        self._live: Live | None = None

    # ---- lifecycle
    def __enter__(self) -> Reporter:
        if self.enabled:
            self._live = Live(self._render(), console=self.console, refresh_per_second=2, transient=False)
            self._live.__enter__()
        elif self.heartbeat_s > 0:
            self._beat = _Heartbeat(self)
        return self

    def __exit__(self, *exc: Any) -> None:
        if self._beat is not None:
            self._beat.stop()
            self._beat = None
        if self._live is not None:
            self._live.update(self._render())
            self._live.__exit__(*exc)
            self._live = None

    def _render(self) -> Any:
        head = Table.grid(padding=(0, 2))
        head.add_column(style="bold")
        head.add_column()
        head.add_row("iteration", f"{self.iteration}/{self.iterations}")
        head.add_row("stage", STAGE_TITLES.get(self.stage, self.stage))
        if self.rewards:
            head.add_row("reward means", "  ".join(f"{k}={v:.3f}" for k, v in self.rewards.items()))
        if self.acceptance:
            head.add_row("acceptance", "  ".join(f"{k} {v}" for k, v in self.acceptance.items()))
        for k, v in self.info.items():
            head.add_row(k, str(v))
        return Panel(Group(head, self.progress), title="toolr0 self-play", border_style="cyan")

    def _refresh(self) -> None:
        if self._live is not None:
            self._live.update(self._render())

    # ---- events
    def stage_start(self, t: int, stage: str, total: int | None, unit: str = "") -> None:
        self.iteration, self.stage = t, stage
        self._t0 = self._last_line = time.monotonic()
        self._active, self._done, self._total, self._unit = True, 0, total, unit
        if self.enabled:
            if self._task is not None:
                self.progress.remove_task(self._task)
            self._task = self.progress.add_task(STAGE_TITLES.get(stage, stage), total=total, unit=unit)
        self._refresh()

    def advance(self, n: int = 1, completed: int | None = None) -> None:
        self._done = completed if completed is not None else self._done + n
        if self.enabled and self._task is not None:
            if completed is not None:
                self.progress.update(self._task, completed=completed)
            else:
                self.progress.advance(self._task, n)
        self._refresh()

    def stage_end(self, t: int, stage: str, message: str) -> None:
        self._active = False
        line = f"[iter {t}] {STAGE_TITLES.get(stage, stage)}: {message} ({time.monotonic() - self._t0:.1f} s)"
        if self.enabled:
            self.progress.console.print(line)
        else:
            self._plain(line)
        self._refresh()

    def heartbeat(self) -> None:
        """Off a terminal: one progress line for the running stage if none was printed for `heartbeat_s`."""
        now = time.monotonic()
        if self.enabled or not self._active or now - self._last_line < self.heartbeat_s:
            return
        of = f"/{self._total}" if self._total is not None else ""
        title = STAGE_TITLES.get(self.stage, self.stage)
        self._plain(
            f"[iter {self.iteration}] {title}: {self._done}{of} {self._unit}, {now - self._t0:.0f} s so far"
        )

    def _plain(self, line: str) -> None:
        self._last_line = time.monotonic()
        print(line, file=sys.stderr, flush=True)

    def note(self, message: str) -> None:
        if self.enabled:
            self.progress.console.print(message)
        else:
            self._plain(message)

    def update(
        self, rewards: dict[str, float] | None = None, acceptance: dict[str, str] | None = None, **info: Any
    ) -> None:
        if rewards:
            self.rewards.update(rewards)
        if acceptance:
            self.acceptance.update(acceptance)
        self.info.update(info)
        self._refresh()


class _Heartbeat:
    """A daemon thread calling `reporter.heartbeat()` a few times per period: a stage stuck in one long call
    (a whole generation batch, a pass@K batch) gets its progress line without the stage's help."""

    def __init__(self, reporter: Reporter):
        self._stop = threading.Event()
        period = max(0.01, min(5.0, reporter.heartbeat_s / 4))
        self._thread = threading.Thread(target=self._run, args=(reporter, period), daemon=True)
        self._thread.start()

    def _run(self, reporter: Reporter, period: float) -> None:
        while not self._stop.wait(period):
            reporter.heartbeat()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)


def final_table(rows: list[dict[str, Any]], title: str = "self-play summary") -> Table:
    """Per iteration: tasks surviving each stage, Solver steps and reward means (fits 80 columns)."""
    cols = [("iter", "iter"), ("generated", "gen"), ("verified", "verif"), ("unique", "uniq"),
            ("cross-verified", "x-ver"), ("labelled", "label"), ("selected", "sel"),
            ("solver steps", "S steps"), ("gen reward", "G rew"), ("solver reward", "S rew")]  # fmt: skip
    table = Table(title=title)
    for _, head in cols:
        table.add_column(head, justify="right")
    for r in rows:
        table.add_row(*[str(r.get(k, "-")) for k, _ in cols])
    return table


def print_plan(cfg: ToolR0Config, out: Path | None = None, console: Console | None = None) -> None:
    """Print the `--dry-run` plan: stages, counts, estimated tokens and wall time (no model loaded)."""
    from toolr0.inference.models import cpu_supports_bf16
    from toolr0.selfplay.plan import (
        ASSUMED_PASS,
        CPU_FP32_SLOWDOWN,
        build_plan,
        format_seconds,
        plan_total,
        uses_gpu,
    )

    console = console or Console()
    bf16 = cpu_supports_bf16()
    rows = build_plan(cfg, cpu_bf16=bf16)
    table = Table(title=f"toolr0 self-play plan ({cfg.model.name}, {cfg.loop.iterations} iteration(s))")
    for c in ("iter", "stage", "count", "tokens", "est. time", "note"):
        table.add_column(c, justify="right" if c in ("iter", "tokens", "est. time") else "left")
    for r in rows:
        table.add_row(
            str(r.iteration),
            r.stage,
            r.count,
            f"{r.tokens:,}" if r.tokens else "-",
            format_seconds(r.seconds) if r.seconds else "-",
            r.note,
        )
    console.print(table)
    console.print(
        f"estimated total: {format_seconds(plan_total(rows))} (rough, ±3×; filter rates assumed "
        + ", ".join(f"{k} {v:.0%}" for k, v in ASSUMED_PASS.items())
        + f"); roles: {getattr(cfg.roles, 'mode', '?')}, structured decoding: "
        + f"{'on' if getattr(cfg.structured, 'enabled', False) else 'off'}, "
        + f"generator prompt: {getattr(cfg.prompts, 'generator_variant', '?')}"
    )
    if not uses_gpu(cfg):
        console.print(
            "CPU times: rates measured in fp32 on 2 AVX2 cores"
            + (f", divided by {CPU_FP32_SLOWDOWN}x for this CPU's bf16 (AMX/AVX512-BF16)" if bf16 else "")
        )
    from toolr0.selfplay.plan import memory_lines

    for line in memory_lines(cfg):
        console.print(line, highlight=False, soft_wrap=True)
    if out is not None:
        state = out / "state.json"
        console.print(f"run directory: {out}" + (" (exists: would resume)" if state.is_file() else " (new)"))
