"""The judge term of the Generator's curriculum reward (spec §5.4): read a 1-5 score from the frozen Solver's
reply, fall back after the retries, and map the score to r_sem."""

from __future__ import annotations

import re
from typing import Any

from toolr0.core.frozen_solver import JudgeConfig
from toolr0.core.rewards.base import RewardValue

_JUDGE_WORDS = {"one": 1, "two": 2, "three": 3, "four": 4, "five": 5}
_JUDGE_WORD_RE = re.compile(r"\b(one|two|three|four|five)\b", re.I)
_JUDGE_PRONOUN_ONE_RE = re.compile(
    r"\bone\s+of\b|\b(?:no|any|some|every|each|this|that|the|which)\s+one\b", re.I
)
_JUDGE_FRACTION_RE = re.compile(r"\b([1-5])\s*/\s*5\b")
_JUDGE_ECHO_RE = re.compile(r"\(?\b1\s*(?:-|–|to)\s*5\b\)?|\bout\s+of\s+(?:5|five)\b", re.I)
_JUDGE_SPAN_RE = re.compile(r"(?<![0-9.])([1-5])\s*(?:-|–|—|to|or)\s*([1-5])(?![0-9])", re.I)
_JUDGE_DIGIT_RE = re.compile(r"(?<![0-9.])([1-5])(?![0-9])")


def parse_judge_score(text: Any) -> int | None:
    """Judge score 1-5 (spec §5.4), or None (the caller retries, then falls back).

    In order: a span of two different scores ("2-3", "3 to 4", "2 or 3") is ambiguous: None; the reply's
    first character when it is 1-5; "n/5"; the first standalone digit 1-5; a spelled-out number ("one" as a
    pronoun, "one of the best", is skipped). Rubric echoes ("1-5", "out of 5") are ignored. Deliberate
    difference from the spec's fallback order: a digit wins over a word, so "One of the best: 5" is 5."""
    if not isinstance(text, str):
        return None
    try:
        t = text.strip()[:2000]
        cleaned = _JUDGE_ECHO_RE.sub(" ", t)
        if any(a != b for a, b in _JUDGE_SPAN_RE.findall(cleaned)):
            return None
        if t and t[0] in "12345" and not (len(t) > 1 and t[1].isdigit()) and not _JUDGE_ECHO_RE.match(t):
            return int(t[0])
        m = _JUDGE_FRACTION_RE.search(t)
        if m:
            return int(m.group(1))
        m = _JUDGE_DIGIT_RE.search(cleaned)
        if m:
            return int(m.group(1))
        m = _JUDGE_WORD_RE.search(_JUDGE_PRONOUN_ONE_RE.sub(" ", cleaned))
        if m:
            return _JUDGE_WORDS[m.group(1).lower()]
    except Exception:  # noqa: BLE001
        return None
    return None


def judge_score_from_attempts(replies: list[Any], cfg: JudgeConfig | None = None) -> tuple[int, bool]:
    """First parseable score among up to ``frozen_solver.judge.retries`` replies; else the fallback score.
    Returns (score, used_fallback)."""
    c = cfg if cfg is not None else JudgeConfig()
    for reply in list(replies)[: c.retries]:
        s = parse_judge_score(reply)
        if s is not None:
            return s, False
    return c.fallback_score, True


def semantic_reward(judge_score: Any) -> RewardValue:
    """r_sem = (score − 1) / 4 ∈ {0, .25, .5, .75, 1}; a missing/invalid score gives 0."""
    if isinstance(judge_score, bool) or not isinstance(judge_score, int) or not 1 <= judge_score <= 5:
        return RewardValue(0.0, "not_judged")
    return RewardValue((judge_score - 1) / 4, "ok")
