"""The transformers sampling backend on the tiny random model: batching, prefill-once expansion,
per-row stop strings, seeding, accounting and per-call LoRA adapter switching."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from toolr0.errors import ToolR0Error  # noqa: E402
from toolr0.inference.base import Sampler, SamplingParams, cut_at_stop  # noqa: E402
from toolr0.inference.hf import HFSampler  # noqa: E402
from toolr0.inference.models import tiny_random_model  # noqa: E402

pytestmark = pytest.mark.usefixtures("torch_one_thread")

PROMPTS = [[{"role": "user", "content": "hello " * k}] for k in (1, 7, 3, 12)]


@pytest.fixture(scope="module")
def tiny():
    return tiny_random_model(seed=0)


def test_protocol_and_shapes(tiny):
    s = HFSampler(*tiny, batch_size=3)
    assert isinstance(s, Sampler)
    out = s.generate(PROMPTS, SamplingParams(n=3, temperature=1.0, max_new_tokens=5, seed=1))
    assert len(out) == len(PROMPTS) and all(len(row) == 3 for row in out)
    assert all(isinstance(t, str) for row in out for t in row)
    st = s.last_stats
    assert st.prompts == 4 and st.sequences == 12 and 0 < st.completion_tokens <= 60
    assert st.prompt_tokens == sum(len(s.encode(p)) for p in PROMPTS) and st.seconds > 0


def test_greedy_is_identical_across_prefill_once_batching_and_padding(tiny):
    params = SamplingParams(n=2, temperature=0.0, max_new_tokens=10)
    once = HFSampler(*tiny, batch_size=4, prefill_once=True).generate(PROMPTS, params)
    copies = HFSampler(*tiny, batch_size=4, prefill_once=False).generate(PROMPTS, params)
    single = HFSampler(*tiny, batch_size=1, prefill_once=False, sort_by_length=False).generate(
        PROMPTS, params
    )
    assert once == copies == single
    assert len({row[0] for row in once}) > 1  # prompts really produce different outputs (order preserved)


def test_seeded_sampling_is_deterministic_and_seed_sensitive(tiny):
    s = HFSampler(*tiny, batch_size=2)
    p = SamplingParams(n=4, temperature=1.0, max_new_tokens=12, seed=7)
    a, b = s.generate(PROMPTS, p), s.generate(PROMPTS, p)
    c = s.generate(PROMPTS, p.replace(seed=8))
    assert a == b and a != c
    assert len(set(a[0])) > 1  # the n samples of one prompt differ
    state = torch.get_rng_state()
    s.generate(PROMPTS[:1], p)
    assert torch.equal(state, torch.get_rng_state())  # the global RNG is left alone


def test_stop_strings_cut_per_row_and_keep_the_stop(tiny):
    s = HFSampler(*tiny, batch_size=4)
    p = SamplingParams(n=4, temperature=1.0, max_new_tokens=30, seed=3)
    free = s.generate_detailed(PROMPTS, p)
    texts = [c.text for row in free.completions for c in row]
    # a printable character that some samples produce and others do not
    stop = next(
        ch
        for ch in sorted(set("".join(texts)))
        if ch.isalnum() and 0 < sum(ch in t for t in texts) < len(texts) // 2
    )
    res = s.generate_detailed(PROMPTS, p.replace(stop=(stop,)))
    reasons = [c.finish_reason for row in res.completions for c in row]
    assert "stop" in reasons and "length" in reasons  # rows stop independently
    for free_row, row in zip(free.completions, res.completions, strict=True):
        for f, c in zip(free_row, row, strict=True):
            if c.finish_reason == "stop":
                assert c.text.endswith(stop) and c.text.count(stop) == 1
                assert f.text.startswith(c.text)  # same sample, just cut
                assert c.completion_tokens < f.completion_tokens
            else:
                assert stop not in c.text and c.text == f.text


def test_cut_at_stop():
    assert cut_at_stop("a</x>b</y>", ["</y>", "</x>"]) == ("a</x>", True)
    assert cut_at_stop("abc", ["z"]) == ("abc", False)
    assert cut_at_stop("a</t></tt>", ("</t>", "</t></tt>")) == ("a</t></tt>", True)


def test_chunking_respects_sequence_cap(tiny):
    s = HFSampler(*tiny, batch_size=8, max_batch_sequences=6)
    assert [len(c) for c in s._chunks([5, 9, 1, 7], n=3)] == [2, 2]
    assert s._chunks([5, 9, 1, 7], n=3)[0] == [1, 3]  # longest first


def test_loads_from_folder_and_restores_training_mode(tiny_model_dir):
    s = HFSampler.from_pretrained(str(tiny_model_dir), dtype="fp32")
    assert s.checkpoint_id == str(tiny_model_dir)
    s.model.train()
    s.generate(PROMPTS[:1], SamplingParams(max_new_tokens=3))
    assert s.model.training


def _two_adapter_tiny():
    """The tiny model with non-trivial "solver" (active) and "generator" adapters: the self-play layout."""
    from peft import LoraConfig, get_peft_model

    base, tok = tiny_random_model(seed=0)
    cfg = LoraConfig(
        r=4, lora_alpha=64, target_modules=["q_proj", "v_proj", "o_proj"], init_lora_weights=False
    )
    model = get_peft_model(base, cfg, adapter_name="solver")
    model.add_adapter("generator", cfg)
    model.set_adapter("solver")
    return model, tok


def test_lora_adapters_switch_per_call(tiny):
    model, tok = _two_adapter_tiny()
    s = HFSampler(model, tok)
    p = SamplingParams(n=1, temperature=0.0, max_new_tokens=12)
    plain = HFSampler(*tiny).generate(PROMPTS, p)
    none = s.generate(PROMPTS, p, adapter=None)
    solver = s.generate(PROMPTS, p, adapter="solver")
    generator = s.generate(PROMPTS, p, adapter="generator")
    assert none == plain  # adapters disabled = the base model
    assert solver != plain and generator != solver
    assert model.active_adapter == "solver"  # restored after the call
    with pytest.raises(ToolR0Error, match="unknown adapter"):
        s.generate(PROMPTS, p, adapter="nope")
    with pytest.raises(ToolR0Error, match="no LoRA"):
        HFSampler(*tiny).generate(PROMPTS, p, adapter="solver")


def test_merged_lora_sampling_matches_the_unmerged_adapter_and_follows_its_updates():
    """``merge_lora``: a named adapter samples from a merged copy, with the unmerged adapter's greedy tokens;
    the PEFT model is left as it was, the copy is reused while the adapter is unchanged and made again after an
    in-place update (a training step), and adapter None still means the base."""
    model, tok = _two_adapter_tiny()
    before = {n: t.clone() for n, t in model.state_dict().items()}
    p = SamplingParams(n=1, temperature=0.0, max_new_tokens=12)
    unmerged, merged = HFSampler(model, tok), HFSampler(model, tok, merge_lora=True)
    old = unmerged.generate(PROMPTS, p, adapter="generator")
    assert merged.generate(PROMPTS, p, adapter="generator") == old
    first = merged._merged[1]
    assert not hasattr(first, "peft_config")  # a plain model: no LoRA layers left in the copy
    assert merged.generate(PROMPTS, p, adapter=None) == unmerged.generate(PROMPTS, p, adapter=None)
    merged.generate(PROMPTS[:1], p, adapter="generator")
    assert merged._merged[1] is first  # unchanged adapter: the same copy
    assert all(torch.equal(before[n], t) for n, t in model.state_dict().items())  # the PEFT model untouched
    assert model.active_adapter == "solver"
    with torch.no_grad():
        for n, t in model.named_parameters():
            if "lora_B.generator" in n:
                t.mul_(-3.0)  # an optimizer step writes in place
    updated = unmerged.generate(PROMPTS, p, adapter="generator")
    assert updated != old
    assert merged.generate(PROMPTS, p, adapter="generator") == updated
    assert merged._merged[1] is not first
    assert merged.generate(PROMPTS, p, adapter="solver") == unmerged.generate(PROMPTS, p, adapter="solver")


def test_shared_prefix_prefilled_once_gives_the_same_outputs(tiny):
    """Speed change only: the system prompt all rows share is prefilled once and its KV cache reused;
    greedy and seeded sampled outputs equal those of prefilling every row in full."""
    system = {"role": "system", "content": "You call tools. Answer with one JSON call and nothing else."}
    prompts = [[system, {"role": "user", "content": "book " * k}] for k in (1, 9, 4)]
    on, off = HFSampler(*tiny, batch_size=3), HFSampler(*tiny, batch_size=3, share_prefix=False)
    for params in (
        SamplingParams(n=1, temperature=0.0, max_new_tokens=12),
        SamplingParams(n=3, temperature=1.0, max_new_tokens=12, seed=4, stop=("a",)),
    ):
        a, b = on.generate_detailed(prompts, params), off.generate_detailed(prompts, params)
        assert a.texts() == b.texts()
        assert [[c.finish_reason for c in r] for r in a.completions] == [
            [c.finish_reason for c in r] for r in b.completions
        ]
        shared = len(on.tokenizer(on.render([system]), add_special_tokens=False)["input_ids"])
        assert a.stats.prompt_tokens == b.stats.prompt_tokens
        assert a.stats.prefill_tokens <= b.stats.prefill_tokens - 2 * shared  # rows 2 and 3 reuse it
    assert HFSampler._shared_prefix([[1] * 20 + [2], [1] * 20 + [3, 4]]) == 20
    assert HFSampler._shared_prefix([[1] * 20], min_tokens=16) == 19  # one own token is always left
    assert HFSampler._shared_prefix([[1, 2] * 10, [2, 1] * 10]) == 0


def test_cache_prefill_asks_for_one_logit_row_only(tiny):
    """Speed change only: the prefill that fills the KV cache (shared prefix, prefill once) asks the model for
    logits at one position instead of the lm_head over every prompt position; outputs are unchanged (the tests
    above compare them with full prefills)."""
    model, tok = tiny
    seen = []
    hook = model.register_forward_pre_hook(
        lambda mod, args, kwargs: seen.append((kwargs["input_ids"].shape[1], kwargs.get("logits_to_keep"))),
        with_kwargs=True,
    )
    try:
        system = {"role": "system", "content": "You call tools. Answer with one JSON call and nothing else."}
        prompts = [[system, {"role": "user", "content": "book " * k}] for k in (1, 9, 4)]
        HFSampler(model, tok, batch_size=3).generate(
            prompts, SamplingParams(n=2, temperature=1.0, max_new_tokens=3, seed=1)
        )
    finally:
        hook.remove()
    prefills = [keep for width, keep in seen if width > 1]
    assert len(prefills) == 2  # the shared system prompt once, then the rows' own suffixes
    assert all(keep == 1 for keep in prefills)
