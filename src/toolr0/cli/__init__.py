"""The `toolr0` command line. Each command group lives in its own module and imports engines lazily,
so `toolr0 --help` stays fast and works without torch."""

from __future__ import annotations

import importlib
import sys
import warnings

import typer

from toolr0.errors import ToolR0Error

app = typer.Typer(
    name="toolr0",
    help="Tool-R0: train tool-calling LLM agents by self-play RL from zero data.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

# (module, name, help) of every command group; a module exposes `app` (a typer.Typer) or `register(app)`.
COMMAND_GROUPS = [
    ("toolr0.cli.spec_cmd", "spec", "Task-specification sampler: inspect and sample TaskSpecs."),
    ("toolr0.cli.model_cmd", "model", "Fetch and inspect models (the packaged default, HF ids, folders)."),
    ("toolr0.cli.solve_cmd", None, None),
    ("toolr0.cli.train_cmd", "train", "GRPO training of the Generator or the Solver (TRL)."),
    ("toolr0.cli.selfplay_cmd", None, None),
    ("toolr0.cli.eval_cmd", "eval", "Evaluate a model on the Hammer benchmarks and BFCL, offline."),
    ("toolr0.cli.data_cmd", "data", "Evaluation data: fetch the Hammer benchmark files, sha256-checked."),
    ("toolr0.cli.audit_cmd", "audit", "Hand audit of an iteration's tasks: a blind sheet to label, then its agreement with stage B."),
]


def _register_groups() -> None:
    for module_name, name, help_text in COMMAND_GROUPS:
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name == module_name:
                continue  # group not built yet
            raise
        if hasattr(module, "register"):
            module.register(app)
        else:
            app.add_typer(module.app, name=name, help=help_text)


_register_groups()


def main() -> None:
    """Entry point: run the app, turning user-facing errors into one line on stderr and exit code 2."""
    # transformers 5 renames gradient-checkpointing APIs that TRL 1.16 still calls: noise, not a user problem.
    warnings.filterwarnings("ignore", category=FutureWarning, module=r"transformers\.")
    try:
        app()
    except ToolR0Error as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(2)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        sys.exit(130)


if __name__ == "__main__":
    main()
