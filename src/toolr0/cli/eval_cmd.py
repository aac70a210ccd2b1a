"""`toolr0 eval`: score a model on the Hammer benchmarks and BFCL offline (`run`), list benchmarks (`list`),
re-summarise an output folder (`report`) and compare two results side by side (`compare`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

app = typer.Typer(
    help="Evaluate a model on the Hammer benchmarks and BFCL, offline.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _modules_option() -> Any:
    return typer.Option(
        [],
        "--benchmark-module",
        help="An importable module (on PYTHONPATH) registering more benchmarks, e.g. a family outside the "
        "package; repeatable. Also read from $TOOLR0_BENCHMARK_MODULES (comma-separated).",
    )


def _load_families(modules: list[str]) -> None:
    from toolr0.eval import registry

    registry.load_families(modules)


@app.command("run")
def run(
    model: str = typer.Option(
        "default",
        "--model",
        "-m",
        help="'default' (packaged Qwen2.5-Coder-0.5B-Instruct), a cached HF id, a model or LoRA adapter folder, "
        "or a self-play run directory (its latest Solver).",
    ),
    benchmarks: list[str] = typer.Option(
        ["hammer", "bfcl"],
        "--benchmarks",
        "-b",
        help="Benchmarks or groups, comma-separated or repeated: hammer (toolalpaca, sealtool, apibank_l1, "
        "apibank_l2), bfcl (simple_python, multiple, parallel, parallel_multiple, irrelevance), bfcl_live, all, "
        "or single names such as bfcl_irrelevance.",
    ),
    out: Path = typer.Option(
        None,
        "--out",
        "-o",
        help="Output folder (default runs/eval/<model>_<predictions>); resumes if it exists.",
    ),
    limit: int = typer.Option(
        None,
        "--limit",
        "-n",
        min=1,
        help="Fixed seeded subset of N items per benchmark (same items every time).",
    ),
    seed: int = typer.Option(0, "--seed", help="Seed of the --limit subset (and of decoding)."),
    predictions: str = typer.Option(
        "model",
        "--predictions",
        help="model: generate; gold: score the gold answers (sanity, expect 100%); corrupt: deterministic "
        "corruptions of gold (expect 0%, each with its reason).",
    ),
    data_dir: Path = typer.Option(
        None,
        "--data-dir",
        help="Folder holding hammer/ (default $TOOLR0_BENCHMARKS, ../shared/benchmarks, or the cache `toolr0 data fetch` fills).",
    ),
    batch_size: int = typer.Option(8, "--batch-size", min=1, help="Prompts per generate() call."),
    max_new_tokens: int = typer.Option(1024, "--max-new-tokens", min=1, help="Generation budget per item."),
    dtype: str = typer.Option("auto", "--dtype", help="auto, bf16 or fp32."),
    device: str = typer.Option("auto", "--device", help="auto (CUDA when present, else CPU), cpu or cuda:N."),
    cpu_matmul: str = typer.Option(
        "auto",
        "--cpu-matmul",
        help="fp32 CPU: decode matmuls through oneDNN (onednn), the default BLAS (default) or the faster of the "
        "two on this CPU (auto); int8: dynamically quantized int8 matmuls (faster, changes answers). Part of the "
        "folder's fingerprint.",
    ),
    threads: int = typer.Option(
        None, "--threads", min=1, help="torch CPU threads (default: OMP_NUM_THREADS)."
    ),
    prompt_variant: str = typer.Option(
        None,
        "--prompt-variant",
        help="Solver prompt variant (reference, compact, or a YAML path; its solver section is every text the "
        "Solver is sent). Default: a run directory's prompts.solver_variant, else reference.",
    ),
    solver_format: str = typer.Option(
        None,
        "--solver-format",
        help="reference: the paper's <think>/<tool_call_answer> prompt (spec §7.1); native: the model's own "
        "chat template with tools= (headline reads the call however it is wrapped; strict % counts only the "
        "template's own <tool_call> blocks). Default: a run directory's own prompts.solver_format, else the "
        "config default (prompts.solver_format).",
    ),
    reason_first: bool = typer.Option(
        None,
        "--reason-first/--no-reason-first",
        help="Native format: ask for a short <think> before the calls. Default: a run directory's "
        "prompts.solver_reason_first, else off.",
    ),
    merge_adapter: bool = typer.Option(
        True,
        "--merge-adapter/--no-merge-adapter",
        help="Fold a LoRA adapter folder into its base weights before generating (faster; same model up to "
        "rounding).",
    ),
    overwrite: bool = typer.Option(
        False, "--overwrite", help="Discard rows in --out made under a different setting instead of refusing."
    ),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="Show a progress bar."),
    show_offline: bool = typer.Option(
        False,
        "--show-offline",
        help="Also list NexusRaven and SNIPS, the paper benchmarks not obtainable offline (n/a).",
    ),
    benchmark_modules: list[str] = _modules_option(),
) -> None:
    """Generate (greedy, batched) and score; writes items.jsonl, summary.json and summary.md."""
    from toolr0.core.solver_format import SOLVER_FORMATS
    from toolr0.errors import ToolR0Error
    from toolr0.eval.report import markdown
    from toolr0.eval.runner import EvalSettings, default_out_dir, run_eval
    from toolr0.eval.target import choose_solver_format

    if predictions not in ("model", "gold", "corrupt"):
        raise ToolR0Error(f"--predictions must be model, gold or corrupt, not {predictions!r}")
    if dtype not in ("auto", "bf16", "fp32"):
        raise ToolR0Error(f"--dtype must be auto, bf16 or fp32, not {dtype!r}")
    from toolr0.inference.cpu_matmul import MODES as MATMUL_MODES

    if cpu_matmul not in MATMUL_MODES:
        raise ToolR0Error(f"--cpu-matmul must be one of {', '.join(MATMUL_MODES)}, not {cpu_matmul!r}")
    if solver_format is not None and solver_format not in SOLVER_FORMATS:
        raise ToolR0Error(f"--solver-format must be one of {', '.join(SOLVER_FORMATS)}, not {solver_format!r}")
    choice = choose_solver_format(model, solver_format, prompt_variant, reason_first)
    typer.echo(
        f"solver format: {choice.solver_format}"
        + (" (reason first)" if choice.reason_first else "")
        + f", prompt variant {choice.prompt_variant}: {choice.why}",
        err=True,
    )
    _load_families(benchmark_modules)
    from toolr0.inference.device import check_device

    settings = EvalSettings(
        model=model,
        benchmarks=list(benchmarks),
        out_dir=str(out or default_out_dir(model, predictions)),
        limit=limit,
        seed=seed,
        predictions=predictions,  # type: ignore[arg-type]
        data_dir=str(data_dir) if data_dir else None,
        batch_size=batch_size,
        max_new_tokens=max_new_tokens,
        dtype=dtype,
        threads=threads,
        device=check_device(device),
        cpu_matmul=cpu_matmul,
        prompt_variant=choice.prompt_variant,
        solver_format=choice.solver_format,
        reason_first=choice.reason_first,
        merge_adapter=merge_adapter,
    )
    summary = run_eval(
        settings, progress=progress, overwrite=overwrite, echo=lambda m: typer.echo(m, err=True)
    )
    typer.echo(markdown(summary, show_offline))
    typer.echo(f"results in {settings.out_dir}", err=True)


@app.command("list")
def list_benchmarks(
    data_dir: Path = typer.Option(None, "--data-dir", help="Folder holding hammer/."),
    benchmark_modules: list[str] = _modules_option(),
) -> None:
    """List the benchmarks, their sizes and whether their data is available here."""
    from toolr0.eval import registry
    from toolr0.eval.items import OFFLINE_BENCHMARKS

    _load_families(benchmark_modules)
    for name, bench in registry.benchmarks().items():
        _, where = bench.available(data_dir)
        size = bench.size if bench.size is not None else ""
        typer.echo(f"{name:24s} {size:>5}  {bench.display:22s} {where}")
    for name, display in OFFLINE_BENCHMARKS.items():
        typer.echo(f"{name:24s}     –  {display:22s} n/a (offline)")


@app.command("report")
def report(
    folder: Path = typer.Argument(..., help="An evaluation output folder."),
    rebuild: bool = typer.Option(
        False,
        "--rebuild",
        help="Re-summarise from items.jsonl first (a run stopped before it wrote its summary).",
    ),
    rescore: bool = typer.Option(
        False,
        "--rescore",
        help="Score the stored replies again with this version's scorer (no generation), then re-summarise. "
        "Rescore both folders of a comparison.",
    ),
    show_offline: bool = typer.Option(
        False,
        "--show-offline",
        help="Also list NexusRaven and SNIPS, the paper benchmarks not obtainable offline (n/a).",
    ),
    benchmark_modules: list[str] = _modules_option(),
) -> None:
    """Print the markdown report of a finished (or partial) evaluation folder."""
    from toolr0.eval.report import load_summary, markdown
    from toolr0.eval.runner import rebuild_summary, rescore_items

    _load_families(benchmark_modules)
    if rescore:
        n, changed = rescore_items(folder)
        typer.echo(f"rescored {n} stored replies: {changed} verdict(s) changed", err=True)
    typer.echo(markdown(rebuild_summary(folder) if rebuild or rescore else load_summary(folder), show_offline))


@app.command("compare")
def compare(
    a: str = typer.Argument(
        ...,
        help="Evaluation folder or summary.json of the baseline (A); several folders of one model "
        "comma-separated (e.g. its Hammer and BFCL runs) are compared, and paired, as one.",
    ),
    b: str = typer.Argument(..., help="Evaluation folder(s) or summary.json to compare (B), as for A."),
    json_out: bool = typer.Option(False, "--json", help="Print the comparison as JSON instead of markdown."),
    show_offline: bool = typer.Option(
        False,
        "--show-offline",
        help="Also list NexusRaven and SNIPS, the paper benchmarks not obtainable offline (n/a).",
    ),
    benchmark_modules: list[str] = _modules_option(),
) -> None:
    """Two results side by side: accuracy of A and B, delta in points and relative change; for evaluation
    folders also the paired counts on the items both scored and McNemar's exact p-value, per benchmark and
    pooled over all of them."""
    import json

    from toolr0.eval.paired import load_items, paired_markdown, paired_rows
    from toolr0.eval.report import compare_markdown, compare_rows, load_summary, merge_summaries

    _load_families(benchmark_modules)
    paths_a, paths_b = _folders(a), _folders(b)
    sa = merge_summaries([load_summary(p) for p in paths_a])
    sb = merge_summaries([load_summary(p) for p in paths_b])
    paired = paired_rows(
        [r for p in paths_a for r in load_items(p)], [r for p in paths_b for r in load_items(p)]
    )
    if json_out:
        typer.echo(json.dumps({"summary": compare_rows(sa, sb, show_offline), "paired": paired}, indent=2))
    else:
        name_a, name_b = _name(paths_a, "A"), _name(paths_b, "B")
        typer.echo(compare_markdown(sa, sb, name_a, name_b, show_offline))
        if paired:
            typer.echo(paired_markdown(paired, name_a, name_b))


def _folders(arg: str) -> list[Path]:
    """The comma-separated evaluation folders (or summary files) of one side of a comparison."""
    from toolr0.errors import ToolR0Error

    paths = [Path(x.strip()) for x in arg.split(",") if x.strip()]
    if not paths:
        raise ToolR0Error(f"no evaluation folder in {arg!r}")
    return paths


def _name(paths: list[Path], fallback: str) -> str:
    return "+".join(p.name or fallback for p in paths)
