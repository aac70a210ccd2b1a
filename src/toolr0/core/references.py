"""In-prompt references: the Generator's own verified, solved tasks shown to it before it writes a new one.

Not in the paper (its Generator prompt holds no example task). Absolute Zero conditions every proposal on
references drawn from its own buffer of validated tasks; a 0.5B Generator copies what its prompt shows, and the
answer-first prompt shows only block descriptions, which it copied into the blocks (issue 28). A reference is a
task this Generator wrote earlier that passed verification and that the frozen Solver solved at least once,
so the prompt stays zero-data. ``generator.references`` (0 = the paper's prompt) sets how many are shown, as
earlier chat turns: the user's "Write the <domain> task now." and the Generator's own four blocks.

Pure functions: building a reference from a completion, picking references for a spec (seeded), rendering them
as chat turns, and the copy check that rejects a task lifted from a reference.
"""

from __future__ import annotations

import json
import random
import re
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from toolr0.core.parsing import extract_last_tag
from toolr0.core.seeds import derive_seed
from toolr0.core.verify import Verdict
from toolr0.errors import ConfigError

#: The pool keeps tasks the frozen Solver solved at least this often and questions of at most this many words:
#: a clear request is one the Solver answers right most of the time, and the long solved questions of the 0.5B
#: Generator were rambles around a call (issue 28's step-0 rounds: 16 of 28 solved tasks had p̂ < 0.5 or > 40
#: words, nearly all of them junk when read).
POOL_MIN_P_HAT = 0.5
POOL_MAX_WORDS = 40
#: A new question sharing at least this share of its word 4-grams with a reference's question was copied.
COPY_NGRAM_SHARE = 0.5
_WORD = re.compile(r"[a-z0-9]+")


@dataclass(frozen=True)
class Reference:
    """One earlier task of the Generator, as it wrote the blocks (so the prompt shows its own style)."""

    domain: str
    menu_size: int
    num_calls: int
    tools_text: str
    calls_text: str
    question: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @staticmethod
    def from_dict(row: Any) -> Reference | None:
        """A reference from a JSON row; None when a field is missing or of the wrong type."""
        if not isinstance(row, dict):
            return None
        try:
            ref = Reference(
                domain=str(row["domain"]),
                menu_size=int(row["menu_size"]),
                num_calls=int(row["num_calls"]),
                tools_text=str(row["tools_text"]),
                calls_text=str(row["calls_text"]),
                question=str(row["question"]),
            )
        except (KeyError, TypeError, ValueError):
            return None
        return ref if ref.question.strip() and ref.tools_text.strip() else None


def reference_from_completion(text: Any, domain: str, menu_size: int, num_calls: int) -> Reference | None:
    """The reference a verified completion gives (its tools, calls and question blocks as written); None when a
    block is missing. Verification and the solved check are the caller's: this only cuts the blocks out."""
    if not isinstance(text, str):
        return None
    blocks = [extract_last_tag(text, tag) for tag in ("available_tools", "tool_call_answer", "question")]
    if any(not b or not b.strip() for b in blocks):
        return None
    tools, calls, question = (b.strip() for b in blocks if b)
    return Reference(str(domain), int(menu_size), int(num_calls), tools, calls, question)


def select_pool(
    solved: Iterable[tuple[Reference, float]], min_p_hat: float = POOL_MIN_P_HAT, max_words: int = POOL_MAX_WORDS
) -> list[Reference]:
    """The references among (reference, frozen-Solver p̂) pairs: p̂ at least ``min_p_hat``, question at most
    ``max_words`` words, one per question and one per gold call list, the clearest (highest p̂, then shortest)
    first."""
    keep = [(r, p) for r, p in solved if p >= min_p_hat and len(r.question.split()) <= max_words]
    keep.sort(key=lambda rp: (-rp[1], len(rp[0].question.split())))
    out: list[Reference] = []
    seen: set[str] = set()
    for ref, _ in keep:
        keys = {"q:" + ref.question.strip().lower(), "c:" + (_canonical(ref.calls_text) or ref.calls_text)}
        if keys & seen:
            continue
        seen |= keys
        out.append(ref)
    return out


def _kind(num_calls: int) -> int:
    return min(int(num_calls), 2)  # no call, one call, several calls


def pick_references(pool: Sequence[Reference], spec: Any, k: int, seed: int, key: str) -> list[Reference]:
    """``k`` references for one prompt, seeded by (seed, key): first those of the spec's kind (no call, one
    call, several calls) from another domain, then the rest of the pool; never the same task twice. Another
    domain first, so the new task cannot be the reference with its values changed."""
    if k <= 0 or not pool:
        return []
    rng = random.Random(derive_seed(seed, "references", key))
    want, domain = _kind(getattr(spec, "num_calls", 1)), str(getattr(spec, "domain", ""))
    order = list(range(len(pool)))
    rng.shuffle(order)
    rank = sorted(order, key=lambda i: (_kind(pool[i].num_calls) != want, pool[i].domain == domain))
    picked: list[Reference] = []
    for i in rank:
        if pool[i] not in picked:
            picked.append(pool[i])
        if len(picked) == k:
            break
    return picked


def _plan(ref: Reference) -> str:
    """The think block of a reference: its calls and values in words (derived from the task, so no prompt text
    the model could copy)."""
    try:
        calls = json.loads(ref.calls_text)
    except (TypeError, ValueError):
        calls = None
    if not isinstance(calls, list) or not calls:
        return "The user asks for something none of these tools does, so no call."
    parts = []
    for c in calls:
        if not isinstance(c, dict):
            continue
        args = c.get("arguments") if isinstance(c.get("arguments"), dict) else {}
        values = ", ".join(f"{k} {json.dumps(v, ensure_ascii=False)}" for k, v in args.items())
        parts.append(f"{c.get('name')} with {values}" if values else str(c.get("name")))
    return "The user asks for " + "; then ".join(parts) + "." if parts else "The user asks for one thing."


def render_reference(ref: Reference) -> str:
    """A reference as a Generator reply in the answer-first order."""
    return (
        f"<think>{_plan(ref)}</think>\n<available_tools>{ref.tools_text}</available_tools>\n"
        f"<tool_call_answer>{ref.calls_text}</tool_call_answer>\n<question>{ref.question}</question>"
    )


def reference_turns(refs: Iterable[Reference], user_for_domain: Any) -> list[dict[str, str]]:
    """Earlier chat turns, one (user, assistant) pair per reference; ``user_for_domain(ref)`` gives the user text
    (the variant's user template filled with the reference's domain and counts)."""
    turns: list[dict[str, str]] = []
    for ref in refs:
        turns.append({"role": "user", "content": str(user_for_domain(ref))})
        turns.append({"role": "assistant", "content": render_reference(ref)})
    return turns


def _grams(text: str, n: int = 4) -> set[tuple[str, ...]]:
    words = _WORD.findall(text.lower())
    return {tuple(words[i : i + n]) for i in range(max(0, len(words) - n + 1))}


def copied_reference(question: Any, calls_text: Any, refs: Iterable[Reference]) -> str | None:
    """A reason when a new task was lifted from one of the references shown with it: the same gold calls, or at
    least :data:`COPY_NGRAM_SHARE` of its question's word 4-grams found in a reference's question; else None."""
    if not isinstance(question, str):
        return None
    mine = _grams(question)
    calls = _canonical(calls_text)
    for ref in refs:
        if calls is not None and calls == _canonical(ref.calls_text) and calls != "[]":
            return "reference_calls"
        if mine and len(mine & _grams(ref.question)) / len(mine) >= COPY_NGRAM_SHARE:
            return "reference_question"
    return None


def reject_copies(verdict: Verdict, text: Any, refs: Sequence[Reference]) -> Verdict:
    """``verdict`` as it is, or a failed one (``copied_reference_question`` / ``_calls``) when its verified task was
    lifted from one of the references shown with it (:func:`copied_reference`): a copy is not a new task."""
    if not (verdict.ok and verdict.task is not None and refs):
        return verdict
    calls_text = extract_last_tag(text, "tool_call_answer") if isinstance(text, str) else None
    why = copied_reference(verdict.task.question, calls_text, refs)
    return verdict if why is None else Verdict(False, f"copied_{why}", None, verdict.details)


def _canonical(calls_text: Any) -> str | None:
    try:
        return json.dumps(json.loads(calls_text), sort_keys=True) if isinstance(calls_text, str) else None
    except (TypeError, ValueError):
        return None


def load_references(path: str | Path) -> list[Reference]:
    """References from a JSONL file (one :meth:`Reference.to_dict` row a line); unreadable rows are skipped, a
    missing file is a one-line ConfigError."""
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"{p}: references file not found")
    out = []
    for line in p.read_text(encoding="utf-8").splitlines():
        try:
            ref = Reference.from_dict(json.loads(line))
        except ValueError:
            ref = None
        if ref is not None:
            out.append(ref)
    return out
