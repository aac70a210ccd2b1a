"""The one device/dtype decision (toolr0.inference.device) and that it reaches model loading, every sampler,
the frozen Solver, evaluation and the trainer arguments. CUDA is simulated by monkeypatching torch.cuda;
moves to a GPU are recorded instead of performed (no GPU here)."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from toolr0.errors import ConfigError  # noqa: E402
from toolr0.inference import device as dev  # noqa: E402


@pytest.fixture
def no_cuda(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.delenv("LOCAL_RANK", raising=False)


@pytest.fixture
def fake_cuda(monkeypatch):
    """torch reports 2 bf16-capable GPUs; `Module.to(<cuda>)` records the device and stays on the CPU."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda index=0: (9, 0))
    monkeypatch.delenv("LOCAL_RANK", raising=False)
    monkeypatch.delenv("ACCELERATE_USE_CPU", raising=False)
    monkeypatch.delenv("ACCELERATE_USE_DEEPSPEED", raising=False)
    moves: list[str] = []
    real_to = torch.nn.Module.to

    def to(self, *args, **kwargs):
        target = kwargs.get("device", args[0] if args else None)
        if target is not None and str(target).startswith("cuda"):
            moves.append(str(target))
            return self
        return real_to(self, *args, **kwargs)

    monkeypatch.setattr(torch.nn.Module, "to", to)
    return moves


def test_resolve_device_without_cuda(no_cuda):
    assert dev.resolve_device("auto") == "cpu"
    assert dev.resolve_device("cpu") == "cpu"
    with pytest.raises(ConfigError, match="no CUDA device"):
        dev.resolve_device("cuda:0")
    for bad in ("gpu", "cuda:x", "CUDA", ""):
        with pytest.raises(ConfigError, match="device must be"):
            dev.resolve_device(bad)


def test_resolve_device_with_cuda(fake_cuda, monkeypatch):
    assert dev.resolve_device("auto") == "cuda:0"
    assert dev.resolve_device("cuda") == "cuda:0"
    assert dev.resolve_device("cuda:1") == "cuda:1"
    assert dev.resolve_device("cpu") == "cpu"  # a CPU run on a GPU host stays possible
    with pytest.raises(ConfigError, match="only 2 CUDA device"):
        dev.resolve_device("cuda:2")
    monkeypatch.setenv("LOCAL_RANK", "1")  # under accelerate launch each process takes its own GPU
    assert dev.resolve_device("auto") == "cuda:1"
    monkeypatch.setenv("ACCELERATE_USE_CPU", "true")  # accelerate launch --cpu: the trainer is on the CPU
    assert dev.resolve_device("auto") == "cpu"


def test_dtype_and_precision_follow_the_device(fake_cuda, monkeypatch):
    monkeypatch.setattr(dev, "cpu_supports_bf16", lambda: False)
    assert dev.resolve_dtype("auto", "cuda:0") == torch.bfloat16
    assert dev.resolve_dtype("auto", "cpu") == torch.float32  # CPU rules on a GPU host
    assert dev.resolve_precision("auto", "cuda:1") == "bf16"
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda index=0: (7, 0))  # V100: no bf16
    assert dev.resolve_precision("auto", "cuda:0") == "fp16"
    assert dev.resolve_dtype("fp32", "cuda:0") == torch.float32
    with pytest.raises(ConfigError, match="dtype must be"):
        dev.resolve_dtype("fp8", "cpu")


def test_pin_training_gpu_is_pure_env_logic():
    env: dict[str, str] = {}
    assert dev.pin_training_gpu("cuda:3", env) == "cuda:0" and env["CUDA_VISIBLE_DEVICES"] == "3"
    env = {"CUDA_VISIBLE_DEVICES": "4,5,6"}
    assert dev.pin_training_gpu("cuda:1", env) == "cuda:0" and env["CUDA_VISIBLE_DEVICES"] == "5"
    env = {"CUDA_VISIBLE_DEVICES": "4,5,6"}
    assert dev.pin_training_gpu("auto", env) == "auto" and env["CUDA_VISIBLE_DEVICES"] == "4"
    env = {"CUDA_VISIBLE_DEVICES": "4,5", "LOCAL_RANK": "1"}  # a launcher placed us: untouched
    assert dev.pin_training_gpu("auto", env) == "auto" and env["CUDA_VISIBLE_DEVICES"] == "4,5"
    env = {"CUDA_VISIBLE_DEVICES": "2"}
    with pytest.raises(ConfigError, match="lists only 1"):
        dev.pin_training_gpu("cuda:1", env)
    env = {}
    assert dev.pin_training_gpu("cpu", env) == "cpu" and env == {}


def test_cuda_reaches_loading_samplers_frozen_solver_eval_and_trainer_args(fake_cuda, tmp_path):
    """With CUDA reported available, the chosen device reaches every consumer."""
    from toolr0.config import config_from_dict
    from toolr0.eval.runner import EvalSettings, build_sampler
    from toolr0.inference import build_sampler as build_inference_sampler
    from toolr0.inference.config import InferenceConfig, ModelConfig
    from toolr0.inference.hf import HFSampler
    from toolr0.inference.models import load_model, save_tiny_model
    from toolr0.training.config import GRPORoleConfig, RolesConfig
    from toolr0.training.frozen import _load_frozen_full_solver
    from toolr0.training.grpo import grpo_config_kwargs
    from toolr0.training.roles import load_role_models

    folder = str(save_tiny_model(tmp_path / "tiny"))

    model, _ = load_model(folder)  # model loading: auto -> cuda:0, bf16
    assert fake_cuda == ["cuda:0"] and model.dtype == torch.bfloat16

    sampler = build_inference_sampler(ModelConfig(name=folder, device="cuda:1"), InferenceConfig())
    assert isinstance(sampler, HFSampler) and fake_cuda[-1] == "cuda:1"  # in-process sampler

    build_sampler(EvalSettings(model=folder, device="cuda:1"), folder)  # evaluation
    assert fake_cuda[-1] == "cuda:1"

    cfg = config_from_dict({"model": {"name": folder}, "roles": {"mode": "full"}})
    n = len(fake_cuda)
    load_role_models(cfg.model, RolesConfig(mode="full"), roles=("solver",))  # trained role
    assert fake_cuda[n:] == ["cuda:0"]
    _load_frozen_full_solver(cfg, None, dev.resolve_device(cfg.model.device))  # frozen Solver
    assert fake_cuda[-1] == "cuda:0" and len(fake_cuda) == n + 2

    kw = grpo_config_kwargs(GRPORoleConfig(), tmp_path, reward_weights=[1, 1])  # trainer arguments
    assert kw["use_cpu"] is False and kw["bf16"] is True and kw["fp16"] is False
    kw = grpo_config_kwargs(GRPORoleConfig(), tmp_path, reward_weights=[1, 1], device="cpu")
    assert kw["use_cpu"] is True


def test_deepspeed_launch_leaves_trained_models_on_cpu(fake_cuda, monkeypatch, tmp_path):
    """Under DeepSpeed/FSDP the trainer shards and places the trained model: loading it onto one GPU first
    would put the whole model on every rank's GPU."""
    from toolr0.inference.config import ModelConfig
    from toolr0.inference.models import save_tiny_model
    from toolr0.training.config import RolesConfig
    from toolr0.training.roles import load_role_models

    folder = str(save_tiny_model(tmp_path / "tiny"))
    monkeypatch.setenv("ACCELERATE_USE_DEEPSPEED", "true")
    load_role_models(ModelConfig(name=folder), RolesConfig(mode="full"), roles=("generator",))
    assert fake_cuda == []


def test_model_config_device_is_validated():
    from pydantic import ValidationError

    from toolr0.inference.config import ModelConfig

    assert ModelConfig(device="cuda:3").device == "cuda:3"
    with pytest.raises(ValidationError):
        ModelConfig(device="gpu0")


class _FakeAccelerator:
    def __init__(self, main: bool, log: list[str]):
        self.is_main_process, self.log = main, log

    def get_state_dict(self, model):
        self.log.append("gather")  # a collective under ZeRO-3: every rank must call it
        return {k: v.clone() for k, v in model.state_dict().items()}

    def wait_for_everyone(self):
        self.log.append("wait")


@pytest.mark.parametrize("main", [True, False])
def test_save_final_gathers_on_every_rank_and_writes_once(tmp_path, main):
    """ZeRO-3-safe export: all ranks gather, only the main process writes, the others wait for it."""
    from types import SimpleNamespace

    from toolr0.inference.models import tiny_random_model
    from toolr0.training.checkpoint import save_final
    from toolr0.training.config import RolesConfig
    from toolr0.training.roles import wrap_roles

    model, tok = tiny_random_model(seed=0)
    rm = wrap_roles(model, tok, RolesConfig(mode="full"), roles=("solver",))
    log: list[str] = []
    trainer = SimpleNamespace(accelerator=_FakeAccelerator(main, log), model_wrapped=rm.model_for("solver"))
    dest = save_final(trainer, rm, "solver", tmp_path / "final")
    assert log == ["gather", "wait"]
    assert (dest / "config.json").is_file() == main and (dest / "model.safetensors").is_file() == main
    if main:
        from safetensors.torch import load_file

        saved = load_file(str(dest / "model.safetensors"))
        name = next(k for k in saved if k.endswith("q_proj.weight"))
        assert torch.equal(saved[name], rm.model_for("solver").state_dict()[name])
