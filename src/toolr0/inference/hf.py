"""In-process transformers sampling backend (the CPU default).

Prompts are chat-templated, sorted by length (less padding), left-padded and decoded in chunks of
`batch_size` prompts. With `n > 1` each prompt is prefilled once and its KV cache expanded to the n
samples (`prefill_once`), instead of prefilling n identical copies as `num_return_sequences` does.
A prompt prefix every row of a chunk shares (the Solver's system prompt) is prefilled once for the chunk and
its KV cache reused (`share_prefix`; rows are laid out prefix, padding, own suffix).
Decoding stops per row on a stop string (kept in the text) or eos; a finished row leaves the batch
(``inference.decode``, ``drop_finished``), with the same tokens as ``generate()`` gives. Seeded per call, so a call is
deterministic for the same inputs. Works with a plain model or a PEFT model holding named adapters
(`adapter=` switches per call, None disables adapters), including a model object owned by a trainer.
With ``merge_lora`` a named adapter is sampled from a merged copy of the model (``inference.merge_lora``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
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
from toolr0.inference.cpu_matmul import sampling as matmul_sampling
from toolr0.inference.decode import generate_dropping, prefill

log = logging.getLogger(__name__)

#: (indices of the chunk's prompts in the call, n) -> list of logits processors for that chunk, or None.
LogitsProcessorFactory = Callable[[list[int], int], list[Any] | None]


def _stop_criteria_cls() -> type:
    from transformers import StoppingCriteria

    class StopOnStrings(StoppingCriteria):
        """Per-row stop: a row is done once any stop string appears in its generated text."""

        def __init__(self, tokenizer: Any, stops: tuple[str, ...], prompt_len: int) -> None:
            import torch

            self.tokenizer = tokenizer
            self.stops = [s for s in stops if s]
            self.prompt_len = prompt_len
            # worst case one byte per token, plus a margin for tokens straddling the start
            self.window = max(len(s.encode("utf-8")) for s in self.stops) + 2
            self.done: torch.Tensor | None = None
            self.stop_step: dict[int, int] = {}

        def __call__(self, input_ids: Any, scores: Any, **kwargs: Any) -> Any:
            import torch

            if self.done is None:
                self.done = torch.zeros(input_ids.shape[0], dtype=torch.bool, device=input_ids.device)
            step = input_ids.shape[1] - self.prompt_len  # tokens generated so far
            start = max(self.prompt_len, input_ids.shape[1] - self.window)
            rows = (~self.done).nonzero().flatten().tolist()
            if rows:
                tails = self.tokenizer.batch_decode(input_ids[rows, start:], skip_special_tokens=False)
                for r, text in zip(rows, tails, strict=True):
                    if any(s in text for s in self.stops):
                        self.done[r] = True
                        self.stop_step[r] = step
            return self.done.clone()

    return StopOnStrings


def render_prompt(tokenizer: Any, messages: Messages) -> str:
    """A conversation as the model's chat-templated prompt text (generation prompt appended); a native Solver
    conversation's menu (``core.solver_format``) goes to the template as ``tools=``."""
    msgs, tools = split_tools(messages)
    return tokenizer.apply_chat_template(
        msgs, tools=tools or None, tokenize=False, add_generation_prompt=True
    )


class HFSampler(BaseSampler):
    """Batched sampling with a transformers causal LM (optionally PEFT-wrapped)."""

    def __init__(
        self,
        model: Any,
        tokenizer: Any,
        *,
        batch_size: int = 8,
        max_batch_sequences: int = 64,
        sort_by_length: bool = True,
        prefill_once: bool = True,
        share_prefix: bool = True,
        drop_finished: bool = True,
        merge_lora: bool = False,
        checkpoint_id: str | None = None,
        logits_processor_factory: LogitsProcessorFactory | None = None,
    ) -> None:
        super().__init__()
        self.model = model
        self.tokenizer = tokenizer
        self.batch_size = batch_size
        self.max_batch_sequences = max_batch_sequences
        self.sort_by_length = sort_by_length
        self.prefill_once = prefill_once
        self.share_prefix = share_prefix
        self.drop_finished = drop_finished
        self.logits_processor_factory = logits_processor_factory
        self.merge_lora = merge_lora
        self._merged: tuple[tuple[Any, ...], Any] | None = None  # (adapter weights key, merged model)
        self.checkpoint_id = checkpoint_id or str(getattr(model, "name_or_path", "") or "in-memory-model")
        if tokenizer.pad_token_id is None:
            tokenizer.pad_token = tokenizer.eos_token
        self.pad_id = int(tokenizer.pad_token_id)
        self.eos_ids = self._eos_ids()

    @classmethod
    def from_pretrained(
        cls,
        name_or_path: str,
        dtype: str = "auto",
        threads: int | None = None,
        merge_adapter: bool = False,
        device: str = "auto",
        cpu_matmul: str = "auto",
        cpu_attention: str = "default",
        **kwargs: Any,
    ) -> HFSampler:
        """Load `name_or_path` ("default", folder, cached HF id, adapter folder) on `device` and wrap it; an
        adapter folder is served as adapter "default", or folded into the base with ``merge_adapter``."""
        from toolr0.inference.models import load_model

        model, tokenizer = load_model(
            name_or_path,
            dtype=dtype,
            threads=threads,
            merge_adapter=merge_adapter,
            device=device,
            cpu_matmul=cpu_matmul,
            cpu_attention=cpu_attention,
        )
        kwargs.setdefault("checkpoint_id", str(name_or_path))
        return cls(model, tokenizer, **kwargs)

    @classmethod
    def from_config(cls, model_cfg: Any, inference_cfg: Any, **kwargs: Any) -> HFSampler:
        return cls.from_pretrained(
            model_cfg.name,
            dtype=model_cfg.dtype,
            threads=model_cfg.threads,
            device=model_cfg.device,
            cpu_matmul=model_cfg.cpu_matmul,
            cpu_attention=model_cfg.cpu_attention,
            batch_size=inference_cfg.batch_size,
            max_batch_sequences=inference_cfg.max_batch_sequences,
            sort_by_length=inference_cfg.sort_by_length,
            **kwargs,
        )

    # ------------------------------------------------------------------------------------------ helpers
    def _eos_ids(self) -> set[int]:
        ids: set[int] = set()
        gc = getattr(self.model, "generation_config", None)
        for src in (getattr(gc, "eos_token_id", None), self.tokenizer.eos_token_id):
            if isinstance(src, int):
                ids.add(src)
            elif isinstance(src, list | tuple):
                ids.update(int(x) for x in src)
        return ids

    def render(self, messages: Messages) -> str:
        """The chat-templated prompt text (generation prompt appended; a native conversation's menu goes to
        the template as ``tools=``)."""
        return render_prompt(self.tokenizer, messages)

    def encode(self, messages: Messages) -> list[int]:
        return self.tokenizer(self.render(messages), add_special_tokens=False)["input_ids"]

    @contextmanager
    def _adapter(self, adapter: str | None) -> Iterator[Any]:
        """The model that samples with ``adapter`` (None: adapters off): the PEFT model with that adapter
        active, or with ``merge_lora`` a merged copy of it."""
        model = self.model
        if not hasattr(model, "peft_config"):
            if adapter is not None:
                raise ToolR0Error(f"adapter {adapter!r} requested but the model has no LoRA adapters")
            yield model
            return
        if adapter is None:
            with model.disable_adapter():
                yield model
            return
        if adapter not in model.peft_config:
            raise ToolR0Error(f"unknown adapter {adapter!r}; loaded: {sorted(model.peft_config)}")
        if self.merge_lora:
            yield self._merged_model(adapter)
            return
        previous = model.active_adapter
        model.set_adapter(adapter)
        try:
            yield model
        finally:
            model.set_adapter(previous)

    def _merged_model(self, adapter: str) -> Any:
        """A plain copy of the model with ``adapter`` folded into its weights, made again whenever one of the
        adapter's tensors was replaced or written in place (training steps, a reloaded checkpoint). One copy is
        kept: the model's weights once more in memory. PEFT's unmerged LoRA layers add two small matmuls per
        projection to every decode step (1.3-1.7x slower sampling on the CPU, bench/RESULTS.md)."""
        import copy

        import torch

        marker = f".{adapter}."
        key = (adapter,) + tuple(
            (id(t), t._version) for n, t in self.model.named_parameters() if "lora_" in n and marker in n
        )
        if self._merged is not None and self._merged[0] == key:
            return self._merged[1]
        self._merged = None  # free the old copy before making the new one
        with torch.no_grad():
            merged = copy.deepcopy(self.model).merge_and_unload(adapter_names=[adapter])
        merged.eval()
        merged.requires_grad_(False)
        self._merged = (key, merged)
        return merged

    def _chunks(self, lengths: list[int], n: int) -> list[list[int]]:
        order = list(range(len(lengths)))
        if self.sort_by_length:
            order.sort(key=lambda i: -lengths[i])  # longest first: memory trouble shows up at once
        per = max(1, min(self.batch_size, self.max_batch_sequences // n))
        return [order[i : i + per] for i in range(0, len(order), per)]

    # --------------------------------------------------------------------------------------- generation
    def _generate(
        self, prompts: list[Messages], params: SamplingParams, adapter: str | None
    ) -> GenerationResult:
        import torch

        encoded = [self.encode(m) for m in prompts]
        result = GenerationResult(completions=[[] for _ in prompts], stats=GenerationStats())
        if not prompts:
            return result
        was_training = self.model.training
        self.model.eval()
        try:
            with self._adapter(adapter) as model, torch.no_grad(), matmul_sampling():
                for ci, chunk in enumerate(self._chunks([len(e) for e in encoded], params.n)):
                    seed = None if params.seed is None else params.seed * 1_000_003 + ci
                    rows, stats = self._generate_chunk(
                        model, [encoded[i] for i in chunk], chunk, params, seed
                    )
                    for i, comps in zip(chunk, rows, strict=True):
                        result.completions[i] = comps
                    result.stats.add(stats)
        finally:
            if was_training:
                self.model.train()
        return result

    def _generate_chunk(
        self,
        model: Any,
        ids: list[list[int]],
        indices: list[int],
        params: SamplingParams,
        seed: int | None,
    ) -> tuple[list[list[Completion]], GenerationStats]:
        import torch
        from transformers import LogitsProcessorList, StoppingCriteriaList

        device = next(model.parameters()).device
        n = params.n
        # A prompt prefix all rows share (the system prompt) is prefilled once and its KV cache reused:
        # rows are laid out [shared prefix][padding][own suffix] (positions follow the attention mask).
        shared = self._shared_prefix(ids) if self.share_prefix and len(ids) > 1 else 0
        width = max(len(x) for x in ids)
        input_ids = torch.full((len(ids), width), self.pad_id, dtype=torch.long)
        mask = torch.zeros((len(ids), width), dtype=torch.long)
        for r, x in enumerate(ids):
            input_ids[r, :shared] = torch.tensor(x[:shared], dtype=torch.long)
            mask[r, :shared] = 1
            input_ids[r, width - len(x) + shared :] = torch.tensor(x[shared:], dtype=torch.long)
            mask[r, width - len(x) + shared :] = 1
        input_ids, mask = input_ids.to(device), mask.to(device)

        gen_kwargs: dict[str, Any] = {
            "max_new_tokens": params.max_new_tokens,
            "pad_token_id": self.pad_id,
            "eos_token_id": sorted(self.eos_ids) or None,
            "do_sample": not params.greedy,
            "use_cache": True,
        }
        if params.greedy:
            gen_kwargs.update(temperature=None, top_p=None, top_k=None)
        else:
            gen_kwargs.update(temperature=params.temperature, top_p=params.top_p, top_k=params.top_k)
        if params.repetition_penalty != 1.0:
            gen_kwargs["repetition_penalty"] = params.repetition_penalty
        stopper = None
        if params.stop:
            stopper = _stop_criteria_cls()(self.tokenizer, params.stop, width)
            gen_kwargs["stopping_criteria"] = StoppingCriteriaList([stopper])
        if self.logits_processor_factory is not None:
            procs = self.logits_processor_factory(indices, n)
            if procs:
                gen_kwargs["logits_processor"] = LogitsProcessorList(procs)

        stats = GenerationStats(sequences=len(ids) * n, prompt_tokens=sum(len(x) for x in ids))
        prefilled = n > 1 and self.prefill_once and width > 1
        with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
            if seed is not None:
                torch.manual_seed(seed)
            cache = prefill(model, input_ids, mask, n, shared) if prefilled or shared else None
            if cache is not None:
                stats.prefill_tokens = shared + len(ids) * (width - shared)
            else:  # same as num_return_sequences=n (which greedy decoding refuses): n copies prefilled
                stats.prefill_tokens = len(ids) * n * width
            out, stats.decoded_row_steps = self._decode(
                model,
                input_ids.repeat_interleave(n, dim=0),
                mask.repeat_interleave(n, dim=0),
                gen_kwargs,
                cache,
            )
        gen = out[:, width:].tolist()
        stats.forward_calls = len(gen[0]) + (1 if prefilled or shared else 0) + (1 if shared else 0)
        rows: list[list[Completion]] = []
        for p in range(len(ids)):
            comps = []
            for j in range(n):
                r = p * n + j
                comps.append(self._completion(gen[r], stopper.stop_step.get(r) if stopper else None, params))
                stats.completion_tokens += comps[-1].completion_tokens
            rows.append(comps)
        return rows, stats

    @staticmethod
    def _shared_prefix(ids: list[list[int]], min_tokens: int = 16) -> int:
        """Tokens every row starts with, leaving each row at least one own token (0 when under min_tokens)."""
        first, limit = ids[0], min(len(x) for x in ids) - 1
        k = 0
        while k < limit and all(x[k] == first[k] for x in ids):
            k += 1
        return k if k >= min_tokens else 0

    def _decode(
        self, model: Any, input_ids: Any, mask: Any, gen_kwargs: dict[str, Any], cache: Any
    ) -> tuple[Any, int]:
        """``generate(**gen_kwargs)`` from the (optionally prefilled) cache; finished rows leave the batch unless
        ``drop_finished`` is off (``inference.decode``: same tokens either way). Returns (sequences, row-steps)."""
        if self.drop_finished:
            done = generate_dropping(model, input_ids, mask, cache=cache, **gen_kwargs)
            if done is not None:
                return done
        out = model.generate(input_ids=input_ids, attention_mask=mask, past_key_values=cache, **gen_kwargs)
        return out, int(out.shape[0]) * (int(out.shape[1]) - int(input_ids.shape[1]))

    def _completion(self, tokens: list[int], stop_step: int | None, params: SamplingParams) -> Completion:
        length, reason = len(tokens), "length"
        for i, t in enumerate(tokens):
            if t in self.eos_ids:
                length, reason = i + 1, "eos"
                break
        if stop_step is not None and stop_step <= length:
            length, reason = stop_step, "stop"
        text = self.tokenizer.decode(tokens[:length], skip_special_tokens=True)
        text, stopped = cut_at_stop(text, params.stop)
        if stopped:
            reason = "stop"
        return Completion(text=text, completion_tokens=length, finish_reason=reason)
