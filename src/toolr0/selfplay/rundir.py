"""Run-directory layout, resume state and batch-resumable JSONL logs.

Layout (everything written atomically via `toolr0.io`, JSONL appended one whole batch at a time)::

    <out>/config.yaml          resolved config            <out>/state.json     stage cursor, checkpoints
    <out>/metrics.jsonl        stage timings and counts   <out>/tb/            TensorBoard events
    <out>/summary.md           final table                <out>/plots/         rewards / acceptance plots
    <out>/iter_01/candidates.jsonl   every candidate with its verdict reason
                  dedup.jsonl, crossverify.jsonl, passrates.jsonl, curriculum.jsonl,
                  stage_counts.json, passrate_hist.png, generator/, solver/ (checkpoints)
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from toolr0.errors import ConfigError, ToolR0Error
from toolr0.io import append_jsonl, atomic_write_json, atomic_write_jsonl, atomic_write_text, read_jsonl

STATE_VERSION = 1
# Changing these keys does not invalidate finished work, so a run may be extended or re-pointed on resume.
RESUME_FREE_KEYS = {("loop", "iterations"), ("model", "device")}
# Where phases run (device, processes, GPUs, the server's port) does not change what they compute: free too
# (a pinned `cuda:N` reads `cuda:0` in a child that sees one GPU).
RESUME_FREE_SECTIONS = {"launch", "server"}


class InjectedFault(RuntimeError):
    """Raised by the `TOOLR0_FAULT` fault-injection hook (tests kill the loop at chosen points)."""


def maybe_fault(stage: str, count: int) -> None:
    """Raise `InjectedFault` if env `TOOLR0_FAULT` (comma-separated `stage:count`) names this point."""
    spec = os.environ.get("TOOLR0_FAULT", "")
    if spec and f"{stage}:{count}" in {s.strip() for s in spec.split(",")}:
        raise InjectedFault(f"injected fault at {stage}:{count}")


class BatchLog:
    """A JSONL file filled one batch at a time; on load, rows of an incomplete (killed) batch are dropped.

    Rows carry a `batch` field. `expected(b)` gives the row count of a complete batch b, so a resume knows
    exactly which batches are done and regenerates only the rest (no duplicates, nothing lost).
    """

    def __init__(self, path: Path, expected: Callable[[int], int]):
        self.path = path
        self.expected = expected

    def load(self) -> tuple[list[dict[str, Any]], int]:
        """(rows of the complete leading batches, number of such batches); repairs the file if needed."""
        if not self.path.exists():
            return [], 0
        raw = self.path.read_bytes()
        rows = list(read_jsonl(self.path))
        kept: list[dict[str, Any]] = []
        b = 0
        i = 0
        while i < len(rows):
            want = self.expected(b)
            chunk = rows[i : i + want]
            if want <= 0 or len(chunk) < want or any(r.get("batch") != b for r in chunk):
                break
            kept.extend(chunk)
            i += want
            b += 1
        clean = "".join(json.dumps(r, ensure_ascii=False, default=str) + "\n" for r in kept)
        if clean.encode() != raw:
            atomic_write_text(self.path, clean)  # drop a torn line or a partial batch
        return kept, b

    def append(self, batch: int, rows: list[dict[str, Any]]) -> None:
        for r in rows:
            r["batch"] = batch
        append_jsonl(self.path, rows)


def _diff_keys(a: Any, b: Any, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    if isinstance(a, dict) and isinstance(b, dict):
        out: list[tuple[str, ...]] = []
        for k in sorted(set(a) | set(b)):
            out.extend(_diff_keys(a.get(k), b.get(k), (*prefix, str(k))))
        return out
    return [] if a == b else [prefix]


_ABSENT = object()


def _at(d: Any, key: tuple[str, ...]) -> Any:
    for part in key:
        if not isinstance(d, dict) or part not in d:
            return _ABSENT
        d = d[part]
    return d


def _new_setting_at_default(old: dict[str, Any], new: dict[str, Any], key: tuple[str, ...]) -> bool:
    """A setting a later toolr0 added (absent from the run's stored config) left at its default: the run was made
    with that behaviour, so resuming it under the new version is allowed."""
    if _at(old, key) is not _ABSENT:
        return False
    from toolr0.config import ToolR0Config, config_to_dict

    return _at(config_to_dict(ToolR0Config()), key) == _at(new, key)


class RunDir:
    """One self-play run's folder: paths, resolved config, and the resume state (`state.json`)."""

    def __init__(self, root: str | Path):
        self.root = Path(root).resolve()
        self.state: dict[str, Any] = {}

    # ---- paths
    @property
    def config_path(self) -> Path:
        return self.root / "config.yaml"

    @property
    def state_path(self) -> Path:
        return self.root / "state.json"

    @property
    def metrics_path(self) -> Path:
        return self.root / "metrics.jsonl"

    @property
    def summary_path(self) -> Path:
        return self.root / "summary.md"

    @property
    def tb_dir(self) -> Path:
        return self.root / "tb"

    @property
    def plots_dir(self) -> Path:
        return self.root / "plots"

    def iter_dir(self, t: int) -> Path:
        return self.root / f"iter_{t:02d}"

    def file(self, t: int, name: str) -> Path:
        return self.iter_dir(t) / name

    def checkpoint_dir(self, t: int, role: str) -> Path:
        return self.iter_dir(t) / role

    # ---- state
    def has_state(self) -> bool:
        return self.state_path.is_file()

    def open(self, config_data: dict[str, Any], config_yaml: str) -> bool:
        """Create or reopen the run. Returns True when resuming. Refuses a different config in the same dir."""
        if self.has_state():
            try:
                self.state = json.loads(self.state_path.read_text(encoding="utf-8"))
            except (OSError, json.JSONDecodeError) as exc:
                raise ToolR0Error(f"{self.state_path}: unreadable run state ({exc})") from None
            old = self.state.get("config", {})
            changed = [
                k
                for k in _diff_keys(old, config_data)
                if k not in RESUME_FREE_KEYS
                and not (k and k[0] in RESUME_FREE_SECTIONS)
                and not _new_setting_at_default(old, config_data, k)
            ]
            if changed:
                names = ", ".join(".".join(k) for k in changed[:5])
                more = f" (+{len(changed) - 5} more)" if len(changed) > 5 else ""
                raise ConfigError(
                    f"{self.root} holds a run with a different config ({names}{more} changed); "
                    "use another --out or the same config to resume"
                )
            self.state["config"] = config_data
            self.state["resumes"] = int(self.state.get("resumes", 0)) + 1
            self.save()
            atomic_write_text(self.config_path, config_yaml)
            return True
        if self.root.exists() and any(p.name != "tb" for p in self.root.iterdir()):
            raise ToolR0Error(
                f"{self.root} exists and is not a toolr0 run (no state.json); choose another --out"
            )
        self.root.mkdir(parents=True, exist_ok=True)
        self.state = {
            "version": STATE_VERSION,
            "config": config_data,
            "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "done": [],
            "skipped": {},
            "checkpoints": {},
            "resumes": 0,
            "finished": False,
        }
        atomic_write_text(self.config_path, config_yaml)
        self.save()
        return False

    def save(self) -> None:
        atomic_write_json(self.state_path, self.state)

    @staticmethod
    def key(t: int, stage: str) -> str:
        return f"iter_{t:02d}/{stage}"

    def is_done(self, t: int, stage: str) -> bool:
        return self.key(t, stage) in self.state.get("done", [])

    def mark_done(self, t: int, stage: str, skipped_reason: str | None = None) -> None:
        k = self.key(t, stage)
        if k not in self.state["done"]:
            self.state["done"].append(k)
        if skipped_reason:
            self.state.setdefault("skipped", {})[k] = skipped_reason
        self.state["cursor"] = k
        self.save()

    def skipped_reason(self, t: int, stage: str) -> str | None:
        return self.state.get("skipped", {}).get(self.key(t, stage))

    def set_checkpoint(self, role: str, t: int, path: str | os.PathLike | None) -> None:
        """Record the role's checkpoint after iteration t (stored relative to the run dir when inside it)."""
        rel: str | None = None
        if path is not None:
            p = Path(path)
            try:
                rel = str(p.resolve().relative_to(self.root.resolve()))
            except ValueError:
                rel = str(p)
        self.state.setdefault("checkpoints", {}).setdefault(role, {})[str(t)] = rel
        self.save()

    def checkpoint(self, role: str, t: int) -> str | None:
        """The role's checkpoint after iteration t (t = 0 or never trained: None, i.e. the base model)."""
        ck = self.state.get("checkpoints", {}).get(role, {})
        for s in range(t, 0, -1):
            if ck.get(str(s)):
                p = Path(ck[str(s)])
                return str(p if p.is_absolute() else self.root / p)
        return None

    # ---- small writers
    def write_json(self, path: Path, obj: Any) -> None:
        atomic_write_json(path, obj)

    def write_jsonl(self, path: Path, rows: list[dict[str, Any]]) -> None:
        atomic_write_jsonl(path, rows)

    def log_metric(self, row: dict[str, Any]) -> None:
        row = {"time": round(time.time(), 3), **row}
        append_jsonl(self.metrics_path, [row])

    def metrics(self) -> list[dict[str, Any]]:
        return list(read_jsonl(self.metrics_path))


# ------------------------------------------------------------------------------------- reading a finished run
def _is_model_dir(p: Path) -> bool:
    return p.is_dir() and ((p / "config.json").exists() or (p / "adapter_config.json").exists())


def is_run_dir(path: str | os.PathLike) -> bool:
    """Whether ``path`` looks like a self-play run directory (and not itself a model or adapter folder)."""
    p = Path(path)
    if not p.is_dir() or _is_model_dir(p):
        return False
    return (p / "state.json").exists() or (p / "final").is_dir() or any(p.glob("iter_*"))


def run_config(run: str | os.PathLike) -> dict[str, Any] | None:
    """A run directory's resolved config as a dict: the copy in ``state.json`` (what resume compares), else
    ``config.yaml``; None when neither is readable."""
    run = Path(run)
    try:
        cfg = json.loads((run / "state.json").read_text(encoding="utf-8")).get("config")
        if isinstance(cfg, dict):
            return cfg
    except (OSError, ValueError, AttributeError):
        pass
    import yaml

    try:
        cfg = yaml.safe_load((run / "config.yaml").read_text(encoding="utf-8"))
    except (OSError, ValueError, yaml.YAMLError):
        return None
    return cfg if isinstance(cfg, dict) else None


def latest_solver(run: str | os.PathLike) -> Path | None:
    """A run directory's newest Solver: the state's newest checkpoint, else ``final/solver``, else the newest
    ``iter_*/solver`` holding a model or adapter; None when there is none yet."""
    run = Path(run)
    state = run / "state.json"
    if state.is_file():
        try:
            ck = json.loads(state.read_text(encoding="utf-8")).get("checkpoints", {}).get("solver", {})
        except (OSError, ValueError):
            ck = {}
        for t in sorted((k for k in ck if str(k).isdigit()), key=int, reverse=True):
            if ck[t]:
                p = Path(ck[t])
                p = p if p.is_absolute() else run / p
                if _is_model_dir(p):
                    return p
    if _is_model_dir(run / "final" / "solver"):
        return run / "final" / "solver"
    for it in sorted((p for p in run.glob("iter_*") if p.is_dir()), key=lambda p: p.name, reverse=True):
        if _is_model_dir(it / "solver"):
            return it / "solver"
    return None
