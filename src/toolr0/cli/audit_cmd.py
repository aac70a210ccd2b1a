"""`toolr0 audit ...`: the hand audit of a self-play iteration's tasks (a blind sheet to label, then the agreement of
the labels with stage B's verdicts; `selfplay/audit.py`)."""

from __future__ import annotations

import re
from pathlib import Path

import typer

app = typer.Typer(
    no_args_is_help=True,
    help="Hand audit of an iteration's tasks: a blind sheet to label, then its agreement with stage B.",
)


def _iteration(run: Path, iteration: int | None) -> int:
    from toolr0.errors import ConfigError

    if not run.is_dir():
        raise ConfigError(f"{run}: no such run directory")
    done = sorted(
        int(m.group(1))
        for d in run.iterdir()
        if (m := re.fullmatch(r"iter_(\d+)", d.name)) and (d / "candidates.jsonl").is_file()
    )
    if iteration is None:
        if not done:
            raise ConfigError(f"{run}: no iteration with candidates.jsonl yet (stage B writes it)")
        return done[-1]
    if iteration not in done:
        raise ConfigError(
            f"{run}: iteration {iteration} has no candidates.jsonl (iterations with one: {done})"
        )
    return iteration


@app.command("sheet")
def sheet(
    run: Path = typer.Argument(..., help="A self-play run directory."),
    iteration: int = typer.Option(
        None, "--iteration", "-i", help="Iteration (default: the newest with candidates)."
    ),
    n: int = typer.Option(30, "--n", min=1, help="Tasks on the sheet (a seeded sample when there are more)."),
    seed: int = typer.Option(0, "--seed", help="Sample seed."),
    all_kinds: bool = typer.Option(
        False, "--all-kinds", help="No-call tasks too (default: call tasks only)."
    ),
    out: Path = typer.Option(None, "--out", "-o", help="Sheet path (default: <run>/iter_XX/audit.md)."),
    force: bool = typer.Option(False, "--force", help="Overwrite an existing sheet (its labels are lost)."),
) -> None:
    """Write a blind sheet of the iteration's unique verified tasks (question, menu, gold calls) to label, and
    its key (stage B's verdict per task) beside it as <sheet>.key.jsonl."""
    from toolr0.errors import ConfigError
    from toolr0.io import atomic_write_jsonl, atomic_write_text
    from toolr0.selfplay.audit import key_rows, sheet_markdown
    from toolr0.selfplay.funnel import seeded_sample

    t = _iteration(run, iteration)
    it_dir = run / f"iter_{t:02d}"
    path = out or it_dir / "audit.md"
    if path.exists() and not force:
        raise ConfigError(
            f"{path}: a sheet is already there (labels would be lost); --force or --out another"
        )
    items = _items(it_dir, calls_only=not all_kinds)
    picked = seeded_sample(items, n, seed)
    what = "verified tasks" if all_kinds else "verified call tasks"
    title = (
        f"Hand audit: {run.name}, iteration {t}, {len(picked)} of {len(items)} unique {what} (seed {seed})"
    )
    atomic_write_text(path, sheet_markdown(picked, title))
    atomic_write_jsonl(
        _key_path(path), [{**k, "run": str(run.resolve()), "iteration": t} for k in key_rows(picked)]
    )
    pending = sum(it["verdict"] == "pending" for it in picked)
    typer.echo(
        f"{path}: {len(picked)} tasks to label; key {_key_path(path)}"
        + (f" ({pending} not yet decided by stage B)" if pending else "")
    )


def _items(it_dir: Path, calls_only: bool) -> list[dict]:
    from toolr0.io import read_jsonl
    from toolr0.selfplay.audit import audit_items

    names = ("candidates", "dedup", "crossverify", "passrates")
    rows = {name: list(read_jsonl(it_dir / f"{name}.jsonl")) for name in names}
    return audit_items(rows["candidates"], rows["dedup"], rows["crossverify"], rows["passrates"], calls_only)


def _refreshed(key: list[dict]) -> list[dict]:
    """The key with each verdict re-read from its run when the run is still there (a sheet written while stage B
    ran holds pending verdicts that stage B has decided since)."""
    out, runs = [], {}
    for row in key:
        it_dir = Path(str(row.get("run", ""))) / f"iter_{int(row.get('iteration') or 0):02d}"
        if not (it_dir / "candidates.jsonl").is_file():
            out.append(row)
            continue
        if it_dir not in runs:
            runs[it_dir] = {it["id"]: it for it in _items(it_dir, calls_only=False)}
        got = runs[it_dir].get(row.get("id"))
        out.append({**row, "verdict": got["verdict"], "why": got["why"]} if got else row)
    return out


def _key_path(sheet_path: Path) -> Path:
    return sheet_path.with_name(sheet_path.name + ".key.jsonl")


@app.command("score")
def score_cmd(
    sheet_path: Path = typer.Argument(..., help="A labelled sheet written by `toolr0 audit sheet`."),
) -> None:
    """Agreement of the sheet's labels with stage B's verdicts (cross-verified, or exempt, and p̂ > 0 = solved)."""
    from toolr0.errors import ConfigError
    from toolr0.io import read_jsonl
    from toolr0.selfplay.audit import parse_labels, score, score_markdown

    key = _key_path(sheet_path)
    if not sheet_path.is_file() or not key.is_file():
        missing = sheet_path if not sheet_path.is_file() else key
        raise ConfigError(f"{missing}: not found (write the sheet with `toolr0 audit sheet`)")
    labels = parse_labels(sheet_path.read_text(encoding="utf-8"))
    typer.echo(score_markdown(score(_refreshed(list(read_jsonl(key))), labels)), nl=False)
