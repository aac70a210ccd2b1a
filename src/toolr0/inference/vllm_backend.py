"""vLLM offline sampling backend (GPU; optional extra `toolr0[vllm]`).

Prefix caching is on (the n samples of a prompt, and prompts sharing a system prompt, reuse KV).
LoRA adapters are passed per call as `LoRARequest`s registered with `add_adapter(name, path)`.
vLLM is imported only when this backend is constructed; without it a clear `ToolR0Error` is raised.
"""

from __future__ import annotations

from typing import Any

from toolr0.core.solver_format import split_tools
from toolr0.errors import ToolR0Error
from toolr0.inference.base import (
    BaseSampler,
    Completion,
    GenerationResult,
    GenerationStats,
    Messages,
    SamplingParams,
    cut_at_stop,
)


def import_vllm() -> Any:
    try:
        import vllm
    except ImportError:
        raise ToolR0Error(
            "the vllm backend needs vLLM on a CUDA machine: pip install 'toolr0[vllm]' "
            "(or use inference.backend: hf / openai)"
        ) from None
    return vllm


def vllm_sampling_kwargs(params: SamplingParams) -> dict[str, Any]:
    """Our SamplingParams as keyword arguments of `vllm.SamplingParams`."""
    kw: dict[str, Any] = {
        "n": params.n,
        "temperature": 0.0 if params.greedy else params.temperature,
        "top_p": params.top_p,
        "top_k": params.top_k if params.top_k > 0 else -1,
        "max_tokens": params.max_new_tokens,
        "seed": params.seed,
        "repetition_penalty": params.repetition_penalty,
        "include_stop_str_in_output": True,
    }
    if params.stop:
        kw["stop"] = list(params.stop)
    return kw


class VLLMSampler(BaseSampler):
    """`vllm.LLM` wrapped in the `Sampler` interface."""

    def __init__(
        self,
        model: str,
        *,
        dtype: str = "auto",
        gpu_memory_utilization: float = 0.85,
        enable_prefix_caching: bool = True,
        max_lora_rank: int = 64,
        tensor_parallel_size: int = 1,
        enable_lora: bool = True,
        max_model_len: int | None = 4096,
        llm: Any = None,
    ) -> None:
        super().__init__()
        self.vllm = import_vllm()
        self.checkpoint_id = str(model)
        self._adapters: dict[str, tuple[int, str]] = {}
        self.llm = llm or self.vllm.LLM(
            model=str(model),
            dtype={"bf16": "bfloat16", "fp32": "float32"}.get(dtype, dtype),
            gpu_memory_utilization=gpu_memory_utilization,
            enable_prefix_caching=enable_prefix_caching,
            enable_lora=enable_lora,
            max_lora_rank=max_lora_rank,
            tensor_parallel_size=tensor_parallel_size,
            max_model_len=max_model_len,
        )

    @classmethod
    def from_config(cls, model_cfg: Any, inference_cfg: Any) -> VLLMSampler:
        from toolr0.inference.models import resolve_model

        return cls(
            str(resolve_model(model_cfg.name)),
            dtype=model_cfg.dtype,
            gpu_memory_utilization=inference_cfg.gpu_memory_utilization,
            enable_prefix_caching=inference_cfg.enable_prefix_caching,
            max_lora_rank=inference_cfg.max_lora_rank,
            tensor_parallel_size=inference_cfg.tensor_parallel_size,
        )

    def close(self) -> None:
        """Tear the engine down so that its GPU memory is free for what runs next in this process: shut the
        engine core down (vLLM v1 runs it in a child process), destroy vLLM's model-parallel and distributed
        state, collect, empty the CUDA cache. Idempotent. (Written against vLLM 0.31's API; not yet run on a
        GPU: the tests use a fake engine.)"""
        llm, self.llm = self.llm, None
        if llm is None:
            return
        engine = getattr(llm, "llm_engine", None)
        for owner in (getattr(engine, "engine_core", None), engine, llm):
            shutdown = getattr(owner, "shutdown", None)
            if callable(shutdown):
                shutdown()
                break
        del llm, engine
        try:
            from vllm.distributed.parallel_state import (
                destroy_distributed_environment,
                destroy_model_parallel,
            )

            destroy_model_parallel()
            destroy_distributed_environment()
        except Exception:  # noqa: BLE001 - no vLLM (a fake in the tests) or nothing initialised
            pass
        from toolr0.inference.device import release_accelerator_memory

        release_accelerator_memory()

    def add_adapter(self, name: str, path: str) -> None:
        """Register a LoRA adapter folder under `name` (a new path under an old name reloads it)."""
        self._adapters[name] = (len(self._adapters) + 1, str(path))

    def _lora(self, adapter: str | None) -> Any:
        if adapter is None:
            return None
        if adapter not in self._adapters:
            raise ToolR0Error(f"unknown adapter {adapter!r}; register it with add_adapter(name, path)")
        from vllm.lora.request import LoRARequest

        idx, path = self._adapters[adapter]
        return LoRARequest(adapter, idx, path)

    def _generate(
        self, prompts: list[Messages], params: SamplingParams, adapter: str | None
    ) -> GenerationResult:
        sp = self.vllm.SamplingParams(**vllm_sampling_kwargs(params))
        split = [split_tools(m) for m in prompts]
        if any(tools for _, tools in split):  # native Solver prompts: each conversation has its own menu
            tok = self.llm.get_tokenizer()
            texts = [
                tok.apply_chat_template(m, tools=t or None, tokenize=False, add_generation_prompt=True)
                for m, t in split
            ]
            outputs = self.llm.generate(texts, sp, lora_request=self._lora(adapter), use_tqdm=False)
        else:
            outputs = self.llm.chat(prompts, sp, lora_request=self._lora(adapter), use_tqdm=False)
        result = GenerationResult(stats=GenerationStats(sequences=len(prompts) * params.n))
        for out in outputs:
            row = []
            result.stats.prompt_tokens += len(out.prompt_token_ids or [])
            for o in out.outputs:
                text, stopped = cut_at_stop(o.text, params.stop)
                reason = "stop" if stopped else ("length" if o.finish_reason == "length" else "eos")
                row.append(Completion(text=text, completion_tokens=len(o.token_ids), finish_reason=reason))
                result.stats.completion_tokens += len(o.token_ids)
            result.completions.append(row)
        return result
