"""BFCL adapter: official ``ast_checker`` of ``bfcl-eval==2026.3.23`` (optional extra, spec §12.2).

Install with ``scripts/install_bfcl.sh`` (minimal ``--no-deps`` set). Before the first import we point
``BFCL_PROJECT_ROOT`` at a scratch folder (the import creates ``result/``, ``score/`` and ``.file_locks/`` there)
and register a one-module stand-in for ``bfcl_eval.constants.model_config`` (the real one imports every API
client); the checker only reads ``MODEL_CONFIG_MAPPING[name].underscore_to_dot``. No checker logic changes.

The model is prompted with our Solver prompt (BFCL docs normalised by :func:`schema.normalise_tool`) and answers
in our format; our calls become ``[{name: arguments}]`` for the checker. Irrelevance is correct when no call is
decoded (no answer block, unparseable, or ``[]``), relevance when some call is (BFCL's own rule).
"""

from __future__ import annotations

import copy
import os
import sys
import tempfile
import types
from pathlib import Path
from typing import Any

from toolr0.core.completions import parse_solver_output
from toolr0.core.native import parse_native_output
from toolr0.core.prompts import render_conversation
from toolr0.core.schema import ToolCall, normalise_tools
from toolr0.core.solver_format import DEFAULT_SOLVER_FORMAT
from toolr0.errors import ToolR0Error
from toolr0.eval.items import EvalItem
from toolr0.eval.scoring import Verdict, diagnose, format_reason, prf

BFCL_VERSION = "2026.3.23"
CHECKER_MODEL_NAME = "toolr0"  # our key in the stand-in MODEL_CONFIG_MAPPING (no "_": BFCL maps "_" to "/")
INSTALL_HINT = (
    "bfcl-eval is not installed; run scripts/install_bfcl.sh (pip install --no-deps bfcl-eval==2026.3.23 ...)"
)

# category -> kind. Java/JavaScript simple categories need language-specific prompting and are not run.
NON_LIVE = {
    "simple_python": "ast",
    "multiple": "ast",
    "parallel": "ast",
    "parallel_multiple": "ast",
    "irrelevance": "irrelevance",
}
LIVE = {
    "live_simple": "ast",
    "live_multiple": "ast",
    "live_parallel": "ast",
    "live_parallel_multiple": "ast",
    "live_irrelevance": "irrelevance",
    "live_relevance": "relevance",
}
CATEGORIES = {**NON_LIVE, **LIVE}
PREFIX = "bfcl_"  # benchmark names are bfcl_<category>

_ERROR_REASONS = {
    "wrong_func_name": "wrong_name",
    "missing_required": "missing_arg",
    "missing_optional": "missing_arg",
    "unexpected_param": "extra_arg",
    "wrong_count": "wrong_count",
}

_bfcl: dict[str, Any] = {}


def is_available() -> bool:
    """Whether ``bfcl_eval`` can be imported (without importing it)."""
    import importlib.util

    return importlib.util.find_spec("bfcl_eval") is not None


def _register_model_config_standin() -> None:
    name = "bfcl_eval.constants.model_config"
    cfg = types.SimpleNamespace(underscore_to_dot=False, display_name="toolr0")
    mod = sys.modules.get(name)
    if mod is None:
        mod = types.ModuleType(name)
        mod.__doc__ = (
            "toolr0 stand-in: the AST checker only reads MODEL_CONFIG_MAPPING[name].underscore_to_dot."
        )
        mod.MODEL_CONFIG_MAPPING = {}
        sys.modules[name] = mod
    mod.MODEL_CONFIG_MAPPING.setdefault(CHECKER_MODEL_NAME, cfg)


def load_bfcl_modules() -> dict[str, Any]:
    """Import the checker and loaders once (scratch project root, stand-in registered first)."""
    if _bfcl:
        return _bfcl
    if not is_available():
        raise ToolR0Error(INSTALL_HINT)
    if "bfcl_eval.constants.eval_config" not in sys.modules:
        root = os.environ.get("BFCL_PROJECT_ROOT") or str(
            Path(tempfile.gettempdir()) / f"toolr0_bfcl_{os.getuid()}"
        )
        Path(root).mkdir(parents=True, exist_ok=True)
        os.environ["BFCL_PROJECT_ROOT"] = root
    _register_model_config_standin()
    try:
        from bfcl_eval.constants.enums import Language
        from bfcl_eval.eval_checker.ast_eval.ast_checker import ast_checker
        from bfcl_eval.utils import (
            is_function_calling_format_output,
            load_dataset_entry,
            load_ground_truth_entry,
        )
    except ImportError as exc:  # pragma: no cover - broken install
        raise ToolR0Error(f"bfcl-eval import failed ({exc}); {INSTALL_HINT}") from None
    _bfcl.update(
        ast_checker=ast_checker,
        Language=Language,
        load_dataset_entry=load_dataset_entry,
        load_ground_truth_entry=load_ground_truth_entry,
        is_function_calling_format_output=is_function_calling_format_output,
    )
    return _bfcl


def category_of(benchmark: str) -> str:
    cat = benchmark[len(PREFIX) :] if benchmark.startswith(PREFIX) else benchmark
    if cat not in CATEGORIES:
        raise ToolR0Error(f"unknown BFCL category {cat!r} (known: {', '.join(CATEGORIES)})")
    return cat


def _concrete_nested(value: Any) -> Any:
    """A dict-typed allowed value (or a list of them): its keys map to allowed lists one level down (BFCL's
    ``dict_checker`` does not recurse further); take the first non-omitted value of each."""
    if isinstance(value, dict):
        out = {}
        for k, allowed in value.items():
            if isinstance(allowed, list):
                vals = [a for a in allowed if a != ""]
                if vals:
                    out[k] = vals[0]
            else:
                out[k] = allowed
        return out
    if isinstance(value, list) and value and all(isinstance(x, dict) for x in value):
        return [_concrete_nested(x) for x in value]
    return value


def _gold_value(allowed: Any, required: bool) -> tuple[bool, Any]:
    """(present, value) for one parameter's allowed list: an optional parameter that may be omitted ("" allowed)
    is left out; otherwise the first allowed value that is not "" (none left: omitted)."""
    if not isinstance(allowed, list):
        return True, allowed
    if not required and "" in allowed:
        return False, None
    vals = [a for a in allowed if a != ""]
    if not vals:
        return False, None
    return True, _concrete_nested(vals[0])


def possible_answer_to_calls(
    possible: list[dict[str, dict[str, list[Any]]]], functions: list[dict[str, Any]] | None = None
) -> list[ToolCall]:
    """BFCL gold ``[{f: {p: [allowed]}}]`` → one concrete prediction (the gold sweep and our P/R/F1 reference).

    Required parameters (from ``functions``) get their first allowed non-"" value; optional ones are omitted when
    BFCL allows omitting them, else get their first allowed value.
    """
    req = {
        f.get("name"): set(f.get("parameters", {}).get("required", []) or [])
        for f in functions or []
        if isinstance(f, dict)
    }
    calls = []
    for entry in possible or []:
        for fname, params in entry.items():
            args = {}
            for p, allowed in (params or {}).items():
                present, val = _gold_value(allowed, p in req.get(fname, set()))
                if present:
                    args[p] = val
            calls.append(ToolCall(fname, args))
    return calls


def render_question(turns: list[dict[str, Any]]) -> str:
    """A lone user message as its text; anything longer (system prompt, earlier turns) as a conversation."""
    if len(turns) == 1 and turns[0].get("role") == "user":
        return str(turns[0].get("content", "")).strip()
    return render_conversation(turns)


def load_bfcl(benchmark: str) -> list[EvalItem]:
    """Load one BFCL category (``bfcl_<category>``) as :class:`EvalItem` objects."""
    cat = category_of(benchmark)
    kind = CATEGORIES[cat]
    m = load_bfcl_modules()
    prompt_entries = m["load_dataset_entry"](cat)  # with language hints: for prompting
    check_entries = {
        e["id"]: e
        for e in m["load_dataset_entry"](cat, include_prereq=False, include_language_specific_hint=False)
    }
    gold_entries = (
        {e["id"]: e["ground_truth"] for e in m["load_ground_truth_entry"](cat)} if kind == "ast" else {}
    )
    items = []
    for i, e in enumerate(prompt_entries):
        possible = gold_entries.get(e["id"])
        turns = e["question"][0] if e.get("question") else []
        items.append(
            EvalItem(
                id=f"{PREFIX}{cat}/{e['id']}",
                benchmark=f"{PREFIX}{cat}",
                index=i,
                question=render_question(turns),
                tools=normalise_tools(e.get("function", [])),
                gold=possible_answer_to_calls(possible, check_entries[e["id"]]["function"])
                if possible
                else [],
                meta={
                    "bfcl_id": e["id"],
                    "category": cat,
                    "kind": kind,
                    "functions": check_entries[e["id"]]["function"],
                    "possible_answer": possible,
                },
            )
        )
    return items


def check_calls(item: EvalItem, calls: list[ToolCall]) -> dict[str, Any]:
    """Run the official checker (ast categories) or BFCL's relevance rule on our calls."""
    kind = item.meta["kind"]
    if kind == "irrelevance":
        ok = not calls
        return {
            "valid": ok,
            "error": [] if ok else ["a call was decoded"],
            "error_type": "" if ok else "irrelevance_error:decoder_success",
        }
    if kind == "relevance":
        ok = bool(calls)
        return {
            "valid": ok,
            "error": [] if ok else ["no call decoded"],
            "error_type": "" if ok else "relevance_error:decoder_failed",
        }
    m = load_bfcl_modules()
    model_output = [{c.name: dict(c.arguments)} for c in calls]
    if not m["is_function_calling_format_output"](model_output):
        return {
            "valid": False,
            "error": ["wrong output format"],
            "error_type": "ast_decoder:decoder_wrong_output_format",
        }
    try:
        return m["ast_checker"](
            copy.deepcopy(item.meta["functions"]),
            model_output,
            copy.deepcopy(item.meta["possible_answer"]),
            m["Language"].PYTHON,
            item.meta["category"],
            CHECKER_MODEL_NAME,
        )
    except Exception as exc:  # noqa: BLE001 - a checker crash on odd output counts as wrong
        return {
            "valid": False,
            "error": [f"checker raised {type(exc).__name__}: {exc}"],
            "error_type": "checker_error",
        }


def _reason(item: EvalItem, calls: list[ToolCall], error_type: str) -> str:
    if item.meta["kind"] == "irrelevance":
        return "unexpected_call"
    if item.meta["kind"] == "relevance" or not calls:
        return "no_call"
    suffix = error_type.split(":")[-1]
    if suffix in _ERROR_REASONS:
        return _ERROR_REASONS[suffix]
    if error_type.startswith(("type_error", "value_error")):
        return "wrong_value"
    reason, _ = diagnose(calls, item.gold)  # e.g. parallel "cannot_find_match": explain against the gold
    return reason if reason != "ok" else "wrong_args"


def score_bfcl(item: EvalItem, text: str, solver_format: str = DEFAULT_SOLVER_FORMAT) -> Verdict:
    """Verdict for one completion on a BFCL item; the ``correct`` bit is the official checker's. In the native
    format the calls are read however they were wrapped; ``strict_correct`` checks the template's blocks only."""
    if solver_format == "native":
        return _score_bfcl_native(item, text)
    p = parse_solver_output(text)
    metrics = prf(p.calls, item.gold)
    fmt = format_reason(text, p)
    calls = [] if fmt else list(p.calls)
    res = check_calls(item, calls)
    if res["valid"]:
        return Verdict(True, "ok", "", calls, metrics, True)
    if fmt and item.meta["kind"] == "ast":
        return Verdict(False, fmt, p.reason, calls, metrics, False)
    detail = res.get("error_type", "")
    errs = res.get("error") or []
    if errs:
        detail += f": {str(errs[0])[:300]}"
    return Verdict(False, _reason(item, calls, res.get("error_type", "")), detail, calls, metrics, False)


def _score_bfcl_native(item: EvalItem, text: str) -> Verdict:
    p = parse_native_output(text)
    metrics = prf(p.calls, item.gold)
    calls = list(p.calls) if p.parsed else []
    clean = not p.malformed_blocks and not p.unclosed
    strict_ok = clean and bool(check_calls(item, list(p.strict_calls))["valid"])
    res = check_calls(item, calls)
    if res["valid"]:
        return Verdict(True, "ok", p.reason if p.reason != "ok" else "", calls, metrics, True, strict_ok)
    if not p.parsed and item.meta["kind"] == "ast":
        return Verdict(
            False, "unclosed" if p.unclosed else "unparseable", p.reason, [], metrics, False, False
        )
    detail = res.get("error_type", "")
    errs = res.get("error") or []
    if errs:
        detail += f": {str(errs[0])[:300]}"
    reason = _reason(item, calls, res.get("error_type", ""))
    return Verdict(False, reason, detail, calls, metrics, False, strict_ok)
