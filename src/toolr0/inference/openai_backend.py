"""Sampling backend for any OpenAI-compatible server (`/v1/chat/completions`), e.g. `vllm serve`.

One request per prompt asks for `n` choices; requests run concurrently on a small thread pool. The
`model` field carries the adapter name for per-call LoRA (vLLM serves adapters as extra model ids).
The stop string is kept in the text (`include_stop_str_in_output`, a vLLM extension; turned off with
`vllm_extensions=False` for strict servers). Uses only the standard library (urllib).
"""

from __future__ import annotations

import http.client
import json
import os
import urllib.error
import urllib.request
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from toolr0.core.solver_format import split_tools
from toolr0.errors import ModelUnavailableError, ServiceUnreachableError, ToolR0Error
from toolr0.inference.base import (
    BaseSampler,
    Completion,
    GenerationResult,
    GenerationStats,
    Messages,
    SamplingParams,
    cut_at_stop,
)


def reply_text(message: dict[str, Any]) -> str:
    """A chat reply as text; calls a server's tool-call parser moved into ``tool_calls`` are written back as
    the template's ``<tool_call>`` blocks, so the native Solver parser reads them as the model wrote them."""
    text = message.get("content") or ""
    blocks = []
    for call in message.get("tool_calls") or []:
        fn = call.get("function") if isinstance(call, dict) else None
        if not isinstance(fn, dict):
            continue
        args = fn.get("arguments")
        if isinstance(args, str):
            try:
                args = json.loads(args)
            except ValueError:
                pass
        blocks.append("<tool_call>\n" + json.dumps({"name": fn.get("name"), "arguments": args}) + "\n</tool_call>")
    return "\n".join([text, *blocks]).strip() if blocks else text

class OpenAISampler(BaseSampler):
    """Chat-completions client implementing the `Sampler` interface."""

    def __init__(
        self,
        base_url: str = "http://127.0.0.1:8000/v1",
        model: str | None = None,
        api_key: str | None = None,
        timeout_s: float = 600.0,
        concurrency: int = 8,
        vllm_extensions: bool = True,
        checkpoint_id: str | None = None,
        on_unreachable: Callable[[], None] | None = None,
    ) -> None:
        super().__init__()
        self.base_url = base_url.rstrip("/")
        self.api_key = api_key
        self.timeout_s = timeout_s
        self.concurrency = max(1, concurrency)
        self.vllm_extensions = vllm_extensions
        self._model = model
        self.checkpoint_id = checkpoint_id or f"{self.base_url}#{model or ''}"
        # called when the server cannot be reached (a managed server raises its exit code and log tail here)
        self.on_unreachable = on_unreachable

    @classmethod
    def from_config(cls, inference_cfg: Any, **kwargs: Any) -> OpenAISampler:
        return cls(
            base_url=inference_cfg.base_url,
            model=inference_cfg.served_model,
            api_key=os.environ.get(inference_cfg.api_key_env),
            timeout_s=inference_cfg.timeout_s,
            **kwargs,
        )

    # ---------------------------------------------------------------------------------------------- http
    def _request(self, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        url = f"{self.base_url}{path}"
        data = None if body is None else json.dumps(body).encode("utf-8")
        req = urllib.request.Request(url, data=data, method="GET" if body is None else "POST")
        req.add_header("Content-Type", "application/json")
        if self.api_key:
            req.add_header("Authorization", f"Bearer {self.api_key}")
        try:
            with urllib.request.urlopen(req, timeout=self.timeout_s) as resp:
                return json.loads(resp.read().decode("utf-8"))
        except urllib.error.HTTPError as e:
            detail = e.read().decode("utf-8", "replace")[:300]
            raise ToolR0Error(f"{url}: HTTP {e.code}: {detail}") from None
        except ValueError as e:  # a reply that is not JSON (a proxy page, a half-started server)
            raise ToolR0Error(f"{url}: reply is not JSON ({e})") from None
        except (urllib.error.URLError, http.client.HTTPException, OSError) as e:
            if self.on_unreachable is not None:
                self.on_unreachable()
            raise ServiceUnreachableError(
                f"cannot reach the inference server at {self.base_url} ({e}); start it (e.g. `vllm serve`) "
                "or fix inference.base_url"
            ) from None

    def health_check(self, timeout_s: float = 10.0) -> list[str]:
        """The model ids listed by `/v1/models`; a one-line `ModelUnavailableError` naming the URL when the
        server does not answer within `timeout_s` or lists no model (call before a phase starts)."""
        saved, self.timeout_s = self.timeout_s, min(self.timeout_s, timeout_s)
        try:
            data = self._request("/models").get("data") or []
        except ToolR0Error as exc:
            raise ModelUnavailableError(
                f"frozen Solver server at {self.base_url} failed its health check: {exc}"
            ) from None
        finally:
            self.timeout_s = saved
        ids = [str(d.get("id")) for d in data if isinstance(d, dict)]
        if not ids:
            raise ModelUnavailableError(f"{self.base_url}/models lists no model (health check)")
        return ids

    @property
    def model(self) -> str:
        """The served model id: as configured, else the first id listed by /v1/models."""
        if self._model is None:
            data = self._request("/models").get("data") or []
            if not data:
                raise ModelUnavailableError(f"{self.base_url}/models lists no model")
            self._model = str(data[0]["id"])
        return self._model

    def _body(self, messages: Messages, params: SamplingParams, adapter: str | None) -> dict[str, Any]:
        msgs, tools = split_tools(messages)
        body: dict[str, Any] = {
            "model": adapter or self.model,
            "messages": msgs,
            "n": params.n,
            "temperature": params.temperature,
            "top_p": params.top_p,
            "max_tokens": params.max_new_tokens,
        }
        if tools:
            body["tools"] = tools
        if params.stop:
            body["stop"] = list(params.stop)
        if params.seed is not None:
            body["seed"] = params.seed
        if self.vllm_extensions:
            body["include_stop_str_in_output"] = True
            if params.top_k > 0:
                body["top_k"] = params.top_k
            if params.repetition_penalty != 1.0:
                body["repetition_penalty"] = params.repetition_penalty
        return body

    def _one(self, messages: Messages, params: SamplingParams, adapter: str | None, seed: int | None) -> Any:
        body = self._body(messages, params.replace(seed=seed), adapter)
        return self._request("/chat/completions", body)

    # ---------------------------------------------------------------------------------------- generation
    def _generate(
        self, prompts: list[Messages], params: SamplingParams, adapter: str | None
    ) -> GenerationResult:
        # distinct prompts get distinct seeds, so identical prompts in one call still differ by position
        seeds = [None if params.seed is None else params.seed + i for i in range(len(prompts))]
        if prompts:
            _ = self.model  # resolve once before fanning out
        with ThreadPoolExecutor(max_workers=min(self.concurrency, max(1, len(prompts)))) as pool:
            replies = list(
                pool.map(lambda a: self._one(a[0], params, adapter, a[1]), zip(prompts, seeds, strict=True))
            )
        result = GenerationResult(stats=GenerationStats(sequences=len(prompts) * params.n))
        for reply in replies:
            choices = sorted(reply.get("choices") or [], key=lambda c: c.get("index", 0))
            row = []
            for ch in choices[: params.n]:
                text = reply_text(ch.get("message") or {})
                text, stopped = cut_at_stop(text, params.stop)
                reason = ch.get("finish_reason") or "length"
                if reason == "stop" and not stopped:
                    reason = "eos"
                row.append(Completion(text=text, finish_reason="stop" if stopped else reason))
            usage = reply.get("usage") or {}
            result.stats.prompt_tokens += int(usage.get("prompt_tokens") or 0)
            done = int(usage.get("completion_tokens") or 0)
            result.stats.completion_tokens += done
            for c in row:  # the server reports a total only
                c.completion_tokens = done // max(1, len(row))
            if len(row) != params.n:
                raise ToolR0Error(f"server returned {len(row)} choices, expected n={params.n}")
            result.completions.append(row)
        return result
