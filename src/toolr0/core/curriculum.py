"""Curriculum selection (spec §6.5, §11): difficulty buckets from pass@K (or an LLM label) and the quota-based
choice of the final Solver training set. Pure and deterministic under ``seed``.

Bucket rule (K = 8 defaults: easy p̂ ≥ 0.875, medium 0.25 ≤ p̂ ≤ 0.75, hard p̂ ≤ 0.125). On the K = 8 grid no p̂
falls between the buckets; for other K a p̂ in a gap goes to the nearer bucket edge (the gap's midpoint splits
it, the midpoint itself going to medium). p̂ = 0 is dropped unless ``keep_zero`` (then it is hard), and always when
the item says ``cross_verified: false``: no gold nobody produced enters the curriculum unvouched.

No-call tasks (gold ``[]``; p̂ = the share of Solver samples answering ``[]``) are selected like any task;
``no_call_max_share`` (not in the paper; 1 = no cap) caps their share of the selection so a pool rich in them
cannot teach the Solver to abstain everywhere (the mirror of the over-calling collapse).
"""

from __future__ import annotations

import math
import random
from collections.abc import Mapping
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

LEVELS = ("easy", "medium", "hard")


class CurriculumConfig(BaseModel):
    """How the final Solver dataset is chosen from the verified pool (`curriculum:` section)."""

    model_config = ConfigDict(extra="forbid")

    n_final: int = Field(2000, ge=0, description="Number of tasks selected per iteration (spec §6.5).")
    mix: dict[str, float] = Field(
        default_factory=lambda: {"easy": 0.2, "medium": 0.5, "hard": 0.3},
        description="Target share of easy/medium/hard inside each domain (normalised).",
    )
    easy_min: float = Field(0.875, ge=0, le=1, description="p̂ ≥ easy_min → easy.")
    medium_low: float = Field(0.25, ge=0, le=1, description="medium_low ≤ p̂ ≤ medium_high → medium.")
    medium_high: float = Field(0.75, ge=0, le=1, description="Upper edge of the medium bucket.")
    hard_max: float = Field(0.125, ge=0, le=1, description="p̂ ≤ hard_max → hard (p̂ = 0 only with keep_zero).")
    keep_zero: bool = Field(
        False, description="Keep never-solved tasks (p̂ = 0) as hard instead of dropping them."
    )
    keep_zero_by_construction: bool = Field(
        False,
        description="Keep a p̂ = 0 task as hard when its gold holds by construction, not by the Generator's word "
        "(an item with by_construction: true, e.g. a question put with another domain's menu, gold []). Not in "
        "the paper.",
    )
    difficulty_source: Literal["passk", "llm", "both"] = Field(
        "passk",
        description="passk: bucket from p̂; llm: the easy|medium|hard label; both: p̂ when present, else the label.",
    )
    order: Literal["shuffle", "easy_to_hard", "grouped"] = Field(
        "shuffle",
        description="shuffle: seeded shuffle; easy_to_hard: global easy→medium→hard, descending p̂ inside a bucket "
        "(use a sequential sampler); grouped: the reference code's order (by domain, easy→hard inside).",
    )
    consumed_size: int | None = Field(
        None,
        ge=1,
        description="Subsample the selection to this many tasks keeping the mix (e.g. the ~400 consumed).",
    )
    no_call_max_share: float = Field(
        1.0,
        ge=0,
        le=1,
        description="Most share of no-call tasks (gold []) in the selection; 1: no cap, selected like any task.",
    )

    @field_validator("mix")
    @classmethod
    def _mix(cls, v: dict[str, float]) -> dict[str, float]:
        if set(v) != set(LEVELS):
            raise ValueError("mix needs exactly the keys easy, medium, hard")
        if any(not (w >= 0) or math.isinf(w) for w in v.values()) or sum(v.values()) <= 0:
            raise ValueError("mix weights must be finite, >= 0 and not all zero")
        return v

    @model_validator(mode="after")
    def _order(self) -> CurriculumConfig:
        if not (self.hard_max <= self.medium_low <= self.medium_high <= self.easy_min):
            raise ValueError("thresholds must satisfy hard_max <= medium_low <= medium_high <= easy_min")
        return self


def _get(item: Any, *names: str) -> Any:
    for name in names:
        if isinstance(item, Mapping):
            if name in item:
                return item[name]
        elif hasattr(item, name):
            return getattr(item, name)
    return None


def _p_hat(item: Any) -> float | None:
    p = _get(item, "p_hat", "pass_rate")
    try:
        p = float(p)
    except (TypeError, ValueError):
        return None
    return p if 0.0 <= p <= 1.0 else None


def difficulty_bucket(p_hat: float | None, cfg: CurriculumConfig | None = None) -> str | None:
    """easy | medium | hard for a pass rate, or None (dropped: p̂ = 0 without keep_zero, or not a rate)."""
    cfg = cfg or CurriculumConfig()
    try:
        p = float(p_hat)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    if not (0.0 <= p <= 1.0):
        return None
    if p == 0.0:
        return "hard" if cfg.keep_zero else None
    if p >= cfg.easy_min:
        return "easy"
    if p <= cfg.hard_max:
        return "hard"
    if cfg.medium_low <= p <= cfg.medium_high:
        return "medium"
    if p < cfg.medium_low:  # gap (hard_max, medium_low): nearer edge wins
        return "hard" if p < (cfg.hard_max + cfg.medium_low) / 2 else "medium"
    return "easy" if p > (cfg.medium_high + cfg.easy_min) / 2 else "medium"


def _label(item: Any) -> str | None:
    lab = _get(item, "label", "difficulty")
    if isinstance(lab, str) and lab.strip().lower() in LEVELS:
        return lab.strip().lower()
    return None


def item_level(item: Any, cfg: CurriculumConfig | None = None) -> str | None:
    """The difficulty level of one item under ``cfg.difficulty_source`` (None → not selectable)."""
    cfg = cfg or CurriculumConfig()
    p = _p_hat(item)
    # spec §11: a never-solved task (p̂ = 0) is kept only when cross-verification stood behind its gold; an item
    # that says ``cross_verified: false`` (an exempt no-call task, a run without cross-verification) is dropped
    # not in the spec: a gold that holds by construction (a question with another domain's menu, gold []) is no
    # Generator claim to vouch for; at p̂ = 0 the frozen Solver called an unrelated tool every time, the habit such
    # a task is there to teach away (curriculum.keep_zero_by_construction)
    if p == 0.0 and cfg.keep_zero_by_construction and _get(item, "by_construction") is True:
        return "hard"
    if p == 0.0 and _get(item, "cross_verified") is False:
        return None
    if cfg.difficulty_source == "llm":
        return _label(item)
    if p is not None:
        return difficulty_bucket(p, cfg)
    return _label(item) if cfg.difficulty_source == "both" else None


def is_no_call(item: Any) -> bool:
    """Whether an item is a no-call task: its gold (``answer``, ``calls`` or ``task.calls``) is an empty list."""
    for name in ("answer", "calls"):
        gold = _get(item, name)
        if isinstance(gold, list):
            return not gold
    task = _get(item, "task")
    gold = _get(task, "calls") if task is not None else None
    return isinstance(gold, list) and not gold


def _cap_no_call(pool: list[Any], cfg: CurriculumConfig, rng: random.Random) -> list[Any]:
    """Drop no-call entries at random until they are at most ``no_call_max_share`` of the final selection."""
    if cfg.no_call_max_share >= 1.0:
        return pool
    no_call = [e for e in pool if is_no_call(e[1])]
    n_calls = len(pool) - len(no_call)
    keep = len(no_call)
    while keep > 0 and keep > cfg.no_call_max_share * min(cfg.n_final, n_calls + keep) + 1e-9:
        keep -= 1
    if keep == len(no_call):
        return pool
    dropped = {e[0] for e in rng.sample(no_call, len(no_call) - keep)}
    return [e for e in pool if e[0] not in dropped]


def _largest_remainder(total: int, weights: list[float]) -> list[int]:
    """Integers summing to ``total`` proportional to ``weights`` (ties → earlier entry)."""
    s = sum(weights)
    if total <= 0 or s <= 0:
        return [0] * len(weights)
    exact = [total * w / s for w in weights]
    out = [math.floor(x) for x in exact]
    rest = total - sum(out)
    order = sorted(range(len(weights)), key=lambda i: (-(exact[i] - out[i]), i))
    for i in order[:rest]:
        out[i] += 1
    return out


def domain_quotas(available: dict[str, int], weights: dict[str, float], n: int) -> dict[str, int]:
    """Quotas proportional to weights, capped by availability; the remainder is redistributed (spec §6.5 step 1)."""
    quotas = {d: 0 for d in available}
    target = min(n, sum(c for d, c in available.items() if weights.get(d, 0) > 0))
    active = [d for d in available if weights.get(d, 0) > 0 and available[d] > 0]
    while active and sum(quotas.values()) < target:
        remaining = target - sum(quotas.values())
        alloc = _largest_remainder(remaining, [weights[d] for d in active])
        for d, a in zip(active, alloc, strict=True):
            quotas[d] += min(a, available[d] - quotas[d])
        active = [d for d in active if quotas[d] < available[d]]
    return quotas


def select_curriculum(
    items: list[Any] | None,
    domain_weights: Mapping[str, float] | None = None,
    cfg: CurriculumConfig | None = None,
    seed: int = 13,
) -> list[Any]:
    """Choose up to ``cfg.n_final`` items (spec §6.5): domain quotas ∝ weights (capped, remainder redistributed),
    easy/medium/hard mix inside each domain, shortfalls from the same domain's other levels, then from all
    leftovers; then ordered by ``cfg.order`` and optionally subsampled to ``cfg.consumed_size`` keeping the mix.

    Items are dicts or objects with ``domain``, ``p_hat`` (or ``label``/``difficulty``) and optionally ``id``.
    Domains missing from ``domain_weights`` (or weighted 0) are used only for the final leftover fill;
    ``domain_weights=None`` means uniform over the domains present. ``seed`` drives every random choice
    (spec §6.5: 13; the self-play loop derives one per iteration from the master seed).
    """
    cfg = cfg or CurriculumConfig()
    rng = random.Random(seed)
    pool: list[tuple[int, Any, str, str]] = []  # (input index, item, domain, level)
    for i, it in enumerate(items or []):
        level = item_level(it, cfg)
        if level is not None:
            d = _get(it, "domain")
            pool.append((i, it, d if isinstance(d, str) else str(d), level))
    pool = _cap_no_call(pool, cfg, rng)
    if not pool or cfg.n_final <= 0:
        return []
    present = list(dict.fromkeys(d for _, _, d, _ in pool))
    if domain_weights:
        weights = {
            d: max(0.0, float(w)) for d, w in domain_weights.items() if isinstance(w, int | float) and w == w
        }
        domain_order = [d for d in weights if d in present] + sorted(d for d in present if d not in weights)
    else:
        weights = {d: 1.0 for d in present}
        domain_order = sorted(present)
    by_domain: dict[str, dict[str, list[tuple[int, Any, str, str]]]] = {
        d: {lv: [] for lv in LEVELS} for d in domain_order
    }
    for entry in pool:
        by_domain[entry[2]][entry[3]].append(entry)
    for d in domain_order:
        for lv in LEVELS:
            rng.shuffle(by_domain[d][lv])
    available = {d: sum(len(v) for v in by_domain[d].values()) for d in domain_order}
    n_target = min(cfg.n_final, len(pool))
    quotas = domain_quotas(available, weights, n_target)
    mix = [cfg.mix[lv] for lv in LEVELS]
    chosen: dict[str, dict[str, list[tuple[int, Any, str, str]]]] = {
        d: {lv: [] for lv in LEVELS} for d in domain_order
    }
    for d in domain_order:
        q = quotas.get(d, 0)
        if q <= 0:
            continue
        for lv, want in zip(LEVELS, _largest_remainder(q, mix), strict=True):
            take = min(want, len(by_domain[d][lv]))
            chosen[d][lv] = by_domain[d][lv][:take]
            by_domain[d][lv] = by_domain[d][lv][take:]
        short = q - sum(len(v) for v in chosen[d].values())
        if short > 0:  # fill from the same domain's other levels
            left = [e for lv in LEVELS for e in by_domain[d][lv]]
            rng.shuffle(left)
            for e in left[:short]:
                chosen[d][e[3]].append(e)
                by_domain[d][e[3]].remove(e)
    short = n_target - sum(len(v) for c in chosen.values() for v in c.values())
    if short > 0:  # then from all leftovers
        left = [e for d in domain_order for lv in LEVELS for e in by_domain[d][lv]]
        rng.shuffle(left)
        for e in left[:short]:
            chosen[e[2]][e[3]].append(e)
    grouped = [e for d in domain_order for lv in LEVELS for e in sorted(chosen[d][lv], key=lambda e: e[0])]
    if cfg.consumed_size is not None and cfg.consumed_size < len(grouped):
        grouped = _subsample(grouped, cfg.consumed_size, mix, rng)
    if cfg.order == "easy_to_hard":
        rank = {lv: k for k, lv in enumerate(LEVELS)}
        grouped.sort(key=lambda e: (rank[e[3]], -(_p_hat(e[1]) or 0.0)))  # stable: domain grouping on ties
    elif cfg.order == "shuffle":
        rng.shuffle(grouped)
    return [e[1] for e in grouped]


def _subsample(entries: list[Any], size: int, mix: list[float], rng: random.Random) -> list[Any]:
    """Keep ``size`` entries with the level mix (shortfalls from other levels); keeps the input order."""
    per_level = {lv: [e for e in entries if e[3] == lv] for lv in LEVELS}
    picked: list[Any] = []
    rest: list[Any] = []
    for lv, want in zip(LEVELS, _largest_remainder(size, mix), strict=True):
        group = list(per_level[lv])
        rng.shuffle(group)
        picked.extend(group[:want])
        rest.extend(group[want:])
    rng.shuffle(rest)
    picked.extend(rest[: size - len(picked)])
    keep = {id(e) for e in picked}
    return [e for e in entries if id(e) in keep]


def level_counts(items: list[Any], cfg: CurriculumConfig | None = None) -> dict[str, int]:
    """How many items fall in each level (and ``dropped``), for logs and reports."""
    out = {lv: 0 for lv in LEVELS} | {"dropped": 0}
    for it in items or []:
        out[item_level(it, cfg) or "dropped"] += 1
    return out
