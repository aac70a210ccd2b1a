"""Shared pytest fixtures: a tiny random chat model built in code (no download) and saved as an HF folder."""

from __future__ import annotations

import os

import pytest

os.environ.setdefault("OMP_NUM_THREADS", "2")


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
