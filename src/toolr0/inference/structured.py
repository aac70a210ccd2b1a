"""Grammar-constrained Generator decoding with xgrammar: compilation and the transformers logits processor.

The grammars themselves (spec §4's four-tag task, per TaskSpec, and the grounded second stage) are built as text
by :mod:`toolr0.inference.grammar`. Here they are compiled (cached per tokenizer) and applied row by row during
``generate()``. Hook for ``HFSampler``: ``with constrained(sampler, specs, cfg): sampler.generate(...)``.
Interaction with GRPO: docs/structured_generation.md.

Engine imports (xgrammar, torch, transformers) happen inside functions so importing this module stays light.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from toolr0.errors import ToolR0Error
from toolr0.inference.grammar import SpecLike, StructuredConfig, build_ebnf
from toolr0.inference.grounding import stage_grammar, stage_markers

if TYPE_CHECKING:  # pragma: no cover
    import xgrammar

log = logging.getLogger(__name__)


# ---------------------------------------------------------------------------------------------------------
# Compilation (cached per tokenizer and vocabulary size)


def _xgr() -> Any:
    try:
        import xgrammar
    except ImportError as e:  # pragma: no cover - depends on the environment
        raise ToolR0Error(
            "structured.enabled needs xgrammar: run scripts/install_structured.sh "
            "(pip install --no-deps xgrammar==0.2.8 apache-tvm-ffi)"
        ) from e
    return xgrammar


_LOCK = threading.Lock()
_COMPILERS: dict[str, Any] = {}
_COMPILED: dict[tuple[str, str], Any] = {}
_TOKENIZER_KEYS: dict[tuple[int, int], tuple[Any, str]] = {}

# Compile cost (measured, loaded 2-core AVX2 CPU, Qwen's 152k vocabulary): a capped repetition such as
# think's [^<...]{1,400} costs ~100 s on its first compile and ~27 MB in memory; grammars are therefore
# shared by content. Serialised to disk one is 84-128 MB and took 63 s to load, so there is no disk cache.


def _tokenizer_key(tokenizer: Any, vocab_size: int) -> str:
    """A content fingerprint of (tokenizer vocabulary, logits width, xgrammar version): tokenizer objects of
    one model (the sampler's, TRL's) share one compiler and its compiled grammars."""
    import hashlib
    from importlib.metadata import version

    with _LOCK:
        hit = _TOKENIZER_KEYS.get((id(tokenizer), vocab_size))
        if hit is not None and hit[0] is tokenizer:
            return hit[1]
    vocab = sorted(tokenizer.get_vocab().items(), key=lambda kv: kv[1])
    h = hashlib.sha256(json.dumps([vocab, vocab_size, version("xgrammar")], ensure_ascii=False).encode())
    for attr in ("eos_token_id", "pad_token_id"):
        h.update(str(getattr(tokenizer, attr, None)).encode())
    key = h.hexdigest()[:32]
    with _LOCK:
        _TOKENIZER_KEYS[(id(tokenizer), vocab_size)] = (tokenizer, key)  # keeps the object (and its id) alive
    return key


def _compiler(tokenizer: Any, vocab_size: int) -> Any:
    xgr = _xgr()
    key = _tokenizer_key(tokenizer, vocab_size)
    with _LOCK:
        if key in _COMPILERS:
            return _COMPILERS[key]
    info = xgr.TokenizerInfo.from_huggingface(tokenizer, vocab_size=vocab_size)
    with _LOCK:
        return _COMPILERS.setdefault(key, xgr.GrammarCompiler(info, max_threads=1))


def compile_grammar(tokenizer: Any, ebnf: str, vocab_size: int | None = None) -> xgrammar.CompiledGrammar:
    """Compile (and cache) an EBNF grammar for ``tokenizer`` with the model's logits width ``vocab_size``."""
    vocab_size = int(vocab_size or len(tokenizer))
    key = (_tokenizer_key(tokenizer, vocab_size), ebnf)
    if key not in _COMPILED:
        compiled = _compiler(tokenizer, vocab_size).compile_grammar(ebnf)
        with _LOCK:
            _COMPILED[key] = compiled
    return _COMPILED[key]


def grammar_matcher(tokenizer: Any, spec: SpecLike | None, cfg: StructuredConfig | None = None) -> Any:
    """A fresh ``xgrammar.GrammarMatcher`` for one spec (for tests and offline checks)."""
    return _xgr().GrammarMatcher(compile_grammar(tokenizer, build_ebnf(spec, cfg)))


def accepts(tokenizer: Any, spec: SpecLike | None, text: str, cfg: StructuredConfig | None = None) -> bool:
    """Whether the grammar for ``spec`` accepts ``text`` as a complete completion."""
    m = grammar_matcher(tokenizer, spec, cfg)
    return bool(m.accept_string(text)) and bool(m.accept_token(_stop_id(m, tokenizer)))


def _stop_id(matcher: Any, tokenizer: Any) -> int:
    eos = tokenizer.eos_token_id
    return int(eos if eos is not None else matcher.stop_token_ids[0])


# ---------------------------------------------------------------------------------------------------------
# transformers


def _processor_class() -> type:
    import torch
    from transformers import LogitsProcessor

    xgr = _xgr()

    class GrammarLogitsProcessor(LogitsProcessor):
        """Per-row grammar masking for one ``generate()`` call (single use: make a fresh one per call).

        Rows whose grammar finished (stop token accepted) are left alone; transformers pads them.
        A row whose sampled token the grammar refuses (cannot happen unless another processor changes
        the scores after this one) is forced to stop instead of raising mid-generation.
        """

        def __init__(self, tokenizer: Any, ebnfs: list[str], cfg: StructuredConfig | None = None):
            self.tokenizer = tokenizer
            self.ebnfs = ebnfs
            self.cfg = cfg or StructuredConfig()
            self.ground = self.cfg.ground_calls
            self.tokens: list[list[int]] = []  # generated tokens per row (for the grounding switch)
            self.markers = stage_markers(self.cfg.order)
            self.stage: list[int] = []  # switch points passed per row
            self.grounded = 0  # rows whose calls were switched to the grounded grammar (diagnostic)
            self.vocab = 0
            self.matchers: list[Any] | None = None
            self.bitmask: Any = None
            self.dead: list[bool] = []
            self.rejected = 0  # tokens refused by the grammar (diagnostic)
            self.finish_ids = {i for i in (tokenizer.pad_token_id, tokenizer.eos_token_id) if i is not None}
            self.batcher = xgr.BatchGrammarMatcher(max_threads=1)

        def _init(self, batch: int, vocab: int) -> None:
            ebnfs = self.ebnfs * batch if len(self.ebnfs) == 1 else self.ebnfs
            if len(ebnfs) != batch:
                raise ToolR0Error(f"structured decoding: {len(ebnfs)} grammars for a batch of {batch} rows")
            self.matchers = [xgr.GrammarMatcher(compile_grammar(self.tokenizer, g, vocab)) for g in ebnfs]
            self.bitmask = xgr.allocate_token_bitmask(batch, vocab)
            self.dead = [False] * batch
            self.tokens = [[] for _ in range(batch)]
            self.stage = [0] * batch
            self.vocab = vocab

        def _live(self) -> list[int]:
            assert self.matchers is not None
            return [i for i, m in enumerate(self.matchers) if not self.dead[i] and not m.is_terminated()]

        def _maybe_ground(self, i: int) -> None:
            """At the row's next switch marker (``<tool_call_answer>``; in answer-first order also the question
            after the calls), swap row i's matcher for the grammar built from its own text so far."""
            text = self.tokenizer.decode(self.tokens[i], skip_special_tokens=True)
            stage = self.stage[i]
            marker = self.markers[stage]
            at = text.find(marker)
            if at < 0:
                return
            self.stage[i] += 1  # one attempt per stage and row
            row_ebnf = self.ebnfs[i if len(self.ebnfs) > 1 else 0]
            ebnf = stage_grammar(row_ebnf, stage, text[:at], self.cfg)
            if ebnf is None:
                return
            try:
                m = xgr.GrammarMatcher(compile_grammar(self.tokenizer, ebnf, self.vocab))
            except Exception:  # noqa: BLE001 - keep the current grammar on any compile problem
                log.warning("grounded grammar (stage %d) did not compile; keeping the current one", stage)
                return
            rest = text[at + len(marker) :]
            if rest and not m.accept_string(rest):
                return
            assert self.matchers is not None
            self.matchers[i] = m
            self.grounded += 1

        def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
            # One batched accept and one batched mask fill per step (xgrammar's BatchGrammarMatcher) instead
            # of a Python loop over rows; the same matcher calls, so the same masks.
            batch, vocab = scores.shape
            if self.matchers is None:
                self._init(batch, vocab)
            else:
                last = input_ids[:, -1].tolist()
                live = self._live()
                accepted = xgr.BatchGrammarMatcher.batch_accept_token(
                    [self.matchers[i] for i in live], [last[i] for i in live]
                )
                for i, ok in zip(live, accepted, strict=True):
                    if not ok:
                        self.dead[i] = True
                        # a row stopped by a stop string is padded by transformers: not a grammar breach
                        if last[i] not in self.finish_ids:
                            self.rejected += 1
                    elif self.ground and self.stage[i] < len(self.markers):
                        self.tokens[i].append(last[i])
                        if last[i] in _close_ids(self.tokenizer):
                            self._maybe_ground(i)
            assert self.matchers is not None
            live = self._live()
            stopped = [i for i in range(batch) if i not in set(live)]
            if live:
                self.batcher.batch_fill_next_token_bitmask(
                    [self.matchers[i] for i in live], self.bitmask, indices=live
                )
            for i in stopped:
                self.bitmask[i].fill_(-1)  # all allowed; overwritten below
            device = scores.device
            work = scores if device.type in ("cpu", "cuda") else scores.to("cpu")
            xgr.apply_token_bitmask_inplace(work, self.bitmask.to(work.device))
            for i in stopped:  # finished or broken rows may only stop
                stop = _stop_id(self.matchers[i], self.tokenizer)
                work[i].fill_(float("-inf"))
                work[i, stop] = 0.0
            return work.to(device)

    return GrammarLogitsProcessor


_PROCESSOR_CLASS: type | None = None
_CLOSE_IDS: dict[int, frozenset[int]] = {}


def _close_ids(tokenizer: Any) -> frozenset[int]:
    """Ids of the tokens whose text holds '>' (a tag may have just closed), computed once per tokenizer."""
    key = id(tokenizer)
    if key not in _CLOSE_IDS:
        # a token's text holds '>' iff its vocabulary piece does (byte-level BPE and sentencepiece pieces spell
        # '>' as itself; a piece that merely shows it, like '<0x3E>', only adds a harmless extra check)
        pieces = tokenizer.convert_ids_to_tokens(list(range(len(tokenizer))))
        ids = {i for i, p in enumerate(pieces) if p is not None and ">" in p}
        _CLOSE_IDS[key] = frozenset(ids)
    return _CLOSE_IDS[key]


def make_logits_processor(
    tokenizer: Any,
    specs: list[SpecLike] | list[SpecLike | None] | None,
    cfg: StructuredConfig | None,
    num_return_sequences: int = 1,
) -> Any | None:
    """A transformers ``LogitsProcessor`` constraining each row to its spec's task grammar, or None when off.

    ``specs`` has one entry per prompt (rows are prompt-major: each spec repeated ``num_return_sequences``
    times, matching ``generate(num_return_sequences=n)``); ``None`` or ``[None]`` gives the loose grammar
    (any menu/call count) for every row. Single use: call once per ``generate()``.
    """
    if cfg is None or not cfg.enabled:
        return None
    global _PROCESSOR_CLASS
    if _PROCESSOR_CLASS is None:
        _PROCESSOR_CLASS = _processor_class()
    rows = [None] if not specs else [s for s in specs for _ in range(num_return_sequences)]
    ebnfs = [build_ebnf(s, cfg) for s in rows]
    return _PROCESSOR_CLASS(tokenizer, ebnfs, cfg)


def sampler_factory(tokenizer: Any, specs: list[SpecLike], cfg: StructuredConfig | None) -> Any | None:
    """A ``HFSampler.logits_processor_factory`` for one call whose prompt i was built from ``specs[i]``.

    The sampler calls it per chunk with the chunk's prompt indices and n (rows prompt-major). None when off.
    """
    if cfg is None or not cfg.enabled:
        return None

    def factory(indices: list[int], n: int) -> list[Any] | None:
        proc = make_logits_processor(tokenizer, [specs[i] for i in indices], cfg, num_return_sequences=n)
        return [proc] if proc is not None else None

    return factory


@contextmanager
def constrained(sampler: Any, specs: list[SpecLike], cfg: StructuredConfig | None) -> Iterator[Any]:
    """Within the block, ``sampler.generate(prompts, ...)`` (prompt i built from ``specs[i]``) is grammar-
    constrained when ``cfg.enabled``; the sampler's previous factory is restored afterwards.

    Works with ``toolr0.inference.hf.HFSampler``; other backends raise.
    """
    if cfg is None or not cfg.enabled:
        yield sampler
        return
    if not hasattr(sampler, "logits_processor_factory"):
        raise ToolR0Error(
            f"structured decoding is not supported by the {type(sampler).__name__} backend here; "
            "set structured.enabled: false or use the hf backend"
        )
    previous = sampler.logits_processor_factory
    sampler.logits_processor_factory = sampler_factory(sampler.tokenizer, specs, cfg)
    try:
        yield sampler
    finally:
        sampler.logits_processor_factory = previous
