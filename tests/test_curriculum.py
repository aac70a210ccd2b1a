"""Curriculum selection (spec §6.5, §11): buckets, domain quotas, mix, shortfall, ordering, determinism."""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import dataclass

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from toolr0.core.curriculum import (
    CurriculumConfig,
    difficulty_bucket,
    domain_quotas,
    item_level,
    level_counts,
    select_curriculum,
)

GRID = [k / 8 for k in range(9)]
LEVEL_P = {"easy": [0.875, 1.0], "medium": [0.25, 0.375, 0.5, 0.625, 0.75], "hard": [0.125]}


def make_items(per_domain: dict[str, dict[str, int]], seed: int = 0) -> list[dict]:
    rng = random.Random(seed)
    out = []
    for d, levels in per_domain.items():
        for lv, n in levels.items():
            for _ in range(n):
                out.append({"id": f"{d}-{len(out)}", "domain": d, "p_hat": rng.choice(LEVEL_P[lv])})
    rng.shuffle(out)
    return out


def levels_of(items, cfg=None):
    return Counter(item_level(it, cfg) for it in items)


def test_default_config_values():
    cfg = CurriculumConfig()
    assert cfg.n_final == 2000 and cfg.keep_zero is False
    assert cfg.mix == {"easy": 0.2, "medium": 0.5, "hard": 0.3}
    assert (cfg.easy_min, cfg.medium_low, cfg.medium_high, cfg.hard_max) == (0.875, 0.25, 0.75, 0.125)
    assert cfg.difficulty_source == "passk" and cfg.order == "shuffle"


def test_buckets_on_the_k8_grid():
    got = [difficulty_bucket(p) for p in GRID]
    assert got == [None, "hard", "medium", "medium", "medium", "medium", "medium", "easy", "easy"]
    assert difficulty_bucket(0.0, CurriculumConfig(keep_zero=True)) == "hard"
    for bad in (None, "x", float("nan"), -0.1, 1.5):
        assert difficulty_bucket(bad) is None


def test_buckets_for_other_k_use_the_nearer_edge():
    # K = 10: 0.2 lies in the gap (0.125, 0.25) nearer medium's edge; 0.8 in (0.75, 0.875) nearer medium.
    assert difficulty_bucket(0.1) == "hard"
    assert difficulty_bucket(0.15) == "hard"
    assert difficulty_bucket(0.2) == "medium"
    assert difficulty_bucket(0.8) == "medium"
    assert difficulty_bucket(0.85) == "easy"
    assert difficulty_bucket(0.1875) == "medium"  # the midpoint goes to medium


def test_config_validation():
    with pytest.raises(ValueError):
        CurriculumConfig(mix={"easy": 1, "medium": 1})
    with pytest.raises(ValueError):
        CurriculumConfig(mix={"easy": -1, "medium": 1, "hard": 1})
    with pytest.raises(ValueError):
        CurriculumConfig(medium_low=0.9)
    with pytest.raises(ValueError):
        CurriculumConfig(order="random")
    with pytest.raises(ValueError):
        CurriculumConfig(unknown=1)


def test_difficulty_sources():
    item = {"domain": "a", "p_hat": 0.5, "label": "hard"}
    assert item_level(item, CurriculumConfig()) == "medium"
    assert item_level(item, CurriculumConfig(difficulty_source="llm")) == "hard"
    assert item_level({"domain": "a", "label": "Easy"}, CurriculumConfig(difficulty_source="both")) == "easy"
    assert item_level({"domain": "a", "label": "easy"}, CurriculumConfig()) is None

    @dataclass
    class Obj:
        domain: str
        p_hat: float
        id: int = 0

    assert item_level(Obj("a", 1.0)) == "easy"


def test_domain_quotas_proportional_capped_and_redistributed():
    q = domain_quotas({"a": 100, "b": 100, "c": 100}, {"a": 1, "b": 1, "c": 1}, 90)
    assert q == {"a": 30, "b": 30, "c": 30}
    q = domain_quotas({"a": 5, "b": 100, "c": 100}, {"a": 1, "b": 1, "c": 1}, 90)
    assert q["a"] == 5 and q["b"] + q["c"] == 85 and abs(q["b"] - q["c"]) <= 1
    q = domain_quotas({"a": 100, "b": 100}, {"a": 3, "b": 1}, 40)
    assert q == {"a": 30, "b": 10}
    q = domain_quotas({"a": 3, "b": 2, "z": 50}, {"a": 1, "b": 1}, 100)
    assert q == {"a": 3, "b": 2, "z": 0}


def test_selection_quotas_and_mix_with_ample_supply():
    items = make_items({d: {"easy": 40, "medium": 60, "hard": 40} for d in "abcd"})
    cfg = CurriculumConfig(n_final=200)
    out = select_curriculum(items, {d: 1 for d in "abcd"}, cfg)
    assert len(out) == 200 and len({it["id"] for it in out}) == 200
    assert Counter(it["domain"] for it in out) == {d: 50 for d in "abcd"}
    for d in "abcd":
        assert levels_of([it for it in out if it["domain"] == d]) == {"easy": 10, "medium": 25, "hard": 15}


def test_shortfall_filled_from_same_domain_then_leftovers():
    # Domain a has no hard tasks: its hard share comes from its own easy/medium tasks.
    items = make_items({"a": {"easy": 30, "medium": 30}, "b": {"easy": 20, "medium": 50, "hard": 30}})
    out = select_curriculum(items, {"a": 1, "b": 1}, CurriculumConfig(n_final=40))
    a = [it for it in out if it["domain"] == "a"]
    assert len(a) == 20 and levels_of(a)["hard"] == 0
    assert levels_of(a)["easy"] + levels_of(a)["medium"] == 20
    assert levels_of([it for it in out if it["domain"] == "b"]) == {"easy": 4, "medium": 10, "hard": 6}
    # Domain c is tiny: its unused quota moves to the other domains.
    items = make_items({"a": {"medium": 50}, "b": {"medium": 50}, "c": {"hard": 2}})
    out = select_curriculum(items, {"a": 1, "b": 1, "c": 1}, CurriculumConfig(n_final=60))
    assert Counter(it["domain"] for it in out) == {"a": 29, "b": 29, "c": 2}
    # Domains without weight are used only when nothing else is left.
    items = make_items({"a": {"medium": 5}, "z": {"medium": 50}})
    out = select_curriculum(items, {"a": 1}, CurriculumConfig(n_final=20))
    assert Counter(it["domain"] for it in out) == {"a": 5, "z": 15}


def test_zero_pass_rate_dropped_unless_keep_zero():
    items = [{"id": i, "domain": "a", "p_hat": 0.0} for i in range(10)] + [
        {"id": 99, "domain": "a", "p_hat": 0.5}
    ]
    assert [it["id"] for it in select_curriculum(items, None, CurriculumConfig(n_final=50))] == [99]
    kept = select_curriculum(items, None, CurriculumConfig(n_final=50, keep_zero=True))
    assert len(kept) == 11
    assert level_counts(items) == {"easy": 0, "medium": 1, "hard": 0, "dropped": 10}


def test_zero_pass_rate_needs_cross_verification_even_with_keep_zero():
    """spec §11: p̂ = 0 gold is kept (as hard) only when cross-verification vouched for it."""
    vouched = {"id": 1, "domain": "a", "p_hat": 0.0, "cross_verified": True}
    unvouched = {"id": 2, "domain": "a", "p_hat": 0.0, "cross_verified": False}
    solved = {"id": 3, "domain": "a", "p_hat": 0.5, "cross_verified": False}
    cfg = CurriculumConfig(n_final=50, keep_zero=True)
    assert sorted(it["id"] for it in select_curriculum([vouched, unvouched, solved], None, cfg)) == [1, 3]
    assert item_level(unvouched, cfg) is None and item_level(vouched, cfg) == "hard"
    assert item_level({**unvouched, "label": "hard"}, cfg.model_copy(update={"difficulty_source": "llm"})) is None


def test_zero_pass_rate_kept_when_the_gold_holds_by_construction():
    """curriculum.keep_zero_by_construction (not in the paper): a no-call task built from another domain's menu keeps
    its p̂ = 0 as hard without keep_zero and without cross-verification; nothing else does."""
    built = {"id": 1, "domain": "a", "p_hat": 0.0, "cross_verified": False, "by_construction": True, "answer": []}
    generated = {"id": 2, "domain": "a", "p_hat": 0.0, "cross_verified": True, "answer": []}
    cfg = CurriculumConfig(n_final=50, keep_zero_by_construction=True)
    assert item_level(built, cfg) == "hard" and item_level(generated, cfg) is None
    assert [it["id"] for it in select_curriculum([built, generated], None, cfg)] == [1]
    assert item_level(built, CurriculumConfig()) is None  # off by default: the paper's rule
    assert item_level({**built, "p_hat": 0.5}, cfg) == "medium"  # a solved one is bucketed as usual


def test_orders():
    items = make_items({d: {"easy": 10, "medium": 20, "hard": 10} for d in "xyz"})
    grouped = select_curriculum(items, None, CurriculumConfig(n_final=60, order="grouped"))
    doms = [it["domain"] for it in grouped]
    assert doms == sorted(doms)  # grouped by domain
    for d in "xyz":
        lv = [item_level(it) for it in grouped if it["domain"] == d]
        assert lv == sorted(lv, key=["easy", "medium", "hard"].index)
    e2h = select_curriculum(items, None, CurriculumConfig(n_final=60, order="easy_to_hard"))
    rank = [(["easy", "medium", "hard"].index(item_level(it)), -it["p_hat"]) for it in e2h]
    assert rank == sorted(rank)
    shuffled = select_curriculum(items, None, CurriculumConfig(n_final=60))
    assert sorted(map(id, shuffled)) == sorted(map(id, grouped)) and shuffled != grouped


def test_subsample_to_consumed_size_keeps_mix():
    items = make_items({d: {"easy": 40, "medium": 100, "hard": 60} for d in "abcd"})
    cfg = CurriculumConfig(n_final=800, order="easy_to_hard", consumed_size=400)
    out = select_curriculum(items, None, cfg)
    assert len(out) == 400
    assert levels_of(out) == {"easy": 80, "medium": 200, "hard": 120}
    assert [item_level(it) for it in out] == ["easy"] * 80 + ["medium"] * 200 + ["hard"] * 120


def test_deterministic_under_seed():
    items = make_items({d: {"easy": 20, "medium": 30, "hard": 20} for d in "abc"})
    a = select_curriculum(items, None, CurriculumConfig(n_final=50))
    b = select_curriculum(items, None, CurriculumConfig(n_final=50))
    c = select_curriculum(items, None, CurriculumConfig(n_final=50), seed=14)
    assert [it["id"] for it in a] == [it["id"] for it in b]
    assert [it["id"] for it in a] != [it["id"] for it in c]


def test_empty_and_degenerate_inputs():
    assert select_curriculum([], None, CurriculumConfig()) == []
    assert select_curriculum(None, {"a": 1}) == []
    assert select_curriculum([{"domain": "a", "p_hat": 0.5}], {"a": 1}, CurriculumConfig(n_final=0)) == []
    assert select_curriculum([{"domain": "a"}, {"p_hat": "x"}, 3, None]) == []
    assert len(select_curriculum([{"domain": "a", "p_hat": 0.5}], {"a": 0})) == 1  # leftover fill


@settings(max_examples=80, deadline=None)
@given(
    st.lists(
        st.fixed_dictionaries(
            {"domain": st.sampled_from("abcde"), "p_hat": st.sampled_from(GRID) | st.floats() | st.none()}
        ),
        max_size=60,
    ),
    st.integers(0, 80),
    st.dictionaries(st.sampled_from("abcdef"), st.floats(0, 5), max_size=6),
)
def test_selection_properties(items, n_final, weights):
    cfg = CurriculumConfig(n_final=n_final)
    out = select_curriculum(items, weights or None, cfg)
    selectable = [it for it in items if item_level(it, cfg) is not None]
    assert len(out) == min(n_final, len(selectable))
    assert len({id(it) for it in out}) == len(out)
    assert all(item_level(it, cfg) is not None for it in out)


# ------------------------------------------------------------------------------------------ no-call tasks
def _mixed(n_calls: int, n_no_call: int) -> list[dict]:
    items = [{"id": f"c{i}", "domain": "a", "p_hat": 0.5, "answer": [{"name": "f"}]} for i in range(n_calls)]
    items += [{"id": f"n{i}", "domain": "a", "p_hat": 0.5, "answer": []} for i in range(n_no_call)]
    return items


def test_is_no_call_reads_every_record_form():
    from toolr0.core.curriculum import is_no_call

    assert is_no_call({"answer": []}) and is_no_call({"calls": []}) and is_no_call({"task": {"calls": []}})
    assert not is_no_call({"answer": [{"name": "f"}]}) and not is_no_call(
        {"task": {"calls": [{"name": "f"}]}}
    )
    assert not is_no_call({"domain": "a"}) and not is_no_call(None) and not is_no_call({"answer": None})


def test_no_call_tasks_selected_like_any_task_by_default():
    items = _mixed(4, 6)
    sel = select_curriculum(items, None, CurriculumConfig(n_final=10))
    assert sorted(it["id"] for it in sel) == sorted(it["id"] for it in items)
    # the default leaves the random choices (and so every earlier selection) unchanged
    calls_only = _mixed(30, 0)
    assert select_curriculum(calls_only, None, CurriculumConfig(n_final=10)) == select_curriculum(
        calls_only, None, CurriculumConfig(n_final=10, no_call_max_share=0.5)
    )


@pytest.mark.parametrize(
    ("n_calls", "n_no_call", "n_final", "share"),
    [(4, 6, 10, 0.2), (30, 30, 20, 0.25), (0, 5, 5, 0.3), (10, 10, 40, 0.0)],
)
def test_no_call_share_cap(n_calls, n_no_call, n_final, share):
    from toolr0.core.curriculum import is_no_call

    cfg = CurriculumConfig(n_final=n_final, no_call_max_share=share)
    sel = select_curriculum(_mixed(n_calls, n_no_call), None, cfg)
    k = sum(is_no_call(it) for it in sel)
    assert k <= share * len(sel) + 1e-9
    assert len(sel) >= min(n_calls, n_final)  # the cap never leaves the selection short of call tasks
    assert sel == select_curriculum(_mixed(n_calls, n_no_call), None, cfg)  # deterministic
