"""`toolr0 data fetch`: the Hammer benchmark files, pinned and sha256-checked, into the cache."""

from __future__ import annotations

from pathlib import Path

import typer

app = typer.Typer(
    no_args_is_help=True,
    help="Evaluation data: fetch the Hammer benchmark files (BFCL's ship with bfcl-eval).",
    add_completion=False,
    pretty_exceptions_enable=False,
)


@app.command("fetch")
def fetch(
    mirror: str = typer.Option(
        None,
        "--mirror",
        help="Read the files from here instead of GitHub: a folder holding them (directly, in hammer/ or in "
        "data/test/original/) or a base URL (file:// or https://). Default: $TOOLR0_BENCHMARKS when it holds "
        "them, else MadeAgents/Hammer at the pinned commit.",
    ),
    dest: Path = typer.Option(
        None,
        "--dest",
        help="Data dir to fill (it gets hammer/); default <cache>/benchmarks, where `toolr0 eval` looks "
        "without --data-dir (cache: $TOOLR0_CACHE, else the user cache dir).",
    ),
    force: bool = typer.Option(False, "--force", help="Fetch again even when a cached file's sha256 is right."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="Print only the data dir."),
) -> None:
    """Fetch ToolAlpaca, Seal-Tools and API-Bank L1/L2 (the Hammer suite's processed test files, Apache-2.0)
    at a pinned commit of MadeAgents/Hammer, check each file's sha256 and cache them; prints the data dir.
    BFCL needs no fetch: its data ships inside the bfcl-eval package (bash scripts/install_bfcl.sh)."""
    from toolr0.eval.hammer_fetch import fetch_hammer

    root = fetch_hammer(mirror, dest=dest, force=force, echo=(lambda *_: None) if quiet else typer.echo)
    typer.echo(str(root))
