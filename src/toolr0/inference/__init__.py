"""Inference layer: model resolution/loading and sampling backends behind one `Sampler` interface.

Submodules import torch/transformers lazily; importing this package is cheap."""

from __future__ import annotations

from typing import Any


def build_sampler(model_cfg: Any = None, inference_cfg: Any = None, **kwargs: Any) -> Any:
    """The configured backend (`inference.backend`: hf / vllm / openai) for `model`."""
    from toolr0.inference.config import InferenceConfig, ModelConfig

    model_cfg = model_cfg or ModelConfig()
    inference_cfg = inference_cfg or InferenceConfig()
    if inference_cfg.backend == "hf":
        from toolr0.inference.hf import HFSampler

        return HFSampler.from_config(model_cfg, inference_cfg, **kwargs)
    if inference_cfg.backend == "openai":
        from toolr0.inference.openai_backend import OpenAISampler

        return OpenAISampler.from_config(inference_cfg, **kwargs)
    from toolr0.inference.vllm_backend import VLLMSampler

    return VLLMSampler.from_config(model_cfg, inference_cfg)
