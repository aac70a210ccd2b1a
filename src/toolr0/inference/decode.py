"""The HF backend's decode loop: transformers' sampling loop, minus the rows that already finished.

``model.generate()`` decodes a static batch until its longest row ends, so every finished row still runs
through every layer (in evaluation batches of 8 only 56 % of the decoded row-steps were real tokens,
bench/RESULTS.md). This loop makes the same choices as ``generate()`` (same processors in the same order,
same softmax + multinomial, same pad for finished rows, same stop criteria) but runs the forward pass on the
unfinished rows only: a finished row is dropped from the KV cache and the batch.

The processors, the stop criteria and the random stream still see the full batch: finished rows are padded as
``generate()`` pads them, and the sampling draw is made over all rows, so a seeded call gives the same tokens
as ``generate()`` (``HFSampler(drop_finished=False)`` calls ``generate()`` itself; tests compare the two).
"""

from __future__ import annotations

import copy
from typing import Any

from toolr0.errors import ToolR0Error

#: generate() settings this loop does not reproduce: when one is set, callers use generate() itself.
_UNSUPPORTED = {
    "no_repeat_ngram_size": (None, 0),
    "bad_words_ids": (None,),
    "suppress_tokens": (None,),
    "begin_suppress_tokens": (None,),
    "min_new_tokens": (None, 0),
    "forced_bos_token_id": (None,),
    "forced_eos_token_id": (None,),
    "sequence_bias": (None,),
    "typical_p": (None, 1.0),
    "epsilon_cutoff": (None, 0.0),
    "eta_cutoff": (None, 0.0),
    "top_h": (None,),
    "num_beams": (None, 1),
    "guidance_scale": (None, 1.0),
    "renormalize_logits": (None, False),
    "exponential_decay_length_penalty": (None,),
    "encoder_repetition_penalty": (None, 1.0),
    "watermarking_config": (None,),
}


def generation_settings(model: Any, gen_kwargs: dict[str, Any], generation_config: Any = None) -> Any:
    """The GenerationConfig ``generate(generation_config, **gen_kwargs)`` would run with: the call's settings,
    then the model's generation config, then transformers' defaults."""
    from transformers import GenerationConfig

    skip = {"logits_processor", "stopping_criteria", "past_key_values", "use_cache"}
    kwargs = {k: v for k, v in gen_kwargs.items() if k not in skip}
    if hasattr(model, "_prepare_generation_config"):
        return model._prepare_generation_config(generation_config, **kwargs)[0]
    cfg = copy.deepcopy(generation_config or getattr(model, "generation_config", None) or GenerationConfig())
    cfg.update(**kwargs)  # pragma: no cover - a model without transformers' generation mixin
    return cfg


def sampling_processors(cfg: Any, custom: list[Any] | None) -> tuple[Any, bool] | None:
    """The logits processors ``generate()`` applies under ``cfg`` with the caller's ``custom`` ones, in its
    order (repetition penalty, the caller's processors, then temperature, top-k, top-p, min-p when sampling),
    and whether it samples. None when a setting outside this loop's reach is on (``_UNSUPPORTED``: beams,
    n-gram bans, suppressed tokens ...)."""
    from transformers import (
        LogitsProcessorList,
        MinPLogitsWarper,
        RepetitionPenaltyLogitsProcessor,
        TemperatureLogitsWarper,
        TopKLogitsWarper,
        TopPLogitsWarper,
    )

    if any(getattr(cfg, k, None) not in ok for k, ok in _UNSUPPORTED.items()):
        return None
    if (getattr(cfg, "min_length", None) or 0) > 0:
        return None
    procs = LogitsProcessorList()
    if cfg.repetition_penalty is not None and cfg.repetition_penalty != 1.0:
        procs.append(RepetitionPenaltyLogitsProcessor(penalty=cfg.repetition_penalty))
    procs.extend(custom or [])
    sample = bool(cfg.do_sample)
    if sample:
        if cfg.temperature is not None and cfg.temperature != 1.0:
            procs.append(TemperatureLogitsWarper(cfg.temperature))
        if cfg.top_k is not None and cfg.top_k != 0:
            procs.append(TopKLogitsWarper(top_k=cfg.top_k, min_tokens_to_keep=1))
        if cfg.top_p is not None and cfg.top_p < 1.0:
            procs.append(TopPLogitsWarper(top_p=cfg.top_p, min_tokens_to_keep=1))
        if cfg.min_p is not None:
            procs.append(MinPLogitsWarper(min_p=cfg.min_p, min_tokens_to_keep=1))
    return procs, sample


def decode(
    model: Any,
    input_ids: Any,
    attention_mask: Any,
    *,
    max_new_tokens: int,
    pad_id: int,
    eos_ids: set[int],
    processors: Any,
    sample: bool,
    stopping: list[Any] | None = None,
    cache: Any = None,
) -> tuple[Any, int]:
    """Decode up to ``max_new_tokens`` after ``input_ids`` (left-padded, ``attention_mask`` 1 on real tokens).

    ``cache`` may hold a prefill of all but the last prompt position (``HFSampler``'s shared prefix / prefill
    once); otherwise the whole prompt is prefilled here. Returns (sequences shaped like ``generate()``'s:
    prompt + generated tokens, finished rows padded, as many columns as steps run; the number of row-steps the
    forward passes computed)."""
    import torch

    from toolr0.inference.kv_cache import new_cache

    batch, width = input_ids.shape
    device = input_ids.device
    if cache is None:
        cache = new_cache(model)
    done_prefill = cache.get_seq_length()
    unfinished = torch.ones(batch, dtype=torch.bool, device=device)
    live = torch.arange(batch, device=device)  # rows still in the cache, in cache order
    eos = torch.tensor(sorted(eos_ids), dtype=torch.long, device=device) if eos_ids else None
    seqs, mask = input_ids, attention_mask
    feed = input_ids[:, done_prefill:]
    row_steps = 0
    for _ in range(max_new_tokens):
        m = mask[live]
        pos = (m.long().cumsum(-1) - 1).masked_fill(m == 0, 0)[:, -feed.shape[1] :]
        out = model(
            input_ids=feed,
            attention_mask=m,
            position_ids=pos,
            past_key_values=cache,
            use_cache=True,
            logits_to_keep=1,
        )
        row_steps += int(live.numel())
        if cache.get_seq_length() != mask.shape[1]:
            raise ToolR0Error("decode: the model did not extend the KV cache (use_cache off?)")
        logits = out.logits[:, -1].to(dtype=torch.float32)
        del out
        if live.numel() == batch:
            full = logits
        else:  # finished rows: their scores never matter (their token is the pad below)
            full = torch.zeros((batch, logits.shape[-1]), dtype=torch.float32, device=device)
            full[live] = logits
        scores = processors(seqs, full)
        if sample:
            nxt = torch.multinomial(torch.nn.functional.softmax(scores, dim=-1), num_samples=1).squeeze(1)
        else:
            nxt = torch.argmax(scores, dim=-1)
        nxt = torch.where(unfinished, nxt, torch.full_like(nxt, pad_id))
        seqs = torch.cat([seqs, nxt[:, None]], dim=-1)
        mask = torch.cat([mask, mask.new_ones((batch, 1))], dim=-1)
        ended = torch.zeros_like(unfinished)
        if eos is not None:
            ended |= torch.isin(nxt, eos)
        for crit in stopping or []:
            ended |= crit(seqs, scores).to(device)
        unfinished &= ~ended
        if not bool(unfinished.any()):
            break
        keep = unfinished[live]
        if not bool(keep.all()):
            cache.batch_select_indices(keep.nonzero().flatten())
            live = live[keep]
        feed = seqs[live, -1:]
    return seqs, row_steps


def generate_dropping(
    model: Any,
    input_ids: Any,
    attention_mask: Any,
    *,
    generation_config: Any = None,
    logits_processor: list[Any] | None = None,
    stopping_criteria: list[Any] | None = None,
    cache: Any = None,
    **gen_kwargs: Any,
) -> tuple[Any, int] | None:
    """``model.generate(input_ids, attention_mask, ...)`` with finished rows dropped: (sequences, row-steps), or
    None when the call's settings are outside this loop (then call ``generate()`` itself)."""
    cfg = generation_settings(model, gen_kwargs, generation_config)
    chosen = sampling_processors(cfg, list(logits_processor or []))
    if chosen is None:
        return None
    eos = cfg.eos_token_id
    eos_ids = {int(eos)} if isinstance(eos, int) else {int(x) for x in (eos or [])}
    pad = cfg.pad_token_id if cfg.pad_token_id is not None else min(eos_ids, default=None)
    if pad is None:
        return None
    width = int(input_ids.shape[1])
    steps = cfg.max_new_tokens if cfg.max_new_tokens is not None else (cfg.max_length or width) - width
    procs, sample = chosen
    return decode(
        model,
        input_ids,
        attention_mask,
        max_new_tokens=max(0, int(steps)),
        pad_id=int(pad),
        eos_ids=eos_ids,
        processors=procs,
        sample=sample,
        stopping=list(stopping_criteria or []),
        cache=cache,
    )


def repeat_factor(input_ids: Any, attention_mask: Any) -> int:
    """n when the batch is runs of n identical consecutive rows (GRPO's G completions per prompt), else 1."""
    batch = int(input_ids.shape[0])
    for n in range(batch, 1, -1):
        if batch % n:
            continue
        ids = input_ids.view(batch // n, n, -1)
        mask = attention_mask.view(batch // n, n, -1)
        if bool((ids == ids[:, :1]).all()) and bool((mask == mask[:, :1]).all()):
            return n
    return 1


def prefill(model: Any, input_ids: Any, mask: Any, n: int = 1, shared: int = 0) -> Any:
    """A KV cache of all but the last prompt position of ``input_ids`` (left-padded, ``mask`` 1 on real tokens):
    the first ``shared`` tokens (a prefix all rows share) run once for the whole batch, then each row, and the
    cache is repeated ``n``-fold for n samples per row. Only the cache is wanted: ``logits_to_keep=1`` spares the
    lm_head over every prompt position (a quarter of the 0.5B model's prefill FLOPs, and a batch × width × vocab
    tensor)."""
    from toolr0.inference.kv_cache import new_cache

    cache = new_cache(model)
    pos = (mask.long().cumsum(-1) - 1).clamp(min=0)
    if shared:
        model(
            input_ids=input_ids[:1, :shared],
            position_ids=pos[:1, :shared],
            past_key_values=cache,
            logits_to_keep=1,
        )
        cache.batch_repeat_interleave(input_ids.shape[0])
    if input_ids.shape[1] - 1 > shared:
        model(
            input_ids=input_ids[:, shared:-1],
            attention_mask=mask[:, :-1],
            position_ids=pos[:, shared:-1],
            past_key_values=cache,
            use_cache=True,
            logits_to_keep=1,
        )
    if n > 1:
        cache.batch_repeat_interleave(n)
    return cache


def prefill_repeated(model: Any, input_ids: Any, attention_mask: Any) -> Any:
    """:func:`prefill` of each distinct prompt once, its cache repeated for its copies (TRL's rollout batch is
    runs of G identical rows); None when no row repeats. Decoding from it gives the rows the same tokens as
    prefilling every row (the same positions and mask, tests)."""
    n = repeat_factor(input_ids, attention_mask)
    if n == 1 or input_ids.shape[1] < 2:
        return None
    return prefill(model, input_ids[::n], attention_mask[::n], n)
