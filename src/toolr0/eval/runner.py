"""Evaluation runner: prompt with the Solver prompt, decode greedily in batches, score, write per-item rows.

Resumable: every scored chunk is appended (fsync) to ``<out>/items.jsonl``; items already there are not redone.
An output folder is tied to one setting (model, prediction mode, decoding, the prompt the model reads; see
:mod:`toolr0.eval.fingerprint`): reusing it with another raises a clear error instead of mixing results.
``--predictions gold|corrupt`` replaces the model by the gold answers (or their deterministic corruptions) to
check the harness itself.

Layout: ``<out>/eval_config.json`` (setting, resolved model), ``items.jsonl`` (one row per item),
``summary.json`` and ``summary.md`` (see :mod:`toolr0.eval.report`).
"""

from __future__ import annotations

import json
import logging
import platform
import re
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

from toolr0.core.solver_format import DEFAULT_SOLVER_FORMAT, SolverFormat
from toolr0.errors import ToolR0Error
from toolr0.eval import registry
from toolr0.eval.corrupt import solver_text
from toolr0.eval.fingerprint import check_fingerprint, prompt_sha256, prompt_tokenizer
from toolr0.eval.items import ITEMS_FILE, EvalItem, load_rows, repair_items_file, select_subset
from toolr0.eval.scoring import Verdict
from toolr0.eval.target import resolve_eval_model
from toolr0.io import append_jsonl, atomic_write_json

log = logging.getLogger(__name__)

PredictionMode = Literal["model", "gold", "corrupt"]


@dataclass
class EvalSettings:
    """One evaluation: which model, which benchmarks, how many items, how to decode."""

    model: str = "default"
    benchmarks: list[str] = field(default_factory=lambda: ["hammer", "bfcl"])
    out_dir: str = "runs/eval"
    limit: int | None = None
    seed: int = 0
    predictions: PredictionMode = "model"
    data_dir: str | None = None
    batch_size: int = 8
    max_new_tokens: int = 1024
    dtype: str = "auto"
    threads: int | None = None
    device: str = "auto"  # toolr0.inference.device: auto = CUDA when present, else CPU
    cpu_matmul: str = "auto"  # toolr0.inference.cpu_matmul: auto | onednn | default | int8 (fp32 CPU only)
    prompt_variant: str = "reference"
    solver_format: str = DEFAULT_SOLVER_FORMAT  # reference (spec §7.1 prompt) | native (chat template with tools=)
    reason_first: bool = False  # native only: a short <think> before the calls
    adapter: str | None = (
        None  # named adapter inside a PEFT model (resolved automatically for adapter folders)
    )
    merge_adapter: bool = True  # fold a LoRA adapter folder into its base for evaluation (faster)


# ------------------------------------------------------------------------------------------ benchmarks
def expand_benchmarks(names: list[str], skip_missing_bfcl: bool = False) -> tuple[list[str], list[str]]:
    """Expand group names (hammer, bfcl, bfcl_live, all) and check names; returns (benchmarks, notes). A
    benchmark whose optional engine is missing (BFCL) is skipped with a note when ``skip_missing_bfcl``."""
    return registry.expand(names, skip_unavailable=skip_missing_bfcl)


def load_benchmark(name: str, data_dir: str | None = None) -> list[EvalItem]:
    return registry.get(name).load(data_dir)


def select_items(
    benchmarks: list[str], data_dir: str | None, limit: int | None, seed: int
) -> tuple[dict[str, list[EvalItem]], dict[str, int]]:
    """Per benchmark: the seeded subset to score, and the benchmark's full size (for "n of total")."""
    selected: dict[str, list[EvalItem]] = {}
    totals: dict[str, int] = {}
    for b in benchmarks:
        items = load_benchmark(b, data_dir)
        totals[b] = len(items)
        selected[b] = select_subset(items, limit, seed)
    return selected, totals


def scored_rows(
    selected: dict[str, list[EvalItem]], rows: dict[str, dict[str, Any]]
) -> dict[str, list[dict[str, Any]]]:
    """Per benchmark: the rows of its selected items already scored, in subset order."""
    return {b: [rows[it.id] for it in items if it.id in rows] for b, items in selected.items()}


def score_item(item: EvalItem, text: str, solver_format: str = DEFAULT_SOLVER_FORMAT) -> Verdict:
    return registry.get(item.benchmark).score(item, text, solver_format)


def eval_solver_format(settings: EvalSettings) -> SolverFormat:
    return SolverFormat(settings.solver_format, settings.prompt_variant, settings.reason_first)


# --------------------------------------------------------------------------------------------- models
def merges_adapter(settings: EvalSettings, model_path: str) -> bool:
    """Whether this evaluation folds a LoRA adapter folder into its base (no named --adapter requested)."""
    return (
        settings.merge_adapter
        and settings.adapter is None
        and (Path(model_path).expanduser() / "adapter_config.json").is_file()
    )


def build_sampler(settings: EvalSettings, model_path: str) -> tuple[Any, str | None]:
    """(sampler, adapter name to generate with); a LoRA adapter folder is merged into its base (default) or
    served through its adapter."""
    from toolr0.inference.hf import HFSampler
    from toolr0.inference.models import is_adapter_dir, resolve_model

    merge = merges_adapter(settings, model_path)
    sampler = HFSampler.from_pretrained(
        model_path,
        dtype=settings.dtype,
        threads=settings.threads,
        device=settings.device,
        cpu_matmul=settings.cpu_matmul,
        batch_size=settings.batch_size,
        merge_adapter=merge,
    )
    adapter = settings.adapter
    if adapter is None and not merge and is_adapter_dir(resolve_model(model_path, fetch=False)):
        adapter = "default"  # load_model's adapter name; None would disable the adapter
    return sampler, adapter


# -------------------------------------------------------------------------------------------- outputs
def _slug(s: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", s).strip("_")[:80] or "model"


def matmul_kernel(sampler: Any | None) -> str | None:
    """'int8', 'onednn' or 'default': how the model's gradient-free CPU matmuls run (``inference.cpu_matmul``);
    None without a loaded model."""
    from toolr0.inference import cpu_matmul

    return cpu_matmul.kernel(getattr(sampler, "model", None))


def requested_int8(settings: EvalSettings) -> str | None:
    return "int8" if settings.cpu_matmul == "int8" else None


def weights_dtype(settings: EvalSettings, sampler: Any | None) -> str | None:
    """The dtype the model generates in ("bfloat16", "float32", ...): greedy outputs differ between them, so
    it is part of the fingerprint (``dtype: auto`` resolves per machine). None for oracle predictions."""
    if settings.predictions != "model":
        return None
    dtype = getattr(getattr(sampler, "model", None), "dtype", None)
    if dtype is None:
        from toolr0.inference.device import resolve_device
        from toolr0.inference.models import select_dtype

        dtype = select_dtype(settings.dtype, resolve_device(settings.device))
    return str(dtype).removeprefix("torch.")


StoredEval = tuple[dict[str, Any], dict[str, Any], dict[str, list[EvalItem]], dict[str, int]]


def _stored_eval(out: Path) -> StoredEval:
    """(eval_config.json, its settings, the seeded items it selected, benchmark sizes) of an evaluation folder."""
    cfg_path = out / "eval_config.json"
    if not cfg_path.is_file():
        raise ToolR0Error(f"{out}: no eval_config.json (not an evaluation folder)")
    try:
        cfg = json.loads(cfg_path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ToolR0Error(f"{cfg_path}: unreadable ({exc})") from None
    s = cfg.get("settings") or {}
    selected, totals = select_items(
        list(cfg.get("benchmarks") or []), s.get("data_dir"), s.get("limit"), int(s.get("seed", 0))
    )
    return cfg, s, selected, totals


def rescore_items(out: str | Path) -> tuple[int, int]:
    """Score every stored reply of an evaluation folder again with this code's scorer (same raw outputs, no
    generation), rewriting ``items.jsonl`` atomically; returns (rows rescored, rows whose verdict changed).
    For when the reader of replies improves: both folders of a paired comparison should be rescored alike."""
    from toolr0.io import atomic_write_jsonl

    out = Path(out)
    _, s, selected, _ = _stored_eval(out)
    items = {it.id: it for b in selected.values() for it in b}
    rows = list(load_rows(out).values())
    changed = 0
    new_rows = []
    for row in rows:
        item = items.get(row.get("id"))
        if item is None:
            new_rows.append(row)
            continue
        v = score_item(item, row.get("raw_output") or "", s.get("solver_format") or "reference")
        keep = {k: row[k] for k in ("completion_tokens", "finish_reason", "seconds") if k in row}
        fresh = _row(item, row.get("messages") or [], row.get("raw_output") or "", v, keep)
        changed += (fresh["correct"], fresh["reason"]) != (row.get("correct"), row.get("reason"))
        new_rows.append(fresh)
    atomic_write_jsonl(out / ITEMS_FILE, new_rows)
    return len(new_rows), changed


def rebuild_summary(out: str | Path) -> dict[str, Any]:
    """Re-summarise an evaluation folder from ``eval_config.json`` and ``items.jsonl`` alone, e.g. after a run was
    stopped before its end: only items already scored count (the tables show n of the benchmark's total)."""
    from toolr0.eval.report import summarise, write_summary

    out = Path(out)
    cfg, s, selected, totals = _stored_eval(out)
    chosen = scored_rows(selected, load_rows(out))
    meta = {
        k: s.get(k) for k in ("model", "predictions", "limit", "seed", "max_new_tokens", "prompt_variant")
    }
    fingerprint = cfg.get("fingerprint") or {}
    meta.update(
        model_resolved=fingerprint.get("model"),
        dtype=fingerprint.get("dtype"),
        matmul=fingerprint.get("matmul"),
        decoding="greedy",
        rebuilt_from_items=True,
        solver_format=SolverFormat(
            s.get("solver_format") or "reference",
            s.get("prompt_variant") or "reference",
            bool(s.get("reason_first")),
        ).describe(),
    )
    summary = summarise(chosen, totals=totals, meta=meta)
    write_summary(out, summary)
    return summary


def _row(
    item: EvalItem, messages: list[dict[str, Any]], text: str, v: Verdict, extra: dict[str, Any]
) -> dict:
    return {
        "id": item.id,
        "benchmark": item.benchmark,
        "index": item.index,
        "messages": messages,
        "raw_output": text,
        "parsed_calls": [c.to_dict() for c in v.pred],
        "gold": [c.to_dict() for c in item.gold],
        "correct": v.correct,
        "reason": v.reason,
        "detail": v.detail,
        "lenient_correct": v.lenient_correct,
        "strict_correct": v.strict_correct,
        "metrics": v.metrics,
        **extra,
    }


# ------------------------------------------------------------------------------------------ predictions
def oracle_prediction(
    item: EvalItem, mode: PredictionMode, fmt: SolverFormat | None = None
) -> tuple[str, dict[str, Any]]:
    """The raw text standing in for the model in gold/corrupt mode (in the Solver's format), plus row extras."""
    calls, extra = registry.get(item.benchmark).oracle_calls(item, mode)
    render = fmt.render_calls if fmt is not None and fmt.native else solver_text
    return render(calls), extra


# ---------------------------------------------------------------------------------------------- main
def run_eval(
    settings: EvalSettings,
    sampler: Any | None = None,
    progress: bool = True,
    overwrite: bool = False,
    echo: Any = None,
) -> dict[str, Any]:
    """Run (or resume) one evaluation and write its summary; returns the summary dict."""
    from tqdm.auto import tqdm

    from toolr0.eval.report import summarise, write_summary

    echo = echo or (lambda msg: log.info(msg))
    t_start = time.perf_counter()
    benchmarks, notes = expand_benchmarks(
        settings.benchmarks, skip_missing_bfcl=settings.benchmarks == ["hammer", "bfcl"]
    )
    out = Path(settings.out_dir)
    model_path = resolve_eval_model(settings.model) if settings.predictions == "model" else "(oracle)"
    fmt = eval_solver_format(settings)
    # the chat template is part of what the model reads: hashed with the prompt (model predictions only)
    tokenizer = prompt_tokenizer(sampler, model_path) if settings.predictions == "model" else None
    fingerprint = {
        "model": model_path if settings.predictions == "model" else f"oracle:{settings.predictions}",
        "predictions": settings.predictions,
        "max_new_tokens": settings.max_new_tokens if settings.predictions == "model" else None,
        "prompt_variant": settings.prompt_variant,
        "solver_format": settings.solver_format + ("+reason_first" if settings.reason_first else ""),
        "prompt_sha256": prompt_sha256(fmt, tokenizer),
        "adapter": settings.adapter,
        # merged weights round differently from base + adapter: rows of the two are not mixed
        "adapter_merged": True
        if settings.predictions == "model" and merges_adapter(settings, model_path)
        else None,
        "dtype": weights_dtype(settings, sampler),
        # oneDNN and the default BLAS round fp32 decode matmuls differently; int8 changes answers. Before the
        # model is loaded only the request is known: int8 is recorded from it (fp32 kernels as before)
        "matmul": (matmul_kernel(sampler) if sampler is not None else requested_int8(settings))
        if settings.predictions == "model"
        else None,
    }
    out.mkdir(parents=True, exist_ok=True)
    check_fingerprint(out, fingerprint, overwrite)

    selected, totals = select_items(benchmarks, settings.data_dir, settings.limit, settings.seed)
    repair_items_file(out / ITEMS_FILE)
    done = load_rows(out)
    pending = [it for b in benchmarks for it in selected[b] if it.id not in done]
    n_sel = sum(len(v) for v in selected.values())
    echo(
        f"{n_sel} item(s) selected over {len(benchmarks)} benchmark(s); {n_sel - len(pending)} already scored"
    )

    atomic_write_json(
        out / "eval_config.json",
        {
            "fingerprint": fingerprint,
            "settings": asdict(settings),
            "benchmarks": benchmarks,
            "model_requested": settings.model,
            "python": platform.python_version(),
            "engines": registry.engine_versions(benchmarks),  # e.g. {"bfcl": bfcl-eval's version}
        },
    )

    adapter = settings.adapter
    messages_of = {it.id: fmt.messages(it.question, it.tools) for it in pending}
    if pending and settings.predictions == "model" and sampler is None:
        echo(f"loading model {model_path}")
        sampler, adapter = build_sampler(settings, model_path)
    gen_seconds = 0.0
    if pending:
        from toolr0.inference.base import SamplingParams

        params = SamplingParams(
            n=1,
            temperature=0.0,
            top_p=1.0,
            max_new_tokens=settings.max_new_tokens,
            stop=fmt.stop,
            seed=settings.seed,
        )
        # similar prompt lengths in one batch: less padding
        pending.sort(key=lambda it: len(json.dumps(messages_of[it.id], ensure_ascii=False)))
        chunk = max(1, settings.batch_size)
        bar = tqdm(total=len(pending), desc="eval", unit="item", disable=not progress)
        try:
            for start in range(0, len(pending), chunk):
                batch = pending[start : start + chunk]
                t0 = time.perf_counter()
                extras: list[dict[str, Any]]
                if settings.predictions == "model":
                    texts, extras = _generate(sampler, [messages_of[it.id] for it in batch], params, adapter)
                else:
                    pairs = [oracle_prediction(it, settings.predictions, fmt) for it in batch]
                    texts, extras = [p[0] for p in pairs], [p[1] for p in pairs]
                dt = time.perf_counter() - t0
                gen_seconds += dt
                rows = []
                for it, text, extra in zip(batch, texts, extras, strict=True):
                    v = score_item(it, text, settings.solver_format)
                    extra = {**extra, "seconds": round(dt / len(batch), 3)}
                    rows.append(_row(it, messages_of[it.id], text, v, extra))
                append_jsonl(out / ITEMS_FILE, rows)
                bar.update(len(batch))
                bar.set_postfix(acc=f"{sum(r['correct'] for r in rows)}/{len(rows)}")
        finally:
            bar.close()

    chosen = scored_rows(selected, load_rows(out))
    summary = summarise(
        chosen,
        totals=totals,
        meta={
            "model": settings.model,
            "model_resolved": fingerprint["model"],
            "predictions": settings.predictions,
            "limit": settings.limit,
            "seed": settings.seed,
            "max_new_tokens": settings.max_new_tokens,
            "decoding": "greedy",
            "dtype": fingerprint["dtype"],
            "matmul": fingerprint.get("matmul"),
            "prompt_variant": settings.prompt_variant,
            "solver_format": fmt.describe(),
            "wall_seconds_this_run": round(time.perf_counter() - t_start, 1),
            "generation_seconds_this_run": round(gen_seconds, 1),
            "notes": notes,
        },
    )
    write_summary(out, summary)
    return summary


def _generate(
    sampler: Any, prompts: list[list[dict[str, Any]]], params: Any, adapter: str | None
) -> tuple[list[str], list[dict[str, Any]]]:
    if hasattr(sampler, "generate_detailed"):
        res = sampler.generate_detailed(prompts, params, adapter=adapter)
        comps = [row[0] for row in res.completions]
        return [c.text for c in comps], [
            {"completion_tokens": c.completion_tokens, "finish_reason": c.finish_reason} for c in comps
        ]
    texts = [row[0] for row in sampler.generate(prompts, params, adapter=adapter)]
    return texts, [{} for _ in texts]


def default_out_dir(model: str, predictions: str) -> str:
    tag = Path(model).name if Path(model).exists() else model
    return str(Path("runs") / "eval" / _slug(f"{tag}_{predictions}"))
