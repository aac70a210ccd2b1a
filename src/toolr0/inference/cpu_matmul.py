"""Decode-sized fp32 matmuls on the CPU through oneDNN instead of the default BLAS (``model.cpu_matmul``).

A decode step multiplies a few rows (the live batch) by every weight matrix. On an AVX2-only AMD EPYC the
default fp32 path (MKL) ran those at 4-16 GFLOP/s; oneDNN's packed linear (the kernel torch.compile's CPU
backend uses) ran the same shapes 2-5x faster, and ~0.85x for prefill-sized inputs (bench/RESULTS.md,
bench/decode_profile.py). So ``nn.Linear`` layers of an fp32 CPU model switch, per call, to oneDNN when the
input has at most ``MAX_ROWS`` rows and no gradient is needed; everything else (prefill, training forward
and backward) stays on the default path. The packed copy of a weight is made on first use and made again
when the weight changes (new storage, an in-place update, or a changed sample of its values, which catches
``.data`` writes such as LoRA merges).

``auto`` times both kernels once per process on the model's largest weight at batch 8 and keeps oneDNN only
where it is faster (models whose largest weight is under ``AUTO_MIN_WEIGHT``, such as the tests' tiny model,
stay on the default path). Results differ from the default kernel by float rounding only; ``default`` switches it
off.

``int8`` (opt-in; changes outputs): as ``onednn``, and in addition every gradient-free call made inside
:func:`sampling` (our samplers: candidates, pass@K, cross-verification, judging, evaluation; not TRL's rollouts,
which stay fp32 so the policy that samples is the one that is trained) runs as a dynamically quantized int8
matmul (fbgemm / x86: weights int8 per output channel, activations int8 per call), prefill included. On the AVX2
EPYC it ran decode-sized shapes of the default model 3-5x and prefill-sized ones ~2x faster than oneDNN fp32
(bench/RESULTS.md); what it does to answers is measured there too, paired against fp32. Layers named in
``INT8_SKIP`` stay fp32: the MLP's down projection reads the outlier activations of Qwen/Llama-style models, and
quantizing it per call turned the default model's tool calls into prose (next-token agreement 84-93 % with it,
93-100 % without it, on four chat prompts).
"""

from __future__ import annotations

import contextlib
import contextvars
import logging
import time
import warnings
import weakref
from collections.abc import Iterator
from typing import Any

log = logging.getLogger(__name__)

MAX_ROWS = 64  # above this (prefill), the default kernel was as fast or faster (measured crossover ~100-600)
AUTO_MIN_WEIGHT = 1 << 20  # auto leaves models whose largest linear weight is smaller than this alone
_PACKED: weakref.WeakKeyDictionary[Any, tuple[tuple[Any, ...], Any]] = weakref.WeakKeyDictionary()
_PACKED_INT8: weakref.WeakKeyDictionary[Any, tuple[tuple[Any, ...], Any]] = weakref.WeakKeyDictionary()
_CLASS: type | None = None
_INT8: weakref.WeakSet[Any] = weakref.WeakSet()  # layers switched with mode int8
_SAMPLING: contextvars.ContextVar[bool] = contextvars.ContextVar("toolr0_cpu_matmul_sampling", default=False)
MODES = ("auto", "onednn", "default", "int8")
INT8_SKIP = ("down_proj",)  # module-name suffixes int8 leaves in fp32 (see the module docstring)


@contextlib.contextmanager
def sampling() -> Iterator[None]:
    """Gradient-free calls made inside this block may use int8 (layers switched with mode ``int8`` only)."""
    token = _SAMPLING.set(True)
    try:
        yield
    finally:
        _SAMPLING.reset(token)


def int8_available() -> bool:
    """Whether this torch build has the quantized CPU linear ops (fbgemm / x86 engine)."""
    try:
        import torch

        return hasattr(torch.ops.quantized, "linear_dynamic") and any(
            e in torch.backends.quantized.supported_engines for e in ("x86", "fbgemm")
        )
    except Exception:  # noqa: BLE001 - any import/attribute problem means "not available"
        return False


def available() -> bool:
    """Whether this torch build has oneDNN's packed linear ops."""
    try:
        import torch

        return bool(torch.backends.mkldnn.is_available()) and hasattr(torch.ops.mkldnn, "_linear_pointwise")
    except Exception:  # noqa: BLE001 - any import/attribute problem means "not available"
        return False


def _key(weight: Any) -> tuple[Any, ...]:
    flat = weight.detach().reshape(-1)
    step = max(1, flat.numel() // 61)
    return (weight.data_ptr(), weight._version, tuple(weight.shape), flat[::step][:64].sum().item())


def _packed(layer: Any) -> Any:
    import torch

    key = _key(layer.weight)
    hit = _PACKED.get(layer)
    if hit is not None and hit[0] == key:
        return hit[1]
    packed = torch.ops.mkldnn._reorder_linear_weight(layer.weight.detach(), 8)
    _PACKED[layer] = (key, packed)
    return packed


def _packed_int8(layer: Any) -> Any:
    """The layer's weight quantized to int8 per output channel (symmetric) and packed with its bias."""
    import torch

    key = _key(layer.weight)
    hit = _PACKED_INT8.get(layer)
    if hit is not None and hit[0] == key:
        return hit[1]
    w = layer.weight.detach()
    scales = (w.abs().amax(dim=1).clamp_min(1e-8) / 127.0).double()
    zeros = torch.zeros(w.shape[0], dtype=torch.long)
    # torch marks its quantized-tensor API deprecated; it is still what the fbgemm / x86 int8 kernels take
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        qw = torch.quantize_per_channel(w, scales, zeros, axis=0, dtype=torch.qint8)
    bias = None if layer.bias is None else layer.bias.detach()
    packed = torch.ops.quantized.linear_prepack(qw, bias)
    _PACKED_INT8[layer] = (key, packed)
    return packed


def _int8_linear(layer: Any, x: Any) -> Any:
    import torch

    flat = x.reshape(-1, x.shape[-1]).contiguous()
    # reduce_range: 7-bit activations, which the x86 int8 kernels need to avoid overflow (as quantize_dynamic)
    y = torch.ops.quantized.linear_dynamic(flat, _packed_int8(layer), True)
    return y.reshape(*x.shape[:-1], y.shape[-1])


def _linear_class() -> type:
    global _CLASS
    if _CLASS is None:
        import torch

        class OneDNNDecodeLinear(torch.nn.Linear):
            """``nn.Linear`` whose small, gradient-free fp32 CPU calls run through oneDNN's packed linear."""

            def forward(self, x: torch.Tensor) -> torch.Tensor:
                w = self.weight
                if (
                    x.dtype != torch.float32
                    or w.dtype != torch.float32
                    or x.device.type != "cpu"
                    or w.device.type != "cpu"
                    or x.dim() == 0
                    or (torch.is_grad_enabled() and (x.requires_grad or w.requires_grad))
                ):
                    return torch.nn.functional.linear(x, w, self.bias)
                if self in _INT8 and _SAMPLING.get() and x.numel():
                    return _int8_linear(self, x)
                if x.numel() // max(1, x.shape[-1]) > MAX_ROWS:
                    return torch.nn.functional.linear(x, w, self.bias)
                bias = None if self.bias is None else self.bias.detach()
                return torch.ops.mkldnn._linear_pointwise(x, _packed(self), bias, "none", [], "")

        OneDNNDecodeLinear.__module__ = __name__  # findable by pickle once made
        globals()["OneDNNDecodeLinear"] = _CLASS = OneDNNDecodeLinear
    return _CLASS


def switched(model: Any) -> int:
    """How many layers of ``model`` run their decode matmuls through oneDNN (0: none, or not a torch model)."""
    if not hasattr(model, "modules"):
        return 0
    return sum(_CLASS is not None and isinstance(m, _CLASS) for m in model.modules())


def kernel(model: Any) -> str | None:
    """'int8', 'onednn' or 'default': how the model's gradient-free CPU matmuls run; None without a model."""
    if not hasattr(model, "modules"):
        return None
    if any(m in _INT8 for m in model.modules()):
        return "int8"
    return "onednn" if switched(model) else "default"


def onednn_faster(model: Any, rows: int = 8, repeats: int = 3) -> tuple[bool, float, float]:
    """(oneDNN faster?, default ms, oneDNN ms) for the model's largest fp32 linear weight at ``rows`` rows."""
    import torch

    linears = [m for m in model.modules() if isinstance(m, torch.nn.Linear)]
    if not linears:
        return False, 0.0, 0.0
    w = max((m.weight for m in linears), key=lambda t: t.numel()).detach()
    x = torch.randn(rows, w.shape[1], dtype=w.dtype)
    packed = torch.ops.mkldnn._reorder_linear_weight(w, rows)

    def best(fn: Any) -> float:
        fn()
        times = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            fn()
            times.append(time.perf_counter() - t0)
        return min(times) * 1000

    with torch.no_grad():
        default = best(lambda: torch.nn.functional.linear(x, w))
        onednn = best(lambda: torch.ops.mkldnn._linear_pointwise(x, packed, None, "none", [], ""))
    return onednn < default, default, onednn


def apply(model: Any, mode: str = "auto") -> int:
    """Switch the fp32 CPU ``nn.Linear`` layers of ``model`` per ``mode`` (auto / onednn / default / int8);
    returns how many layers were switched (0 when off, not fp32 on the CPU, or oneDNN is not available)."""
    if mode not in MODES:
        raise ValueError(f"cpu_matmul must be one of {MODES}, not {mode!r}")
    if mode == "default" or not available():
        return 0
    import torch

    named = [
        (name, m)
        for name, m in model.named_modules()
        if type(m) is torch.nn.Linear and m.weight.dtype == torch.float32 and m.weight.device.type == "cpu"
    ]
    if mode == "int8" and not int8_available():
        log.warning("cpu_matmul int8: this torch has no quantized CPU linear ops; using auto")
        mode = "auto"
    linears = [m for _, m in named]
    if not linears:
        return 0
    if mode == "auto":
        if max(m.weight.numel() for m in linears) < AUTO_MIN_WEIGHT:
            return 0  # a toy model: per-call overhead outweighs any kernel gain
        faster, default_ms, onednn_ms = onednn_faster(model)
        log.info(
            "cpu_matmul auto: largest weight at batch 8: default %.1f ms, oneDNN %.1f ms -> %s",
            default_ms,
            onednn_ms,
            "oneDNN" if faster else "default",
        )
        if not faster:
            return 0
    cls = _linear_class()
    for name, m in named:
        m.__class__ = cls
        if mode == "int8" and not name.endswith(INT8_SKIP):
            _INT8.add(m)
    return len(linears)
