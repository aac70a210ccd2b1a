"""GRPO log-probabilities with each prompt run once per group (training/shared_prompt.py): the packed layout,
and the same log-probabilities, entropies and gradients as TRL's one-row-per-completion forward."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("trl")

from toolr0.training import shared_prompt as sp  # noqa: E402

pytestmark = pytest.mark.usefixtures("torch_one_thread")
PAD = 0


def _batch():
    """4 rows, logits_to_keep 4: rows 0, 1, 3 share the prompt [5, 6, 7] (left-padded by one), row 2 has
    [8, 9]; completions are right-padded after their last real token."""
    prompts = [[PAD, 5, 6, 7], [PAD, 5, 6, 7], [PAD, PAD, 8, 9], [PAD, 5, 6, 7]]
    comps = [[11, 12, 13, PAD], [14, PAD, PAD, PAD], [15, 16, 17, 18], [19, 20, PAD, PAD]]
    ids = torch.tensor([p + c for p, c in zip(prompts, comps, strict=True)])
    mask = (ids != PAD).long()
    return ids, mask


def test_rows_sharing_a_prompt_are_packed_behind_one_copy_of_it():
    ids, mask = _batch()
    groups = sp.pack_groups(ids, mask, 4)
    assert groups is not None and len(groups) == 1  # one forward, as TRL's path with no batch_size
    g = groups[0]
    assert g.rows == [0, 1, 3, 2]
    # [5, 6] + [7, 11, 12, 13] + [7, 14] + [7, 19, 20], then the lone row's block [8] + [9, 15, 16, 17, 18]
    assert g.input_ids[0].tolist() == [5, 6, 7, 11, 12, 13, 7, 14, 7, 19, 20, 8, 9, 15, 16, 17, 18]
    assert g.position_ids[0].tolist() == [0, 1, 2, 3, 4, 5, 2, 3, 2, 3, 4, 0, 1, 2, 3, 4, 5]
    assert g.starts == [2, 6, 8, 12] and g.lengths == [3, 1, 2, 4]
    # each position predicts the next token of its own segment; segment ends and the prompt predict nothing
    assert g.shift_labels[0].tolist() == [-100, -100, 11, 12, 13, -100, 14, -100, 19, 20, -100] + [
        -100, 15, 16, 17, 18, -100
    ]
    allowed = g.allowed
    # segment 2 sees the prompt and itself
    assert allowed[6, :2].all() and allowed[6, 6] and not allowed[6, 2:6].any()
    assert not allowed[1, 2] and allowed[1, :2].all()  # the prompt stays causal
    assert not allowed[10, 6:8].any() and allowed[10, 8:11].all()
    # the second prompt's block sees only itself (block-diagonal), causally
    assert not allowed[11:, :11].any() and not allowed[:11, 11:].any()
    assert allowed[16, 11:17].all() and not allowed[11, 12]
    two = sp.pack_groups(ids, mask, 4, batch_size=2)  # TRL's chunks [0, 1], [2, 3]
    assert [g.rows for g in two] == [[0, 1], [2, 3]]
    assert two[1].input_ids[0].tolist() == [8, 9, 15, 16, 17, 18, 5, 6, 7, 19, 20]


def test_no_shared_prompt_means_nothing_to_pack():
    ids, mask = _batch()
    assert sp.pack_groups(ids[1:3], mask[1:3], 4) is None


def _fused_tiny_model():
    from trl.trainer.utils import add_fused_lm_head

    from toolr0.inference.models import tiny_random_model

    model, _ = tiny_random_model(seed=0)
    add_fused_lm_head(model, outputs=("log_probs", "entropy"))
    return model


def _trl_path(model, ids, mask, keep):
    """What GRPOTrainer._get_per_token_logps_and_entropies computes for a text batch (TRL 1.16)."""
    labels = ids.masked_fill(mask == 0, -100)
    labels[:, :-keep] = -100
    out = model(input_ids=ids, attention_mask=mask, labels=labels, fused_lm_head=True)
    return out.log_probs[:, -keep:], out.entropy[:, -keep:]


@pytest.mark.parametrize("attn,batch_size", [("sdpa", None), ("eager", None), ("sdpa", 2)])
def test_same_logps_entropies_and_gradients_as_one_row_per_completion(attn, batch_size):
    ids, mask = _batch()
    ids = ids + 100 * (ids != PAD)  # real vocabulary ids away from the special tokens
    keep = 4
    comp_mask = mask[:, -keep:].bool()
    model = _fused_tiny_model()
    model.config._attn_implementation = attn
    grads = []
    results = []
    for packed in (False, True):
        model.zero_grad()
        if packed:
            logps, ents = sp.shared_prompt_logps(model, ids, mask, keep, True, batch_size)
        else:
            logps, ents = _trl_path(model, ids, mask, keep)
        (logps * comp_mask).sum().backward()
        grads.append({n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None})
        results.append((logps.detach(), ents.detach()))
    (lp_ref, ent_ref), (lp, ent) = results
    assert torch.allclose(lp[comp_mask], lp_ref[comp_mask], atol=1e-5)
    assert torch.allclose(ent[comp_mask], ent_ref[comp_mask], atol=1e-5)
    assert (lp[~comp_mask] == 0).all()
    assert grads[0].keys() == grads[1].keys() and grads[0]
    for name, g in grads[0].items():
        assert torch.allclose(grads[1][name], g, atol=1e-5, rtol=1e-4), name


def test_vision_inputs_and_flash_attention_take_trls_path():
    model = _fused_tiny_model()
    assert sp.can_pack(model, {"pixel_values": None, "num_images": None})
    assert not sp.can_pack(model, {"pixel_values": torch.zeros(1)})
    model.config._attn_implementation = "flash_attention_2"
    assert not sp.can_pack(model, {})


def _count_forwards(model):
    calls = []
    model.register_forward_pre_hook(lambda *a: calls.append(1))
    return calls


@pytest.mark.parametrize("batch_size", [None, 1, 2, 3, 4])
def test_forwards_are_trls_count_whatever_the_prompts(batch_size):
    """ZeRO-3 gathers every layer's parameters once per forward on every rank, so a rank that ran fewer forwards
    than the others (its batch repeated a prompt) would leave them waiting: the packed path runs exactly TRL's
    ceil(rows / batch_size) forwards, each over at most batch_size rows, whatever prompts repeat."""
    ids, mask = _batch()
    ids = ids + 100 * (ids != PAD)
    model = _fused_tiny_model()
    calls = _count_forwards(model)
    bs = batch_size or ids.shape[0]
    expected = -(-ids.shape[0] // bs)
    packed = sp.pack_groups(ids, mask, 4, batch_size)
    if packed is not None:
        assert len(packed) == expected and all(len(g.rows) <= bs for g in packed)
        assert sorted(r for g in packed for r in g.rows) == [0, 1, 2, 3]
    out = sp.shared_prompt_logps(model, ids, mask, 4, compute_entropy=False, batch_size=batch_size)
    assert len(calls) == (expected if out is not None else 0)
    assert sp.plan_chunks(4, batch_size) == [list(range(s, min(s + bs, 4))) for s in range(0, 4, bs)]
