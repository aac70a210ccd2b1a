"""Config sections owned by the inference layer: `model` (which weights, device, dtype, threads) and `inference`
(which sampling backend and its knobs). Pure pydantic, default-constructible, no engine imports."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class ModelConfig(BaseModel):
    """Which model to load and how."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(
        "default",
        description='"default" (packaged Qwen2.5-Coder-0.5B-Instruct, fetched offline), a locally cached '
        "Hugging Face id, a model folder, or a LoRA adapter folder.",
    )
    device: str = Field(
        "auto",
        pattern=r"^(auto|cpu|cuda|cuda:\d+)$",
        description="Where models run: auto (CUDA when present, else CPU), cpu, cuda (this process's GPU "
        "under a launcher) or cuda:N. Decided in toolr0.inference.device.",
    )
    dtype: Literal["auto", "bf16", "fp32"] = Field(
        "auto",
        description="Weights/compute dtype. auto: bf16 on a GPU or a CPU with AMX/AVX512-BF16, else fp32.",
    )
    threads: int | None = Field(
        None, ge=1, description="torch intra-op threads on CPU (None: keep OMP_NUM_THREADS / torch default)."
    )
    cpu_matmul: Literal["auto", "onednn", "default", "int8"] = Field(
        "auto",
        description="fp32 CPU models: decode-sized matmuls through oneDNN (onednn), the default BLAS (default), "
        "or whichever a one-off timing on this CPU finds faster (auto); int8: onednn, and our samplers "
        "(not TRL rollouts) run dynamically quantized int8 matmuls (faster, changes outputs). "
        "toolr0.inference.cpu_matmul.",
    )
    cpu_attention: Literal["default", "grouped"] = Field(
        "default",
        description="CPU models with grouped-query heads: transformers' SDPA (default) or one-token decode steps "
        "without repeating the KV cache (grouped; 1.9x per batch-32 decode step and 1.17x on the quickstart's "
        "candidates, but its GRPO steps ran 2.5x slower under the custom attention name, so a whole quickstart was "
        "slower, bench/RESULTS.md). toolr0.inference.attention.",
    )


class InferenceConfig(BaseModel):
    """Which sampling backend serves the Generator/Solver rollouts outside TRL, and its knobs."""

    model_config = ConfigDict(extra="forbid")

    backend: Literal["hf", "vllm", "openai"] = Field(
        "hf",
        description="hf: in-process transformers (CPU default); vllm: offline vLLM (GPU); "
        "openai: any OpenAI-compatible HTTP server (e.g. `vllm serve`).",
    )
    base_url: str = Field(
        "http://127.0.0.1:8000/v1", description="openai backend: server root including /v1."
    )
    api_key_env: str = Field(
        "OPENAI_API_KEY",
        description="openai backend: environment variable holding the API key (may be unset).",
    )
    served_model: str | None = Field(
        None,
        description="openai backend: the `model` field sent when no adapter is selected "
        "(None: the first id listed by /v1/models).",
    )
    timeout_s: float = Field(600.0, gt=0, description="openai backend: per-request timeout in seconds.")
    service_max_failures: int = Field(
        3,
        ge=0,
        description="Failed frozen-Solver calls in a row (curriculum reward) that stop the phase with an error "
        "naming the server (0: only warn and score the missing terms 0, the behaviour before this knob).",
    )
    batch_size: int = Field(
        8, ge=1, description="hf backend: prompts per generate() call (each expanded to n sequences)."
    )
    max_batch_sequences: int = Field(
        64, ge=1, description="hf backend: cap on prompts×n sequences decoded together (memory bound)."
    )
    sort_by_length: bool = Field(
        True, description="hf backend: group prompts of similar length to cut padding."
    )
    merge_lora: bool = Field(
        False,
        description="hf backend: sample a named LoRA adapter (roles.mode lora: the Generator's candidates, the "
        "frozen Solver's samples) from a copy of the model with that adapter merged in, made again when the "
        "adapter's weights change, instead of through PEFT's unmerged layers. Costs the weights once more in "
        "memory; outputs differ by rounding only. Never used by TRL's rollouts.",
    )
    gpu_memory_utilization: float = Field(0.85, gt=0, le=1, description="vllm backend: share of GPU memory.")
    enable_prefix_caching: bool = Field(True, description="vllm backend: reuse KV of shared prompt prefixes.")
    max_lora_rank: int = Field(64, ge=1, description="vllm backend: largest LoRA rank served.")
    tensor_parallel_size: int = Field(1, ge=1, description="vllm backend: GPUs per model.")
