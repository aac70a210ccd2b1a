"""`toolr0 solve`: ask the Solver one question with a tool menu and print its parsed tool call(s)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer


def _load_tools(spec: str) -> list[Any]:
    from toolr0.errors import ToolR0Error

    path = Path(spec)
    if path.exists():
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as e:
            raise ToolR0Error(f"{path}: not valid JSON ({e.msg}, line {e.lineno})") from None
    elif spec.lstrip().startswith(("[", "{")):
        try:
            data = json.loads(spec)
        except json.JSONDecodeError as e:
            raise ToolR0Error(f"--tools: not valid JSON ({e.msg})") from None
    else:
        raise ToolR0Error(f"--tools: {spec} does not exist (pass a JSON file or an inline JSON list)")
    if isinstance(data, dict):
        data = data.get("tools", [data])
    if not isinstance(data, list) or not data:
        raise ToolR0Error("--tools: expected a non-empty JSON list of tools")
    return data


def solve(
    question: str = typer.Option(..., "--question", "-q", help="The user request."),
    tools: str = typer.Option(
        ..., "--tools", "-t", help="Tool menu: a JSON file or inline JSON list (any schema form)."
    ),
    model: str = typer.Option(
        "default", "--model", "-m", help='"default", a folder, an adapter folder, or a cached HF id.'
    ),
    raw: bool = typer.Option(False, "--raw", help="Also print the raw completion."),
    temperature: float = typer.Option(0.0, help="0 = greedy."),
    max_new_tokens: int = typer.Option(512, help="Generation limit."),
    seed: int = typer.Option(0, help="Sampling seed."),
    dtype: str = typer.Option("auto", help="auto | bf16 | fp32."),
    device: str = typer.Option("auto", help="auto (CUDA when present, else CPU) | cpu | cuda:N."),
    backend: str = typer.Option("hf", help="hf (in-process) | openai (an OpenAI-compatible server) | vllm."),
    base_url: str = typer.Option("http://127.0.0.1:8000/v1", help="openai backend: server URL."),
    allow_unclosed: bool = typer.Option(
        False, help="Accept a final <tool_call_answer> left unclosed at the end of generation."
    ),
    solver_format: str = typer.Option(
        None,
        "--solver-format",
        help="native: the model's own chat template with tools= (its <tool_call> reply); reference: the "
        "paper's <think>/<tool_call_answer> prompt (spec §7.1). Default: the config default "
        "(prompts.solver_format, reference); the small presets train in native.",
    ),
    reason_first: bool = typer.Option(
        False, "--reason-first", help="Native format: ask for a short <think> before the calls."
    ),
    prompt_variant: str = typer.Option(
        "reference",
        "--prompt-variant",
        help="Solver prompt variant (reference, compact, or a YAML path), as `toolr0 eval run --prompt-variant`: "
        "its solver section is every text the Solver is sent, in either format.",
    ),
) -> None:
    """Render the Solver prompt for QUESTION and TOOLS, sample one answer and print the parsed calls as JSON."""
    from toolr0.core.prompts import load_prompt_variant
    from toolr0.core.solver_format import DEFAULT_SOLVER_FORMAT, SOLVER_FORMATS, SolverFormat
    from toolr0.errors import ToolR0Error
    from toolr0.inference import build_sampler
    from toolr0.inference.base import SamplingParams
    from toolr0.inference.config import InferenceConfig, ModelConfig

    if dtype not in ("auto", "bf16", "fp32") or backend not in ("hf", "openai", "vllm"):
        raise ToolR0Error("--dtype must be auto|bf16|fp32 and --backend hf|openai|vllm")
    why = (
        "--solver-format"
        if solver_format
        else "the config default prompts.solver_format; --solver-format to choose"
    )
    solver_format = solver_format or DEFAULT_SOLVER_FORMAT
    if solver_format not in SOLVER_FORMATS:
        raise ToolR0Error(
            f"--solver-format must be one of {', '.join(SOLVER_FORMATS)}, not {solver_format!r}"
        )
    load_prompt_variant(prompt_variant)  # a bad name or file fails here, before any model is loaded
    fmt = SolverFormat(solver_format, prompt_variant, reason_first=reason_first)
    from toolr0.inference.device import check_device

    menu = _load_tools(tools)
    typer.echo(f"solver format: {solver_format}: {why}", err=True)
    sampler = build_sampler(
        ModelConfig(name=model, dtype=dtype, device=check_device(device)),
        InferenceConfig(backend=backend, base_url=base_url, batch_size=1),
    )
    params = SamplingParams(
        n=1, temperature=temperature, max_new_tokens=max_new_tokens, stop=fmt.stop, seed=seed
    )
    text = sampler.generate([fmt.messages(question, menu)], params)[0][0]
    parse = fmt.parse(text, allow_unclosed=allow_unclosed)
    if raw:
        typer.echo("--- raw completion ---")
        typer.echo(text)
        typer.echo("--- parsed tool calls ---")
    typer.echo(json.dumps([c.to_dict() for c in parse.calls], indent=2, ensure_ascii=False))
    if fmt.native and fmt.is_no_call(parse):
        typer.echo("the model made no tool call", err=True)
    elif not parse.calls and not fmt.is_no_call(parse):
        typer.echo(f"no tool call parsed ({parse.reason})", err=True)
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    app.command("solve", help="Ask the Solver one question with a tool menu; print the parsed tool call(s).")(
        solve
    )
