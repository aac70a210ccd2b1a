"""Shared pytest fixtures (a tiny random chat model built in code, no download, saved as an HF folder) and the
hypothesis profile."""

from __future__ import annotations

import os

import pytest
from hypothesis import settings

os.environ.setdefault("OMP_NUM_THREADS", "2")

# No wall-clock deadline on property tests: on a 2-core machine shared with other jobs, a per-example timing
# limit fails tests for the machine's load, not for the code (speed lives in bench/, not in unit tests).
settings.register_profile("toolr0", deadline=None)
settings.load_profile("toolr0")


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory):
    """Path of a saved tiny Qwen2-style model + tokenizer (chat template, pad, eos); loadable by path."""
    pytest.importorskip("torch")
    pytest.importorskip("transformers")
    from toolr0.inference.models import save_tiny_model

    return save_tiny_model(tmp_path_factory.mktemp("tiny_model") / "model")


@pytest.fixture(scope="session")
def tiny_model_and_tokenizer():
    """(model, tokenizer) of the tiny random model, built once per session (treat as read-only)."""
    pytest.importorskip("torch")
    pytest.importorskip("transformers")
    from toolr0.inference.models import tiny_random_model

    return tiny_random_model(seed=0)


@pytest.fixture(scope="module")
def torch_one_thread():
    """Run a module's tiny-model tests on one torch thread (restored after): tiny matmuls gain nothing
    from threads, and on a shared, loaded CPU two spinning threads made them ~6x slower (measured)."""
    torch = pytest.importorskip("torch")
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def tiny_adapter_dir(tiny_model_dir, tmp_path_factory):
    """A saved LoRA adapter on the tiny model whose B matrices are non-zero (a fresh adapter is the identity)."""
    import json

    import torch
    from peft import LoraConfig, get_peft_model

    from toolr0.inference.models import tiny_random_model

    out = tmp_path_factory.mktemp("tiny_adapter") / "adapter"
    base, _ = tiny_random_model(seed=0)
    peft_model = get_peft_model(base, LoraConfig(r=2, target_modules=["q_proj", "v_proj"]))
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for name, p in peft_model.named_parameters():
            if "lora_B" in name:
                p.copy_(torch.randn(p.shape, generator=g) * 0.5)
    peft_model.save_pretrained(out)
    cfg = json.loads((out / "adapter_config.json").read_text())
    cfg["base_model_name_or_path"] = str(tiny_model_dir)
    (out / "adapter_config.json").write_text(json.dumps(cfg))
    return out
