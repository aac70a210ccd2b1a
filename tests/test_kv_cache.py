"""The in-place KV cache (``inference/kv_cache.py``): a speed change only, so a model reading it must compute
exactly what it computes with transformers' ``DynamicCache``, through appends, row selection and expansion;
and an append with room left must not copy the cache."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from transformers import DynamicCache  # noqa: E402

from toolr0.inference.kv_cache import growing_layer_class, new_cache  # noqa: E402
from toolr0.inference.models import tiny_random_model  # noqa: E402

pytestmark = pytest.mark.usefixtures("torch_one_thread")


@pytest.fixture(scope="module")
def tiny():
    model, _ = tiny_random_model(seed=3)
    return model.eval()


def _steps(model, cache, ids, mask, steps=70):
    """Prefill, then greedy steps; drop row 1 after 5 steps and double the batch after 9; the logits of each step."""
    seen = []
    with torch.no_grad():
        out = model(input_ids=ids, attention_mask=mask, past_key_values=cache, use_cache=True)
        for step in range(steps):
            logits = out.logits[:, -1]
            seen.append(logits.clone())
            nxt = logits.argmax(-1, keepdim=True)
            if step == 5:
                keep = torch.tensor([0, 2])
                cache.batch_select_indices(keep)
                nxt, mask = nxt[keep], mask[keep]
            if step == 9:
                cache.batch_repeat_interleave(2)
                nxt, mask = nxt.repeat_interleave(2, 0), mask.repeat_interleave(2, 0)
            mask = torch.cat([mask, mask.new_ones((mask.shape[0], 1))], -1)
            out = model(input_ids=nxt, attention_mask=mask, past_key_values=cache, use_cache=True)
    return seen


def test_same_logits_as_dynamic_cache_through_appends_selection_and_expansion(tiny):
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(3, tiny.config.vocab_size, (3, 11), generator=g)
    mask = torch.ones_like(ids)
    mask[1, :4] = 0  # left padding
    mask[2, :7] = 0
    ours = new_cache(tiny)
    assert all(type(layer) is growing_layer_class() for layer in ours.layers)
    theirs = _steps(tiny, DynamicCache(config=tiny.config), ids, mask)
    mine = _steps(tiny, ours, ids, mask)  # 70 steps: the buffer grows past its first 11 + 64 positions
    assert len(mine) == len(theirs) == 70
    for a, b in zip(mine, theirs, strict=True):
        assert torch.equal(a, b)
    assert ours.get_seq_length() == 11 + 70


def test_an_append_with_room_left_writes_in_place(tiny):
    cache = new_cache(tiny)
    ids = torch.randint(3, tiny.config.vocab_size, (2, 6))
    with torch.no_grad():
        tiny(input_ids=ids, past_key_values=cache, use_cache=True)
        layer = cache.layers[0]
        before = layer.keys.untyped_storage().data_ptr()
        tiny(input_ids=ids[:, :1], past_key_values=cache, use_cache=True)
    assert layer.keys.untyped_storage().data_ptr() == before
    assert cache.get_seq_length() == 7 and layer.keys.shape[-2] == 7


def test_keys_replaced_from_outside_are_taken_over(tiny):
    cache = new_cache(tiny)
    ids = torch.randint(3, tiny.config.vocab_size, (1, 5))
    with torch.no_grad():
        tiny(input_ids=ids, past_key_values=cache, use_cache=True)
        cache.crop(-2)  # the base class slices keys itself
        assert cache.get_seq_length() == 3
        ref = DynamicCache(config=tiny.config)
        tiny(input_ids=ids, past_key_values=ref, use_cache=True)
        ref.crop(-2)
        a = tiny(input_ids=ids[:, 3:4], past_key_values=cache, use_cache=True).logits
        b = tiny(input_ids=ids[:, 3:4], past_key_values=ref, use_cache=True).logits
    assert torch.equal(a, b) and cache.get_seq_length() == 4
