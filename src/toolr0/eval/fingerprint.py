"""The setting an evaluation folder is tied to: its fingerprint, checked before any row is reused.

Greedy rows of different settings must not be mixed on resume, so ``eval_config.json`` records the keys of
:data:`FINGERPRINT_KEYS` and a folder written under other values is refused (or emptied with ``--overwrite``).
``prompt_sha256`` hashes what the model actually reads: the Solver conversation for a fixed two-tool sample
menu (system text, user-message template, how a menu is rendered: ``schema.tools_json`` in the reference
format, ``native.openai_tools`` in the native one) and, when a tokenizer is at hand for model predictions,
that conversation rendered through the model's chat template (``inference.hf.render_prompt``). Editing a
prompt file, the menu rendering or swapping the chat template changes it. Oracle predictions have no
tokenizer: their hash covers the messages only.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from toolr0.core.schema import Tool
from toolr0.core.solver_format import SolverFormat
from toolr0.errors import ToolR0Error
from toolr0.eval.items import ITEMS_FILE

# Settings that change what a row means; an output folder refuses rows produced under different ones.
FINGERPRINT_KEYS = (
    "model",
    "predictions",
    "max_new_tokens",
    "prompt_variant",
    "adapter",
    "adapter_merged",
    "dtype",
    "solver_format",
    "prompt_sha256",
    "matmul",
)
# Keys added after folders were already written without them: absent from an older folder, they are not checked.
FINGERPRINT_KEYS_ADDED_LATER = ("dtype", "solver_format", "prompt_sha256", "matmul")

# The menu the prompt hash renders: two tools, required and optional parameters of several types.
SAMPLE_QUESTION = "{question}"
SAMPLE_MENU = (
    Tool(
        "get_weather",
        "Current weather of a city.",
        {
            "city": {"type": "string", "description": "City name"},
            "unit": {
                "type": "string",
                "description": "celsius or fahrenheit",
                "enum": ["celsius", "fahrenheit"],
            },
        },
        ["city"],
    ),
    Tool(
        "convert_currency",
        "Convert an amount between currencies.",
        {
            "amount": {"type": "number", "description": "How much"},
            "to": {"type": "string", "description": "Target currency code"},
            "round": {"type": "boolean", "description": "Round to cents"},
        },
        ["amount", "to"],
    ),
)


def prompt_sha256(fmt: SolverFormat, tokenizer: Any | None = None) -> str:
    """Hash of the prompt a format sends for the sample menu, rendered through ``tokenizer``'s chat template
    when one is given (model predictions)."""
    messages = fmt.messages(SAMPLE_QUESTION, list(SAMPLE_MENU))
    probe: dict[str, Any] = {"messages": messages}
    if tokenizer is not None:
        from toolr0.inference.hf import render_prompt

        probe["rendered"] = render_prompt(tokenizer, messages)
    return hashlib.sha256(json.dumps(probe, sort_keys=True).encode("utf-8")).hexdigest()[:16]


def prompt_tokenizer(sampler: Any | None, model_path: str) -> Any | None:
    """The tokenizer the model reads its prompts through: the sampler's (None for one without), else loaded
    from the model folder (tokenizer files only: an adapter folder's own, else its base's)."""
    if sampler is not None:
        return getattr(sampler, "tokenizer", None)
    from transformers import AutoTokenizer

    from toolr0.inference.models import model_sources, resolve_model

    path = model_sources(resolve_model(model_path))[2]
    return AutoTokenizer.from_pretrained(path)


def check_fingerprint(out: Path, fingerprint: dict[str, Any], overwrite: bool) -> None:
    """Refuse ``out`` when it holds rows of another setting (one line naming what differs); with ``overwrite``,
    drop those rows instead."""
    cfg = out / "eval_config.json"
    if not cfg.exists():
        return
    try:
        old = json.loads(cfg.read_text(encoding="utf-8")).get("fingerprint", {})
    except (OSError, ValueError):
        old = {}
    unrecorded = {k for k in FINGERPRINT_KEYS_ADDED_LATER if k not in old}
    diff = [k for k in FINGERPRINT_KEYS if k not in unrecorded and old.get(k) != fingerprint.get(k)]
    if diff and not overwrite:
        what = ", ".join(f"{k}: {old.get(k)!r} -> {fingerprint.get(k)!r}" for k in diff)
        raise ToolR0Error(
            f"{out} holds results of a different setting ({what}); use another --out or --overwrite"
        )
    if diff and overwrite:
        (out / ITEMS_FILE).unlink(missing_ok=True)
