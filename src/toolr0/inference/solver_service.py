"""The frozen Solver: the one object that asks it anything. Pass rates (r_diff, pass@K difficulty), judge
scores (r_sem), difficulty labels and cross-verification, for many tasks per batched sampler call.

Every knob comes from the `frozen_solver` config section (`core.frozen_solver.FrozenSolverConfig`), given once
to the constructor: callers pass tasks (and a per-batch seed), never sampling settings. `SolverService` is
the loop's `seam.FrozenSolver` as it is (stage B) and the Generator reward's service (phase A).

Every Solver query is rendered with the one Solver format (`core.solver_format.SolverFormat`, spec §10
item 4) and cached by content: sha256 over (checkpoint id, system prompt, user message, sampling params,
K, seed, purpose) — never `id()` (spec §10 item 7). `clear()` between iterations. Sampling is seeded, so
results are deterministic for the same tasks, order and seed. Tasks may be `core.schema.Task` objects or
their dict form. `build_solver_service` is the one way the rest of the code builds one from the config.
(The engine picks the weights and the sampler behind it; `training.frozen.frozen_scope` switches a shared
PeftModel to the frozen Solver's adapter around each reward call; `selfplay.served.ServedSolver` is the
managed server process a service may sample through.)
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, NamedTuple

from toolr0.core.frozen_solver import FrozenSolverConfig
from toolr0.core.matching import calls_equal_canonical, values_match
from toolr0.core.prompts import difficulty_label_messages, judge_messages
from toolr0.core.rewards.generator import parse_judge_score
from toolr0.core.schema import Task, ToolCall
from toolr0.core.seeds import seed_for
from toolr0.core.solver_format import SolverFormat
from toolr0.inference.base import Messages, Sampler, SamplingParams

if TYPE_CHECKING:
    from toolr0.config import ToolR0Config

DIFFICULTY_LABELS = ("easy", "medium", "hard")


class PassRate(NamedTuple):
    """p̂ = successes / K for one task, plus the per-sample parse outcome."""

    p_hat: float
    successes: int
    K: int
    unclosed: int  # samples whose answer came from an unclosed final tag (allow_unclosed only)
    reasons: tuple[str, ...]


class CrossVerifyResult(NamedTuple):
    """Agreement of the k samples with the gold calls; unpacks as (agreement, extra), extra = {"kept": agreement
    >= τ, "k", "mode"} (the crossverify.jsonl record's fields)."""

    agreement: float
    extra: dict[str, Any]


@dataclass
class SolverCache:
    """Content-hash cache of sampled completions (scoped to one Solver: `clear()` when it changes)."""

    entries: dict[str, list[str]] = field(default_factory=dict)
    hits: int = 0
    misses: int = 0

    def get(self, key: str) -> list[str] | None:
        hit = self.entries.get(key)
        if hit is None:
            self.misses += 1
        else:
            self.hits += 1
        return hit

    def put_many(self, items: dict[str, list[str]]) -> None:
        self.entries.update(items)

    def clear(self) -> None:
        self.entries.clear()
        self.hits = self.misses = 0


def _as_task(t: Task | dict[str, Any]) -> Task:
    return t if isinstance(t, Task) else Task.from_dict(t)


def content_key(checkpoint_id: str, messages: Messages, params: SamplingParams, purpose: str) -> str:
    """sha256 over everything that determines the samples (spec §11); K = params.n, seed = params.seed."""
    system = "".join(m.get("content", "") for m in messages if m.get("role") == "system")
    user = json.dumps([m for m in messages if m.get("role") != "system"], sort_keys=True, ensure_ascii=False)
    blob = json.dumps(
        {
            "ckpt": checkpoint_id,
            "system": system,
            "user": user,
            "params": params.key(),
            "K": params.n,
            "seed": params.seed,
            "purpose": purpose,
        },
        sort_keys=True,
        ensure_ascii=False,
    )
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


def _full_call_equal(pred: list[ToolCall], gold: list[ToolCall]) -> bool:
    """Whole calls agree in order: names, argument key sets and §7.3 values."""
    if len(pred) != len(gold):
        return False
    for p, g in zip(pred, gold, strict=True):
        if p.name != g.name or set(p.arguments) != set(g.arguments):
            return False
        if not all(values_match(p.arguments[k], g.arguments[k]) for k in g.arguments):
            return False
    return True


class SolverService:
    """Batched, cached queries to a frozen Solver behind any `Sampler`."""

    def __init__(
        self,
        sampler: Sampler,
        cfg: FrozenSolverConfig | None = None,
        checkpoint_id: str | None = None,
        seed: int = 0,
        *,
        adapter: str | None = None,
        prompt_variant: str = "reference",
        solver_format: SolverFormat | None = None,
        allow_unclosed: bool = False,
    ) -> None:
        self.sampler = sampler
        self.cfg = cfg or FrozenSolverConfig()  # the `frozen_solver` section: every knob of every query
        self.checkpoint_id = checkpoint_id or getattr(sampler, "checkpoint_id", None) or "unknown"
        self.seed = seed
        self.adapter = adapter
        self.prompt_variant = prompt_variant  # judge and difficulty-label prompts
        self.format = solver_format or SolverFormat(variant=prompt_variant)
        self.allow_unclosed = allow_unclosed  # rewards.allow_unclosed_answer: how a Solver reply is read
        self.cache = SolverCache()

    def clear(self) -> None:
        """Drop every cached result (call between iterations: the Solver changed)."""
        self.cache.clear()

    # ------------------------------------------------------------------------------------------ sampling
    def _sample(self, convs: list[Messages], params: SamplingParams, purpose: str) -> list[list[str]]:
        """Completions for each conversation, sampling only the uncached, distinct ones in one call."""
        keys = [content_key(self.checkpoint_id, m, params, purpose) for m in convs]
        todo: dict[str, Messages] = {}
        for k, m in zip(keys, convs, strict=True):
            if k not in todo and self.cache.get(k) is None:
                todo[k] = m
        if todo:
            outs = self.sampler.generate(list(todo.values()), params, adapter=self.adapter)
            self.cache.put_many(dict(zip(todo.keys(), outs, strict=True)))
        return [self.cache.entries[k] for k in keys]

    def solver_messages(self, task: Task) -> Messages:
        return self.format.messages(task.question, task.tools)

    # ---------------------------------------------------------------------------------------- pass rates
    def pass_samples(
        self, tasks: list[Task | dict[str, Any]], K: int | None = None, seed: int | None = None
    ) -> list[list[str]]:
        """The K raw Solver replies per task behind p̂ (cached: asking again after `pass_rates_detailed` with
        the same K and seed samples nothing)."""
        K = K or self.cfg.k
        params = SamplingParams(
            n=K,
            temperature=self.cfg.temperature,
            top_p=1.0,
            max_new_tokens=self.cfg.max_tokens,
            stop=self.format.stop,
            seed=self.seed if seed is None else seed,
        )
        return self._sample([self.solver_messages(_as_task(t)) for t in tasks], params, "pass_rate")

    def pass_rates_detailed(
        self, tasks: list[Task | dict[str, Any]], K: int | None = None, seed: int | None = None
    ) -> list[PassRate]:
        """K Solver samples per task (K defaults to `frozen_solver.k`); success = the whole call list equals the
        gold list (canonical JSON, ordered unless frozen_solver.pass_success = multiset)."""
        ts = [_as_task(t) for t in tasks]
        samples = self.pass_samples(ts, K, seed)
        ordered = self.cfg.pass_success == "ordered"
        out = []
        for task, texts in zip(ts, samples, strict=True):
            succ = unclosed = 0
            reasons = []
            for text in texts:
                parse = self.format.parse(text, allow_unclosed=self.allow_unclosed)
                if task.calls:
                    ok = parse.parsed and calls_equal_canonical(parse.calls, task.calls, ordered=ordered)
                else:  # no call expected: success only on an explicit "no call"
                    ok = self.format.is_no_call(parse)
                succ += ok
                unclosed += parse.unclosed
                reasons.append("success" if ok else parse.reason if parse.reason != "ok" else "mismatch")
            out.append(PassRate(succ / len(texts), succ, len(texts), unclosed, tuple(reasons)))
        return out

    def pass_rates(
        self, tasks: list[Task | dict[str, Any]], K: int | None = None, seed: int | None = None
    ) -> list[float]:
        """p̂ per task (one batched sampler call for all uncached tasks)."""
        return [r.p_hat for r in self.pass_rates_detailed(tasks, K, seed)]

    def pass_rate(self, task: Task | dict[str, Any], K: int | None = None) -> float:
        return self.pass_rates([task], K)[0]

    # --------------------------------------------------------------------------------------------- judge
    def judge_detailed(self, tasks: list[Task | dict[str, Any]]) -> list[tuple[int, list[str], bool]]:
        """(score, replies, used_fallback) per task: up to `frozen_solver.judge.retries` attempts, the later ones
        with the retry suffix appended; every attempt batched over the tasks still unscored."""
        ts = [_as_task(t) for t in tasks]
        base = [judge_messages(t.question, t.tools, t.calls, self.prompt_variant) for t in ts]
        scores: list[int | None] = [None] * len(ts)
        replies: list[list[str]] = [[] for _ in ts]
        jc = self.cfg.judge
        for attempt in range(jc.retries):
            pending = [i for i, s in enumerate(scores) if s is None]
            if not pending:
                break
            convs = [self._retry(base[i]) if attempt else base[i] for i in pending]
            params = SamplingParams(
                n=1,
                temperature=jc.temperature,
                max_new_tokens=jc.max_tokens,
                seed=self.seed + attempt,
            )
            for i, outs in zip(pending, self._sample(convs, params, f"judge{attempt}"), strict=True):
                replies[i].append(outs[0])
                scores[i] = parse_judge_score(outs[0])
        fb = jc.fallback_score
        return [(fb, r, True) if s is None else (s, r, False) for s, r in zip(scores, replies, strict=True)]

    def _retry(self, messages: Messages) -> Messages:
        out = [dict(m) for m in messages]
        out[-1]["content"] = out[-1]["content"].rstrip() + "\n" + self.cfg.judge.retry_suffix
        return out

    def judge(self, tasks: list[Task | dict[str, Any]]) -> list[int]:
        """Judge score 1-5 per task (spec §5.4); the fallback score when no attempt parses."""
        return [s for s, _, _ in self.judge_detailed(tasks)]

    def judge_labels(self, tasks: list[Task | dict[str, Any]]) -> list[tuple[str, str, bool]]:
        """The reference code's easy|medium|hard label (spec §6.5): (label, raw, used_fallback); sampled with
        `frozen_solver.label` (reference: T = 0, 10 tokens), unparseable -> medium."""
        ts = [_as_task(t) for t in tasks]
        convs = [difficulty_label_messages(t.question, t.tools, t.calls, self.prompt_variant) for t in ts]
        lc = self.cfg.label
        params = SamplingParams(n=1, temperature=lc.temperature, max_new_tokens=lc.max_tokens, seed=self.seed)
        out = []
        for outs in self._sample(convs, params, "difficulty_label"):
            raw = outs[0]
            label = next((w for w in raw.lower().split() if w.strip(".,:;!\"'") in DIFFICULTY_LABELS), None)
            out.append((label.strip(".,:;!\"'"), raw, False) if label else ("medium", raw, True))
        return out

    # -------------------------------------------------------------------------------------- cross-verify
    def verifies(self, task: Task | dict[str, Any]) -> bool:
        """Whether cross-verification checks `task`: every task, unless `frozen_solver.verify.no_call` is off and
        the task expects no call (it then skips the stage)."""
        if self.cfg.verify.no_call:
            return True
        calls = task.get("calls") if isinstance(task, dict) else task.calls
        return bool(calls)

    def cross_verify(
        self, tasks: list[Task | dict[str, Any]], seed: int | None = None
    ) -> list[CrossVerifyResult]:
        """Spec §6.4 with `frozen_solver.verify`: agreement = share of k samples whose ordered tool names equal
        the gold names (mode "names"), or whose whole calls agree under the §7.3 value rules (mode "full_call",
        §11); kept = agreement >= τ."""
        vc = self.cfg.verify
        mode = vc.mode
        ts = [_as_task(t) for t in tasks]
        params = SamplingParams(
            n=vc.k,
            temperature=vc.temperature,
            top_p=vc.top_p,
            max_new_tokens=vc.max_tokens,
            stop=self.format.stop,
            seed=self.seed if seed is None else seed,
        )
        samples = self._sample([self.solver_messages(t) for t in ts], params, "cross_verify")
        out = []
        for task, texts in zip(ts, samples, strict=True):
            gold_names = [c.name for c in task.calls]
            agree = 0
            for text in texts:
                parse = self.format.parse(text, allow_unclosed=self.allow_unclosed)
                if not parse.parsed:
                    continue
                no_call = self.format.is_no_call(parse)
                if mode == "names":
                    agree += [c.name for c in parse.calls] == gold_names and (bool(gold_names) or no_call)
                else:
                    agree += _full_call_equal(parse.calls, task.calls) and (bool(task.calls) or no_call)
            a = agree / len(texts)
            out.append(CrossVerifyResult(a, {"kept": a >= vc.tau, "k": len(texts), "mode": mode}))
        return out


def build_solver_service(
    cfg: ToolR0Config, sampler: Sampler, *, checkpoint_id: str | None = None, adapter: str | None = None
) -> SolverService:
    """The frozen Solver for `cfg`: the `frozen_solver` section, the Solver format and judge prompts
    (`prompts`), how a reply is read (`rewards.allow_unclosed_answer`), seeded from the master seed. Every
    caller (phase A's reward, stage B, the CLI) builds it here."""
    return SolverService(
        sampler,
        cfg.frozen_solver,
        checkpoint_id=checkpoint_id,
        seed=seed_for(cfg.seed, "service"),
        adapter=adapter,
        prompt_variant=cfg.prompts.solver_variant,
        solver_format=SolverFormat.from_config(cfg.prompts),
        allow_unclosed=cfg.rewards.allow_unclosed_answer,
    )
