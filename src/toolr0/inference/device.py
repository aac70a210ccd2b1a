"""The one place that decides where models run (device) and in which dtype.

`resolve_device("auto")` is CUDA when torch reports it, else CPU; under a distributed launcher
(`accelerate launch`, torchrun: `LOCAL_RANK` set) each process takes its own local GPU, and
`accelerate launch --cpu` means CPU. `cuda:N` picks a
GPU explicitly. `resolve_dtype` and `resolve_precision` follow the chosen device, so a CPU run on a GPU
host gets CPU rules. Model loading, every sampler, the frozen Solver, evaluation and the trainer arguments
all call these functions (tests monkeypatch `torch.cuda.is_available` to check that).
"""

from __future__ import annotations

import logging
import os
import re
from pathlib import Path
from typing import Any

from toolr0.errors import ConfigError

log = logging.getLogger(__name__)

DEVICE_RE = re.compile(r"^(auto|cpu|cuda|cuda:\d+)$")
DEVICE_HELP = "auto (CUDA when present, else CPU), cpu, cuda (this process's GPU) or cuda:N."


def check_device(pref: str) -> str:
    """`pref` if it is a valid device setting, else a one-line ConfigError."""
    if not isinstance(pref, str) or not DEVICE_RE.match(pref):
        raise ConfigError(f"device must be {DEVICE_HELP.rstrip('.')}; got {pref!r}")
    return pref


def cuda_available() -> bool:
    try:
        import torch
    except ImportError:
        return False
    return bool(torch.cuda.is_available())


def local_rank() -> int | None:
    """This process's rank on its node under a distributed launcher, else None."""
    value = os.environ.get("LOCAL_RANK")
    return int(value) if value and value.isdigit() else None


def resolve_device(pref: str = "auto") -> str:
    """ "cpu" or "cuda:N" for a device setting (see module docstring)."""
    pref = check_device(pref)
    if pref == "cpu":
        return "cpu"
    if pref == "auto" and os.environ.get("ACCELERATE_USE_CPU", "").lower() in ("true", "1", "yes"):
        return "cpu"  # `accelerate launch --cpu`: the trainer runs on the CPU, so do the models
    has_cuda = cuda_available()
    if pref == "auto" and not has_cuda:
        log.info("device auto: cpu (no CUDA device visible)")
        return "cpu"
    if not has_cuda:
        raise ConfigError(f"device {pref} requested but torch sees no CUDA device (use --device cpu or auto)")
    import torch

    count = torch.cuda.device_count()
    index = int(pref.split(":", 1)[1]) if ":" in pref else (local_rank() or 0)
    if index >= count:
        raise ConfigError(f"device cuda:{index} requested but only {count} CUDA device(s) are visible")
    device = f"cuda:{index}"
    log.info("device %s: %s", pref, device)
    return device


def is_cuda(device: str) -> bool:
    return device.startswith("cuda")


def cpu_supports_bf16() -> bool:
    """True when the CPU has AMX-BF16 or AVX512-BF16 (bf16 matmuls are then fast)."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    flags = set()
    for line in text.splitlines():
        if line.startswith("flags"):
            flags = set(line.split(":", 1)[1].split())
            break
    return bool(flags & {"amx_bf16", "avx512_bf16"})


def _cuda_bf16(device: str) -> bool:
    """Whether the GPU of `device` has bf16; a GPU device resolved on a host without CUDA (a dry run)
    is assumed to have it."""
    if not cuda_available():
        return True
    import torch

    index = int(device.split(":", 1)[1]) if ":" in device else 0
    major, _ = torch.cuda.get_device_capability(index)
    return major >= 8


def resolve_precision(pref: str, device: str) -> str:
    """ "bf16" | "fp16" | "fp32" for a precision setting on `device`; auto is logged.

    auto: bf16 on a GPU with bf16 (compute capability >= 8), fp16 on older GPUs, bf16 on a CPU with
    AMX/AVX512-BF16, else fp32."""
    if pref not in ("auto", "bf16", "fp16", "fp32"):
        raise ConfigError(f"precision must be auto, bf16, fp16 or fp32, got {pref!r}")
    if pref != "auto":
        return pref
    if is_cuda(device):
        choice = "bf16" if _cuda_bf16(device) else "fp16"
        log.info("precision auto: %s (%s)", choice, device)
        return choice
    choice = "bf16" if cpu_supports_bf16() else "fp32"
    log.info("precision auto: %s (CPU %s AMX/AVX512-BF16)", choice, "has" if choice == "bf16" else "lacks")
    return choice


def resolve_dtype(pref: str, device: str) -> Any:
    """torch dtype for a weights dtype setting ("auto"/"bf16"/"fp32") on `device`."""
    import torch

    if pref not in ("auto", "bf16", "fp32"):
        raise ConfigError(f"dtype must be auto, bf16 or fp32, got {pref!r}")
    choice = resolve_precision(pref, device)
    return {"bf16": torch.bfloat16, "fp16": torch.float16, "fp32": torch.float32}[choice]


def distributed_engine() -> str | None:
    """ "deepspeed" / "fsdp" when `accelerate launch` set one up for this process, else None. Under them the
    trainer places (and shards) the trained model itself, so it is loaded on the CPU first."""
    if os.environ.get("ACCELERATE_USE_DEEPSPEED", "").lower() == "true":
        return "deepspeed"
    if os.environ.get("ACCELERATE_USE_FSDP", "").lower() == "true":
        return "fsdp"
    return None


def world_size() -> int:
    """Processes in this training job (`WORLD_SIZE` set by the launcher; 1 without one)."""
    value = os.environ.get("WORLD_SIZE", "1")
    return int(value) if value.isdigit() and int(value) > 0 else 1


def pin_training_gpu(pref: str, environ: dict[str, str] | None = None) -> str:
    """Make a single-process training run see exactly one GPU; returns the device setting to use after.

    transformers' Trainer trains on the first visible GPU and TRL refuses several (no `nn.DataParallel`),
    so `cuda:N` (or auto/cuda with several GPUs visible) is turned into `CUDA_VISIBLE_DEVICES` before CUDA
    starts. Under a distributed launcher (LOCAL_RANK set) nothing changes. Pure: reads and edits `environ`
    (default `os.environ`) and never initialises CUDA."""
    env = os.environ if environ is None else environ
    pref = check_device(pref)
    if pref == "cpu" or env.get("LOCAL_RANK"):
        return pref
    visible = [v for v in env.get("CUDA_VISIBLE_DEVICES", "").split(",") if v.strip()]
    if ":" in pref:
        index = int(pref.split(":", 1)[1])
        if visible and index >= len(visible):
            raise ConfigError(f"device {pref}: CUDA_VISIBLE_DEVICES lists only {len(visible)} GPU(s)")
        env["CUDA_VISIBLE_DEVICES"] = visible[index] if visible else str(index)
        return "cuda:0"
    if len(visible) > 1:
        env["CUDA_VISIBLE_DEVICES"] = visible[0]
    elif not visible and "CUDA_VISIBLE_DEVICES" not in env:
        env["CUDA_VISIBLE_DEVICES"] = "0"  # an empty value would hide every GPU: only set when unset
    return pref


def place(model: Any, device: str) -> Any:
    """Move `model` to `device` (a no-op for CPU models staying on the CPU, and for a model DeepSpeed ZeRO-3
    partitioned as it loaded: DeepSpeed places its shards)."""
    if any(hasattr(p, "ds_id") for p in model.parameters()):
        return model
    current = getattr(model, "device", None)
    if current is not None and str(current) == device:
        return model
    return model.to(device)


def release_accelerator_memory() -> None:
    """Collect garbage and hand cached CUDA memory back (after an engine or a model was dropped), so that the
    next engine or phase of this process finds the GPU free. A no-op without torch or CUDA."""
    import gc

    gc.collect()
    try:
        import torch
    except ImportError:
        return
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
