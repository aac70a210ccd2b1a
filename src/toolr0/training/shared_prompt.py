"""GRPO log-probabilities with each prompt run once per group instead of once per completion.

GRPO scores ``num_generations`` completions of the same prompt. TRL's forward runs every row as
``[left-padded prompt][completion]``, so a group of G completions runs its prompt G times, and on a CPU the
prompt dominates the Solver's step (a ~600-token prompt against 40-200-token answers). Here the rows that
share a prompt are packed into one sequence::

    [prompt minus its last token][last prompt token, completion 1][last prompt token, completion 2] ...

with a block attention mask (every segment sees the shared prompt and itself, causally) and positions that
restart at the prompt's end in every segment. Each segment starts with its own copy of the last prompt token
so that its first completion token is predicted inside the segment. Every completion token then sees exactly
the context it sees in TRL's layout, so log-probabilities and entropies are the same function (float rounding
apart; RoPE depends on relative positions only, so dropping the left padding changes nothing), and gradients
through the shared prompt add up over the group as they do over its repeated copies. Tokens run per group:
``P + Σ(1 + |c_i|)`` instead of ``G · (P + max |c|)``.

Forwards are TRL's: the rows are cut into the same chunks of at most ``batch_size`` rows (``plan_chunks``) and
each chunk is one packed sequence, its prompt groups side by side as separate blocks. The forward count thus
depends on the row count only, not on which prompts repeat: under ZeRO-3 (and FSDP) every forward gathers the
parameters on every rank, so a rank whose batch repeated a prompt must not run fewer forwards than the others.

Applies to text-only batches on eager / SDPA attention (the ones that take a 4-D mask); anything else (vision
inputs, flash-attention kernels, batches with no shared prompt) returns None and the caller runs TRL's own path
(the same chunks, hence the same forward count).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

MASKABLE_ATTENTION = ("sdpa", "eager")


@dataclass
class PackedGroup:
    """One packed sequence (one forward): the rows it holds and where each row's completion tokens sit in it."""

    rows: list[int]
    input_ids: Any  # (1, T)
    position_ids: Any  # (1, T)
    allowed: Any  # (T, T) bool: query may attend key
    shift_labels: Any  # (1, T): the token each position predicts, -100 where nothing is scored
    starts: list[int]  # per row: packed position that predicts its first completion token
    lengths: list[int]  # per row: completion tokens scored


def plan_chunks(n_rows: int, batch_size: int | None) -> list[list[int]]:
    """The rows of each forward: consecutive runs of at most ``batch_size`` rows (None: all in one), exactly
    TRL's chunks. The forward count depends on the row count only, never on which prompts repeat, so every
    rank of a ZeRO-3/FSDP run (same per-device batch) runs as many forwards, each gathering the parameters."""
    bs = batch_size or n_rows
    return [list(range(s, min(s + bs, n_rows))) for s in range(0, n_rows, bs)]


def pack_groups(
    input_ids: Any, attention_mask: Any, logits_to_keep: int, batch_size: int | None = None
) -> list[PackedGroup] | None:
    """One packed sequence per chunk of ``plan_chunks`` (TRL's forwards): inside a chunk, the rows sharing a
    prompt (``input_ids[:, :-logits_to_keep]`` under its mask) sit behind one copy of it, and different prompts
    follow each other as separate blocks (block-diagonal attention, positions restarting at 0). None when no
    chunk has two rows sharing a prompt (nothing to save: TRL's path runs the same forwards) or a prompt is
    empty."""
    import torch

    prompt_ids = input_ids[:, :-logits_to_keep]
    prompt_mask = attention_mask[:, :-logits_to_keep].bool()
    comp_ids = input_ids[:, -logits_to_keep:]
    comp_mask = attention_mask[:, -logits_to_keep:].bool()
    chunks: list[dict[tuple[int, ...], list[int]]] = []
    for rows in plan_chunks(input_ids.shape[0], batch_size):
        groups: dict[tuple[int, ...], list[int]] = {}
        for r in rows:
            key = tuple(prompt_ids[r][prompt_mask[r]].tolist())
            if not key:
                return None
            groups.setdefault(key, []).append(r)
        chunks.append(groups)
    if all(len(rows) == 1 for groups in chunks for rows in groups.values()):
        return None
    device = input_ids.device
    packed = []
    for groups in chunks:
        ids, pos, labels, starts, lengths, order = [], [], [], [], [], []
        blocks: list[tuple[int, int, list[tuple[int, int]]]] = []  # (prompt start, prompt end, segments)
        offset = 0
        for key, rows in groups.items():
            prompt = torch.tensor(key, dtype=input_ids.dtype, device=device)
            p = len(key)
            ids.append(prompt[:-1])
            pos.append(torch.arange(p - 1))
            labels.append(torch.full((p - 1,), -100, dtype=torch.long))
            p0, offset = offset, offset + p - 1
            segments = []
            for r in rows:
                comp = comp_ids[r][comp_mask[r]]
                n = int(comp.numel())
                ids.append(torch.cat([prompt[-1:], comp]))
                pos.append(torch.arange(p - 1, p + n))
                labels.append(torch.cat([comp.cpu().long(), torch.full((1,), -100, dtype=torch.long)]))
                order.append(r)
                starts.append(offset)
                lengths.append(n)
                segments.append((offset, offset + n + 1))  # the last prompt token, then the n completion tokens
                offset += n + 1
            blocks.append((p0, p0 + p - 1, segments))
        allowed = torch.zeros(offset, offset, dtype=torch.bool)
        for p0, p1, segments in blocks:
            allowed[p0:p1, p0:p1] = torch.ones(p1 - p0, p1 - p0, dtype=torch.bool).tril()
            for a, b in segments:
                allowed[a:b, p0:p1] = True
                allowed[a:b, a:b] = torch.ones(b - a, b - a, dtype=torch.bool).tril()
        packed.append(
            PackedGroup(
                rows=order,
                input_ids=torch.cat(ids).unsqueeze(0),
                position_ids=torch.cat(pos).unsqueeze(0).to(device),
                allowed=allowed.to(device),
                shift_labels=torch.cat(labels).unsqueeze(0).to(device),
                starts=starts,
                lengths=lengths,
            )
        )
    return packed


def mask_4d(allowed: Any, attn_implementation: str, dtype: Any) -> Any:
    """The (1, 1, T, T) mask the attention takes: boolean for SDPA (True: attend), additive for eager (0 where
    allowed, the dtype's minimum where not)."""
    import torch

    if attn_implementation == "sdpa":
        return allowed[None, None]
    bias = torch.zeros(allowed.shape, dtype=dtype, device=allowed.device)
    bias.masked_fill_(~allowed, torch.finfo(dtype).min)
    return bias[None, None]


def attention_implementation(model: Any) -> str | None:
    cfg = getattr(model, "config", None)
    return getattr(cfg, "_attn_implementation", None) if cfg is not None else None


def can_pack(model: Any, extra_inputs: dict[str, Any]) -> bool:
    """Text-only inputs and an attention implementation that takes a 4-D mask."""
    if any(v is not None for v in extra_inputs.values()):
        return False
    return attention_implementation(model) in MASKABLE_ATTENTION


def shared_prompt_logps(
    model: Any,
    input_ids: Any,
    attention_mask: Any,
    logits_to_keep: int,
    compute_entropy: bool,
    batch_size: int | None = None,
) -> tuple[Any, Any] | None:
    """(per-token log-probs, entropies or None), both (B, logits_to_keep), zero where the completion mask is 0;
    None when the batch has no shared prompt. One forward per chunk of at most ``batch_size`` rows, as TRL's own
    path runs (``plan_chunks``). ``model`` must carry TRL's fused LM head
    (``model(..., shift_labels=..., fused_lm_head=True)``), as GRPOTrainer's models do."""
    import torch

    groups = pack_groups(input_ids, attention_mask, logits_to_keep, batch_size)
    if groups is None:
        return None
    impl = attention_implementation(model) or "sdpa"
    dtype = next(model.parameters()).dtype
    b = input_ids.shape[0]
    logps = [None] * b
    ents = [None] * b
    for g in groups:
        out = model(
            input_ids=g.input_ids,
            attention_mask=mask_4d(g.allowed, impl, dtype),
            position_ids=g.position_ids,
            shift_labels=g.shift_labels,
            fused_lm_head=True,
        )
        for r, start, n in zip(g.rows, g.starts, g.lengths, strict=True):
            logps[r] = _padded(out.log_probs[0, start : start + n], logits_to_keep)
            if compute_entropy:
                ents[r] = _padded(out.entropy[0, start : start + n], logits_to_keep)
    stacked = torch.stack(logps)  # type: ignore[arg-type]
    return stacked, (torch.stack(ents) if compute_entropy else None)  # type: ignore[arg-type]


def _padded(values: Any, width: int) -> Any:
    import torch

    if values.shape[0] == width:
        return values
    return torch.cat([values, values.new_zeros(width - values.shape[0])])
