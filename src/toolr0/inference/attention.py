"""Grouped-query attention for single-token decode steps without copying the KV cache (CPU).

transformers' SDPA path repeats every key/value head for each of the query heads that share it
(``repeat_kv``) whenever an attention mask is present, as it always is in a left-padded batch. In a decode step
that copies the whole cache once per layer: for the default model (14 query heads over 2 KV heads) at 32 rows ×
610 cached tokens, ~3.4 GB per step, 58 % of the step's time on the AVX2 EPYC (bench/RESULTS.md). Here a
one-token query is laid out as (KV head, query heads of that group) and attends to the un-repeated cache in
one SDPA call: the same attention, no copy. Prefill, training, dropout and non-CPU devices use transformers'
own SDPA function unchanged.
"""

from __future__ import annotations

from typing import Any

NAME = "toolr0_sdpa"
_REGISTERED = False


def grouped_decode_sdpa(
    module: Any,
    query: Any,
    key: Any,
    value: Any,
    attention_mask: Any,
    dropout: float = 0.0,
    scaling: float | None = None,
    is_causal: bool | None = None,
    **kwargs: Any,
) -> tuple[Any, None]:
    import torch
    from transformers.integrations.sdpa_attention import sdpa_attention_forward

    groups = int(getattr(module, "num_key_value_groups", 1) or 1)
    if (
        groups == 1
        or query.shape[2] != 1
        or dropout
        or kwargs.get("position_bias") is not None
        or query.device.type != "cpu"
        or (attention_mask is not None and attention_mask.shape[-2] != 1)
    ):
        return sdpa_attention_forward(
            module,
            query,
            key,
            value,
            attention_mask,
            dropout=dropout,
            scaling=scaling,
            is_causal=is_causal,
            **kwargs,
        )
    b, heads, _, dim = query.shape
    # repeat_kv serves query head j*groups + r from KV head j: group the query heads the same way
    q = query.reshape(b, key.shape[1], groups, dim)
    out = torch.nn.functional.scaled_dot_product_attention(
        q, key, value, attn_mask=attention_mask, scale=scaling
    )
    return out.reshape(b, heads, 1, dim).transpose(1, 2).contiguous(), None


def register() -> str:
    """Register the attention function (and SDPA's mask builder) under :data:`NAME`; returns the name."""
    global _REGISTERED
    if not _REGISTERED:
        from transformers import AttentionInterface
        from transformers.masking_utils import AttentionMaskInterface, sdpa_mask

        AttentionInterface.register(NAME, grouped_decode_sdpa)
        AttentionMaskInterface.register(NAME, sdpa_mask)
        _REGISTERED = True
    return NAME


def apply(model: Any) -> bool:
    """Switch a CPU model on transformers' SDPA with grouped-query heads to :func:`grouped_decode_sdpa`."""
    cfg = getattr(model, "config", None)
    if cfg is None or getattr(cfg, "_attn_implementation", None) != "sdpa":
        return False
    heads, kv = getattr(cfg, "num_attention_heads", 0), getattr(cfg, "num_key_value_heads", None)
    if not kv or kv == heads:
        return False
    try:
        model.set_attn_implementation(register())
    except Exception:  # noqa: BLE001 - a model that refuses custom attention keeps SDPA
        return False
    return True
