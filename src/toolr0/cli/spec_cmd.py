"""`toolr0 spec ...`: inspect the task-spec distribution and sample TaskSpecs (spec §3)."""

from __future__ import annotations

import json
from pathlib import Path

import typer

app = typer.Typer(no_args_is_help=True, help="Task-specification sampler: inspect and sample TaskSpecs.")

FILE_OPTION = typer.Option(None, "--file", "-f", help="Spec YAML (default: the packaged paper distribution).")


@app.command("sample")
def sample(
    n: int = typer.Option(5, "--n", min=0, help="Number of specs to print."),
    seed: int = typer.Option(0, "--seed", help="Sampler seed (spec i depends only on seed and i)."),
    start: int = typer.Option(0, "--start", min=0, help="Index of the first spec."),
    file: Path | None = FILE_OPTION,
) -> None:
    """Print sampled specs as JSON lines."""
    from toolr0.core.spec import SpecSampler, load_spec_file

    sampler = SpecSampler(load_spec_file(file), seed=seed)
    for spec in sampler.sample(n, start=start):
        typer.echo(json.dumps(spec.to_dict()))


@app.command("show")
def show(file: Path | None = FILE_OPTION) -> None:
    """Print the distribution (normalised probabilities) as a table."""
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    from toolr0.core.spec import load_spec_file

    dist = load_spec_file(file)
    table = Table(title=escape(f"Task-spec distribution ({file or 'packaged default'})"))
    table.add_column("field")
    table.add_column("value")
    table.add_column("probability", justify="right")
    for section, key, prob in dist.describe():
        table.add_row(escape(section), escape(key), prob)
    Console().print(table)
