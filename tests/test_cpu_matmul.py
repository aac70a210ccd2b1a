"""fp32 CPU decode matmuls through oneDNN (inference/cpu_matmul.py): same function up to float rounding, only
small gradient-free calls switch, a changed weight is re-packed, and the switch can be turned off."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from toolr0.inference import cpu_matmul as cm  # noqa: E402
from toolr0.inference.models import tiny_random_model  # noqa: E402

pytestmark = [
    pytest.mark.usefixtures("torch_one_thread"),
    pytest.mark.skipif(not cm.available(), reason="torch built without oneDNN"),
]


def _layer(rows_out: int = 48, rows_in: int = 32, bias: bool = True) -> torch.nn.Linear:
    torch.manual_seed(0)
    layer = torch.nn.Linear(rows_in, rows_out, bias=bias)
    layer.__class__ = cm._linear_class()
    return layer


def test_small_inputs_match_the_default_kernel_up_to_rounding():
    layer = _layer()
    for shape in [(1, 32), (8, 32), (2, 3, 32), (2, 40, 32)]:  # the last one (80 rows) takes the default path
        x = torch.randn(*shape)
        with torch.no_grad():
            got = layer(x)
            want = torch.nn.functional.linear(x, layer.weight, layer.bias)
        assert got.shape == want.shape
        assert torch.allclose(got, want, atol=1e-5, rtol=1e-5)
    assert layer in cm._PACKED  # the small calls really used the packed weight


def test_gradients_take_the_default_path():
    layer = _layer(bias=False)
    x = torch.randn(4, 32, requires_grad=True)
    layer(x).sum().backward()
    assert x.grad is not None and torch.allclose(x.grad, layer.weight.sum(0).expand(4, -1), atol=1e-6)
    assert layer not in cm._PACKED


def test_a_changed_weight_is_packed_again():
    layer = _layer()
    x = torch.randn(2, 32)
    with torch.no_grad():
        layer(x)
        layer.weight.data += 0.5  # a `.data` write (as a LoRA merge does) bumps no version counter
        got = layer(x)
        assert torch.allclose(got, torch.nn.functional.linear(x, layer.weight, layer.bias), atol=1e-5)
        layer.weight.add_(1.0)  # an in-place update (optimizer step)
        got = layer(x)
        assert torch.allclose(got, torch.nn.functional.linear(x, layer.weight, layer.bias), atol=1e-5)


def test_apply_modes_and_greedy_generation_on_the_tiny_model():
    model, tok = tiny_random_model(seed=0)
    n_linear = sum(type(m) is torch.nn.Linear for m in model.modules())
    assert cm.apply(model, "default") == 0
    ids = tok(["hello world, book a table"], return_tensors="pt")
    with torch.no_grad():
        before = model.generate(**ids, max_new_tokens=16, do_sample=False, pad_token_id=tok.pad_token_id)
    assert cm.apply(model, "onednn") == n_linear > 0
    with torch.no_grad():
        after = model.generate(**ids, max_new_tokens=16, do_sample=False, pad_token_id=tok.pad_token_id)
    assert torch.equal(before, after)
    assert cm.apply(model, "onednn") == 0  # already switched: nothing left to switch
    faster, default_ms, onednn_ms = cm.onednn_faster(model, repeats=1)
    assert isinstance(faster, bool) and default_ms > 0 and onednn_ms > 0


def test_bf16_models_are_left_alone():
    model, _ = tiny_random_model(seed=0)
    model = model.to(torch.bfloat16)
    assert cm.apply(model, "onednn") == 0


def test_eval_fingerprint_names_the_kernel():
    """Rows decoded with oneDNN and with the default BLAS round differently: an eval folder records which."""
    from types import SimpleNamespace

    from toolr0.eval.fingerprint import FINGERPRINT_KEYS
    from toolr0.eval.runner import matmul_kernel

    model, _ = tiny_random_model(seed=0)
    assert "matmul" in FINGERPRINT_KEYS
    assert matmul_kernel(SimpleNamespace(model=model)) == "default"
    cm.apply(model, "onednn")
    assert matmul_kernel(SimpleNamespace(model=model)) == "onednn"
    assert matmul_kernel(None) is None


def test_auto_leaves_toy_models_alone():
    model, _ = tiny_random_model(seed=0)
    assert (
        max(m.weight.numel() for m in model.modules() if isinstance(m, torch.nn.Linear)) < cm.AUTO_MIN_WEIGHT
    )
    assert cm.apply(model, "auto") == 0


int8_only = pytest.mark.skipif(not cm.int8_available(), reason="torch built without quantized CPU linear ops")


@int8_only
def test_int8_runs_only_inside_sampling_and_without_gradients():
    """int8 is for our samplers: outside ``sampling()`` (TRL rollouts) and with gradients, calls stay fp32."""
    torch.manual_seed(0)
    layer = torch.nn.Linear(64, 48)
    ref = torch.nn.Linear(64, 48)
    ref.load_state_dict(layer.state_dict())
    model = torch.nn.Sequential(layer)
    assert cm.apply(model, "int8") == 1 and cm.kernel(model) == "int8"
    x = torch.randn(3, 5, 64)  # 15 rows, 3-D: reshaped for the quantized op and back
    with torch.no_grad():
        want = ref(x)
        outside = layer(x)
        with cm.sampling():
            inside = layer(x)
    assert torch.allclose(outside, want, atol=1e-5)  # fp32 (oneDNN) path
    assert layer in cm._PACKED_INT8 and inside.shape == want.shape
    assert not torch.allclose(inside, want, atol=1e-6)  # really quantized ...
    assert torch.allclose(inside, want, atol=0.05 * want.abs().max().item())  # ... and close
    with cm.sampling():
        xg = torch.randn(2, 64, requires_grad=True)
        layer(xg).sum().backward()  # a gradient call inside sampling() still takes the fp32 path
    assert torch.allclose(xg.grad, ref.weight.sum(0).expand(2, -1), atol=1e-6)


@int8_only
def test_int8_leaves_the_down_projection_in_fp32_and_follows_weight_changes():
    torch.manual_seed(0)
    model = torch.nn.ModuleDict({"up_proj": torch.nn.Linear(32, 64), "down_proj": torch.nn.Linear(64, 32)})
    assert cm.apply(model, "int8") == 2
    assert model["up_proj"] in cm._INT8 and model["down_proj"] not in cm._INT8
    x = torch.randn(4, 64)
    with torch.no_grad(), cm.sampling():
        exact = model["down_proj"](x)
        assert torch.allclose(
            exact,
            torch.nn.functional.linear(x, model["down_proj"].weight, model["down_proj"].bias),
            atol=1e-5,
        )
        up = model["up_proj"]
        y = torch.randn(4, 32)
        up(y)
        up.weight.data *= 2.0  # a LoRA merge writes .data: the int8 copy is made again
        want = torch.nn.functional.linear(y, up.weight, up.bias)
        assert torch.allclose(up(y), want, atol=0.05 * want.abs().max().item())


@int8_only
def test_int8_sampler_generates_and_the_eval_records_the_kernel():
    from types import SimpleNamespace

    from toolr0.eval.runner import matmul_kernel
    from toolr0.inference.base import SamplingParams
    from toolr0.inference.hf import HFSampler

    model, tok = tiny_random_model(seed=0)
    cm.apply(model, "int8")
    assert matmul_kernel(SimpleNamespace(model=model)) == "int8"
    sampler = HFSampler(model, tok, batch_size=2)
    out = sampler.generate(
        [[{"role": "user", "content": "hi"}], [{"role": "user", "content": "book a table"}]],
        SamplingParams(max_new_tokens=6, temperature=0.0),
    )
    assert len(out) == 2 and all(len(c) == 1 for c in out)
    assert any(layer in cm._PACKED_INT8 for layer in model.modules())  # the sampler really ran int8


def test_unknown_mode_is_refused():
    model, _ = tiny_random_model(seed=0)
    with pytest.raises(ValueError, match="cpu_matmul"):
        cm.apply(model, "int4")
