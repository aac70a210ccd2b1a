"""A KV cache that appends a decode step's token in place instead of copying the whole cache.

transformers' ``DynamicLayer`` appends with ``torch.cat``, which copies every cached key and value of the
layer once per decode step: O(cached tokens) of memory traffic per layer and step, 31 % of a batch-32 decode
step on the AVX2 CPU once attention stopped copying (bench/RESULTS.md). :class:`GrowingLayer` keeps the keys
and values in a buffer with spare room along the sequence axis and writes each new token into it; the layer's
``keys`` / ``values`` are views of the filled part, so everything that reads a ``DynamicLayer`` reads this one
the same way (same values, so the same tokens). The buffer grows geometrically when full.
"""

from __future__ import annotations

from typing import Any

#: spare positions allocated beyond what a step needs (at least), and the growth factor when the buffer is full
_MIN_SPARE = 64
_GROWTH = 1.5


def _layer_class() -> type:
    from transformers.cache_utils import DynamicLayer

    class GrowingLayer(DynamicLayer):
        """``DynamicLayer`` whose append writes into preallocated room (see the module docstring)."""

        def lazy_initialization(self, key_states: Any, value_states: Any) -> None:
            super().lazy_initialization(key_states, value_states)
            self._kbuf = self._vbuf = self._exposed = None
            self._len = 0

        def _room(self, need: int, like_k: Any, like_v: Any) -> None:
            cap = 0 if self._kbuf is None else self._kbuf.shape[-2]
            if need <= cap:
                return
            new_cap = max(need + _MIN_SPARE, int(cap * _GROWTH))
            kbuf = like_k.new_empty((*like_k.shape[:-2], new_cap, like_k.shape[-1]))
            vbuf = like_v.new_empty((*like_v.shape[:-2], new_cap, like_v.shape[-1]))
            if self._len:
                kbuf[..., : self._len, :].copy_(self._kbuf[..., : self._len, :])
                vbuf[..., : self._len, :].copy_(self._vbuf[..., : self._len, :])
            self._kbuf, self._vbuf = kbuf, vbuf

        def _expose(self) -> None:
            self.keys = self._kbuf[..., : self._len, :]
            self.values = self._vbuf[..., : self._len, :]
            self._exposed = self.keys

        def update(self, key_states: Any, value_states: Any, *args: Any, **kwargs: Any) -> tuple[Any, Any]:
            if not self.is_initialized:
                self.lazy_initialization(key_states, value_states)
            if self._kbuf is not None and self.keys is not self._exposed:
                # a caller replaced keys / values directly (offload, a base-class method): take them over
                self._adopt(self.keys, self.values)
            n = key_states.shape[-2]
            self._room(self._len + n, key_states, value_states)
            self._kbuf[..., self._len : self._len + n, :].copy_(key_states)
            self._vbuf[..., self._len : self._len + n, :].copy_(value_states)
            self._len += n
            self._expose()
            return self.keys, self.values

        def _adopt(self, keys: Any, values: Any) -> None:
            """Take ``keys`` / ``values`` (full tensors) as the cache's content, with spare room after them."""
            self._kbuf = self._vbuf = self._exposed = None
            self._len = 0
            if keys is not None and keys.numel():
                self._room(keys.shape[-2], keys, values)
                self._kbuf[..., : keys.shape[-2], :].copy_(keys)
                self._vbuf[..., : keys.shape[-2], :].copy_(values)
                self._len = keys.shape[-2]
                self._expose()
            else:
                self.keys, self.values = keys, values
                self._exposed = keys

        def get_seq_length(self) -> int:
            return self._len if self.is_initialized else 0

        def crop(self, tokens_to_remove: int) -> None:
            super().crop(tokens_to_remove)
            if self.is_initialized:
                self._len = self.keys.shape[-2] if self.keys.numel() else 0

        def batch_repeat_interleave(self, repeats: int) -> None:
            if self.get_seq_length() > 0:
                self._adopt(self.keys.repeat_interleave(repeats, dim=0), self.values.repeat_interleave(repeats, dim=0))

        def batch_select_indices(self, indices: Any) -> None:
            if self.get_seq_length() > 0:
                self._adopt(self.keys[indices, ...], self.values[indices, ...])

        def reorder_cache(self, beam_idx: Any) -> None:
            if self.get_seq_length() > 0:
                idx = beam_idx.to(self.keys.device)
                self._adopt(self.keys.index_select(0, idx), self.values.index_select(0, idx))

    return GrowingLayer


_GROWING: type | None = None


def growing_layer_class() -> type:
    """The :class:`GrowingLayer` class (built on first use, so importing this module does not import torch)."""
    global _GROWING
    if _GROWING is None:
        _GROWING = _layer_class()
    return _GROWING


def new_cache(model: Any) -> Any:
    """A ``DynamicCache`` for ``model`` whose full-attention layers append in place (:class:`GrowingLayer`);
    layers of another kind (sliding window, linear attention) keep transformers' own class."""
    from transformers import DynamicCache
    from transformers.cache_utils import DynamicLayer

    cache = DynamicCache(config=model.config)
    growing = growing_layer_class()
    layers = getattr(cache, "layers", None)
    if layers:
        cache.layers = [growing() if type(layer) is DynamicLayer else layer for layer in layers]
    elif hasattr(cache, "layer_class_to_replicate") and cache.layer_class_to_replicate is DynamicLayer:
        cache.layer_class_to_replicate = growing
    return cache
